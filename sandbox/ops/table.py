"""Reading several columns of a CSV file as NumPy arrays, for the homomorphic operations
(kept apart from :mod:`sandbox.ops.csvkeys` so that PSI workers do not load NumPy)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sandbox.errors import WorkerFailed
from sandbox.ops.csvkeys import column_index, iter_rows, normalise_key


def read_columns(path: Path, columns: set[str]) -> dict[str, np.ndarray]:
    """The cells of ``columns`` (trimmed text, NFC), one object array per column, in row order."""
    rows = iter_rows(path)
    first = next(rows, None)
    if first is None:
        raise WorkerFailed("input", f"{path.name}: empty file; expected a header row and data")
    header = first[1]
    indices = {name: column_index(header, name, path) for name in sorted(columns)}
    cells: dict[str, list[str]] = {name: [] for name in indices}
    for line, row in rows:
        if len(row) != len(header):
            raise WorkerFailed(
                "input", f"{path.name}: line {line} has {len(row)} fields, the header has {len(header)}"
            )
        for name, index in indices.items():
            cells[name].append(normalise_key(row[index]))
    return {name: np.array(values, dtype=object) for name, values in cells.items()}


def read_numbers(path: Path, columns: set[str]) -> dict[str, np.ndarray] | None:
    """``columns`` as floats through NumPy's C reader (an order of magnitude faster than the csv
    module on a million rows), or None when some cell is not a plain number — then the caller
    reads text with :func:`read_columns` and reports exactly what is wrong."""
    rows = iter_rows(path)
    first = next(rows, None)
    if first is None:
        raise WorkerFailed("input", f"{path.name}: empty file; expected a header row and data")
    names = sorted(columns)
    indices = [column_index(first[1], name, path) for name in names]
    try:
        values = np.loadtxt(
            path,
            delimiter=",",
            skiprows=1,
            usecols=indices,
            dtype=float,
            quotechar='"',
            ndmin=2,
            encoding="utf-8-sig",
        )
    except (ValueError, IndexError):
        return None
    return {name: values[:, i] for i, name in enumerate(names)}
