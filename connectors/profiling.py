"""Profiling a CSV locally: row count, columns with inferred types and semantic tags, per-column
completeness, key uniqueness. Only this profile is published; raw rows never leave."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contracts.credit_code import validate_credit_code
from contracts.errors import CreditCodeError
from sandbox.errors import WorkerFailed
from sandbox.ops.csvkeys import column_index, iter_rows, normalise_key

TYPE_PATTERNS = (
    ("integer", re.compile(r"^[+-]?\d+$")),
    ("number", re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")),
    ("boolean", re.compile(r"^(true|false)$", re.IGNORECASE)),
    ("date", re.compile(r"^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$")),
)
TAG_PATTERNS = (
    ("phone", re.compile(r"^(\+?86)?1[3-9]\d{9}$")),  # mainland mobile numbers
    ("id_card", re.compile(r"^\d{17}[\dXx]$")),  # resident identity card (GB 11643)
    ("credit_code", re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$")),
    ("email", re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")),
)
TAG_THRESHOLD = 0.9  # share of non-empty values that must match for a semantic tag
SAMPLE = 10_000  # values per column examined for types and tags


class ProfileError(ValueError):
    pass


@dataclass
class _Column:
    name: str
    filled: int = 0
    sample: list[str] = field(default_factory=list)


LEADING_ZERO = re.compile(r"^[+-]?0\d")  # 007, 0371…: a code, not a quantity


def _infer_type(values: list[str], identifier: bool) -> str:
    """The values' type; an identifier (the key, a column with a semantic tag, digits with a
    leading zero) is a string whatever its characters, since nobody adds phone numbers and a
    number would lose its zeros."""
    if not values or identifier or any(LEADING_ZERO.match(v) for v in values):
        return "string"
    for name, pattern in TYPE_PATTERNS:
        if all(pattern.match(v) for v in values):
            return name
    return "string"


def _is_credit_code(value: str) -> bool:
    try:
        validate_credit_code(value)
    except CreditCodeError:
        return False
    return True


def _infer_tags(values: list[str]) -> list[str]:
    """The first semantic tag (in TAG_PATTERNS order) most values fit; a credit code must also
    carry a valid GB 32100 check character, which tells it apart from an 18-digit ID number."""
    if not values:
        return []
    for tag, pattern in TAG_PATTERNS:
        fits = sum(1 for v in values if pattern.match(v) and (tag != "credit_code" or _is_credit_code(v)))
        if fits >= TAG_THRESHOLD * len(values):
            return [tag]
    return []


def profile_csv(path: Path, key_column: str, tags: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """Profile ``path``; raise ProfileError with a message a person can act on."""
    try:
        rows = iter_rows(path)
        first = next(rows, None)
        if first is None:
            raise ProfileError(f"{path.name}: empty file; expected a header row and data rows")
        header = first[1]
        names = [normalise_key(h) for h in header]
        if len(set(names)) != len(names) or not all(names):
            raise ProfileError(f"{path.name}: header names must be unique and non-empty, got {names}")
        key_index = column_index(header, key_column, path)
        columns = [_Column(name) for name in names]
        keys: set[str] = set()
        key_filled = 0
        row_count = 0
        for line, row in rows:
            if len(row) != len(header):
                raise ProfileError(
                    f"{path.name}: line {line} has {len(row)} fields, the header has {len(header)}"
                )
            row_count += 1
            for column, raw in zip(columns, row, strict=True):
                value = raw.strip()
                if value:
                    column.filled += 1
                    if len(column.sample) < SAMPLE:
                        column.sample.append(value)
            key = normalise_key(row[key_index])
            if key:
                key_filled += 1
                keys.add(key)
    except WorkerFailed as exc:
        raise ProfileError(str(exc)) from exc
    if row_count == 0:
        raise ProfileError(f"{path.name}: the file has a header but no data rows")
    declared = tags or {}
    unknown = sorted(set(declared) - set(names))
    if unknown:
        raise ProfileError(f"--tag names columns {unknown} that the file does not have ({names})")
    described = []
    for index, c in enumerate(columns):
        found = sorted(set(_infer_tags(c.sample)) | set(declared.get(c.name, [])))
        described.append({
            "name": c.name,
            "type": _infer_type(c.sample, identifier=index == key_index or bool(found)),
            "tags": found,
            "completeness": round(c.filled / row_count, 4),
        })  # fmt: skip
    return {
        "row_count": row_count,
        "columns": described,
        "key_column": names[key_index],
        "key_distinct": len(keys),
        "key_uniqueness": round(len(keys) / key_filled, 4) if key_filled else 0.0,
    }
