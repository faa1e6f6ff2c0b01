"""``script.run``: custom code a provider has reviewed, run inside the sandbox.

The sandbox, not this module, is what contains the code: it runs with the limits, namespaces
and filesystem view of whichever backend started the worker. The script sees ``DATASET`` (the
path of the one file it may read, or None) and ``ARGS`` (a JSON object), and leaves its answer
in ``RESULT``: a JSON object, or a pandas DataFrame for a table (then ``COUNTS`` may name its
columns that hold counts, which the provider checks against k). ``print`` goes to stderr;
stdout carries only the framed result. The runtime is the standard library, NumPy and pandas
(:data:`RUNTIME` gives the versions a catalog entry states).
The hostile suite (``tests/hostile``) uses this entry to run deliberately malicious bodies.
"""

from __future__ import annotations

import contextlib
import errno
import json
import sys
from typing import Any

from sandbox.errors import WorkerFailed

MAX_SOURCE = 1 << 20
RUNTIME_PACKAGES = ("numpy", "pandas")


def runtime() -> dict[str, str]:
    """The Python version and the packages a script may import, with their versions."""
    from importlib.metadata import version

    return {"python": sys.version.split()[0], **{name: version(name) for name in RUNTIME_PACKAGES}}


def check_source(source: str) -> None:
    """Refuse code that is too large or does not compile, saying where (compiling runs nothing)."""
    if len(source) > MAX_SOURCE:
        raise WorkerFailed("request", f"script is {len(source)} characters; at most {MAX_SOURCE}")
    try:
        compile(source, "<script>", "exec")
    except (SyntaxError, ValueError) as exc:
        where = f" (line {exc.lineno})" if isinstance(exc, SyntaxError) and exc.lineno else ""
        message = exc.msg if isinstance(exc, SyntaxError) else str(exc)
        raise WorkerFailed("request", f"script does not compile: {message}{where}") from exc


def output(source: str, args: dict[str, Any], dataset: str | None) -> dict[str, Any]:
    """The worker's answer for ``script.run``: a JSON result, or a table as CSV with its counts."""
    namespace = _execute(source, args, dataset)
    result = namespace.get("RESULT")
    frame = _as_frame(result)
    if frame is None:
        return {"format": "json", "result": _json_result(result)}
    counts = namespace.get("COUNTS", [])
    if not isinstance(counts, list | tuple) or not all(isinstance(c, str) for c in counts):
        raise WorkerFailed("script", "COUNTS must be a list of column names")
    return {"format": "table", "result": {}, "table": frame.to_csv(index=False), "counts": list(counts)}


def _as_frame(result: object) -> Any:
    pandas = sys.modules.get("pandas")  # a script that made a DataFrame imported pandas
    return result if pandas is not None and isinstance(result, pandas.DataFrame) else None


def run(source: str, args: dict[str, Any], dataset: str | None) -> dict[str, Any]:
    """The script's RESULT as a JSON object (the hostile suite's entry)."""
    return _json_result(_execute(source, args, dataset).get("RESULT"))


def _execute(source: str, args: dict[str, Any], dataset: str | None) -> dict[str, Any]:
    check_source(source)
    code = compile(source, "<script>", "exec")
    namespace: dict[str, Any] = {
        "__name__": "__script__", "DATASET": dataset, "ARGS": args, "RESULT": {}, "COUNTS": [],
    }  # fmt: skip
    try:
        with contextlib.redirect_stdout(sys.stderr):
            exec(code, namespace)
    except MemoryError:
        raise
    except OSError as exc:
        if exc.errno == errno.EFBIG:
            raise  # the file-size limit, reported as such by the worker
        raise WorkerFailed("script", f"{type(exc).__name__}: {exc}") from exc
    except Exception as exc:  # the script's own failure, reported as such
        raise WorkerFailed("script", f"{type(exc).__name__}: {exc}") from exc
    return namespace


def _json_result(result: object) -> dict[str, Any]:
    if not isinstance(result, dict):
        raise WorkerFailed("script", f"RESULT must be a JSON object, got {type(result).__name__}")
    try:
        json.dumps(result)
    except (TypeError, ValueError) as exc:
        raise WorkerFailed("script", f"RESULT is not JSON: {exc}") from exc
    return result
