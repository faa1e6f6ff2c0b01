"""The consumer's own input to a job, checked before any job exists, so a bad input creates
nothing."""

from __future__ import annotations

from pathlib import Path

from connectors.errors import Refused
from sandbox.errors import WorkerFailed
from sandbox.ops.csvkeys import read_keys


def input_keys(file: str, column: str, field: str) -> tuple[Path, str, list[str]]:
    """The consumer's own CSV ``file`` (the request's ``field``), and the distinct keys of its
    ``column``: checked before any job exists, so a bad input creates nothing."""
    path = Path(file)
    if not column:
        raise Refused(f"column: name the {field} file's key column (--column)")
    if not path.is_file():
        raise Refused(f"{field} {path}: no such file; give a UTF-8 CSV with a header row")
    try:
        keys = read_keys(path, column)
    except WorkerFailed as exc:
        raise Refused(str(exc), kind="bad-csv") from exc
    if not keys:
        raise Refused(f"{path.name}: column {column!r} has no non-empty values", kind="bad-csv")
    return path, column, keys
