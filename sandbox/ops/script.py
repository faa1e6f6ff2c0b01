"""``script.run``: custom code a provider has reviewed, run inside the sandbox.

The sandbox, not this module, is what contains the code: it runs with the limits, namespaces
and filesystem view of whichever backend started the worker. The script sees ``DATASET`` (the
path of the one file it may read, or None) and ``ARGS`` (a JSON object), and leaves its answer
in ``RESULT``, a JSON object. ``print`` goes to stderr; stdout carries only the framed result.
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


def run(source: str, args: dict[str, Any], dataset: str | None) -> dict[str, Any]:
    if len(source) > MAX_SOURCE:
        raise WorkerFailed("request", f"script is {len(source)} characters; at most {MAX_SOURCE}")
    try:
        code = compile(source, "<script>", "exec")
    except SyntaxError as exc:
        raise WorkerFailed("request", f"script does not compile: {exc}") from exc
    namespace: dict[str, Any] = {"__name__": "__script__", "DATASET": dataset, "ARGS": args, "RESULT": {}}
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
    result = namespace.get("RESULT")
    if not isinstance(result, dict):
        raise WorkerFailed("script", f"RESULT must be a JSON object, got {type(result).__name__}")
    try:
        json.dumps(result)
    except (TypeError, ValueError) as exc:
        raise WorkerFailed("script", f"RESULT is not JSON: {exc}") from exc
    return result
