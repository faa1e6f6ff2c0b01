"""Reading the key column of a CSV file, streamed, with TDS's key normalisation.

Keys are compared as exact strings after trimming surrounding white space and Unicode NFC
normalisation; duplicates count once (first occurrence kept) and empty values are ignored.
"""

from __future__ import annotations

import csv
import unicodedata
from collections.abc import Iterator
from pathlib import Path

from sandbox.errors import WorkerFailed

csv.field_size_limit(1 << 20)  # bytes per field: a key or cell larger than 1 MiB is refused


def normalise_key(value: str) -> str:
    return unicodedata.normalize("NFC", value.strip())


def iter_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """Yield (line number, row), header first, skipping blank lines; decoding and syntax
    errors become WorkerFailed naming the line."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, strict=True)
            try:
                for row in reader:
                    if row:
                        yield reader.line_num, row
            except csv.Error as exc:
                raise WorkerFailed(
                    "input", f"{path.name}: malformed CSV at line {reader.line_num}: {exc}"
                ) from exc
    except UnicodeDecodeError as exc:
        raise WorkerFailed(
            "input", f"{path.name}: not UTF-8 text (byte {exc.start}); save the file as UTF-8"
        ) from exc
    except OSError as exc:
        raise WorkerFailed("input", f"{path.name}: cannot read: {exc.strerror}") from exc


def column_index(header: list[str], column: str, path: Path) -> int:
    names = [normalise_key(h) for h in header]
    if column not in names:
        raise WorkerFailed("input", f"{path.name}: no column {column!r}; the header has {names}")
    return names.index(column)


def read_keys(path: Path, column: str) -> list[str]:
    """The distinct normalised non-empty keys of ``column``, in first-seen order."""
    rows = iter_rows(path)
    first = next(rows, None)
    if first is None:
        raise WorkerFailed("input", f"{path.name}: empty file; expected a header row and data")
    header = first[1]
    index = column_index(header, column, path)
    seen: dict[str, None] = {}
    for line, row in rows:
        if len(row) != len(header):
            raise WorkerFailed(
                "input",
                f"{path.name}: line {line} has {len(row)} fields, the header has {len(header)}",
            )
        key = normalise_key(row[index])
        if key:
            seen[key] = None
    return list(seen)


def read_columns(path: Path, names: list[str]) -> dict[str, list[str]]:
    """Every value (trimmed) of the named columns, by name, in file order; the host's reader for
    mock samples and for the values a script's output is checked against."""
    rows = iter_rows(path)
    _, header = next(rows)
    index = {normalise_key(h): i for i, h in enumerate(header)}
    columns: dict[str, list[str]] = {name: [] for name in names}
    for _, row in rows:
        for name in names:
            columns[name].append(row[index[name]].strip())
    return columns
