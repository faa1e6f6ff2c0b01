"""The values of a dataset that no script output may carry: every value of its key column and of
each column tagged as a direct identifier (connectors.output_checks). Read on the provider's
host, once per version of the file, and kept for the next runs: a rerun's check then costs only
the scan of its output."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from connectors.output_checks import IDENTIFYING_TAGS, Forbidden
from sandbox.ops.csvkeys import read_columns

CACHED = 4  # datasets whose identifying values are kept in memory between runs
_CACHE: dict[tuple[str, int, int], Forbidden] = {}
_LOCK = threading.Lock()


def of(dataset: Any) -> Forbidden:
    """The forbidden values of ``dataset`` (a connectors.models.Dataset) as its file is now."""
    path = Path(dataset.path)
    stat = path.stat()
    version = (str(path), stat.st_mtime_ns, stat.st_size)
    with _LOCK:
        cached = _CACHE.get(version)
    if cached is not None:
        return cached
    names = [
        c["name"]
        for c in dataset.columns
        if c["name"] == dataset.key_column or IDENTIFYING_TAGS & set(c.get("tags", []))
    ]
    forbidden = Forbidden()
    for name, values in read_columns(path, names).items():
        forbidden.add(name, values)
    with _LOCK:
        while len(_CACHE) >= CACHED:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[version] = forbidden
    return forbidden
