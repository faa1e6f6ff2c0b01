"""The automatic checks on a script's output, before any person sees it (issue 14, step 6).

A pure function of the output and what the provider knows: the bytes that would be released,
the table columns the request declared, the cap on its size (``outputBytes``), the minimum
count k, and the values that must never leave (:class:`Forbidden`: every value of the dataset's
key column and of each column tagged as a direct identifier). A reason names the check and the
column, never a value, since reasons reach the consumer.

What the value check finds: a forbidden value anywhere in the text (values of six characters or
more, matched as substrings after lower-casing) or as a whole token (shorter ones: a short value
would be found inside unrelated numbers), and the same inside any base64 or hex run that decodes
to text. What it cannot find: values the code transforms first (reversed, shifted, hashed,
split across cells); those are what the reviewer reads the code for (README, threat model).
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# columns whose values identify a person or a company: none of them may appear in an output
IDENTIFYING_TAGS = frozenset({"phone", "id_card", "email", "credit_code"})
SUBSTRING_MIN = 6  # values at least this long are found anywhere in the text
_TOKEN = re.compile(r"[0-9A-Za-z\u00c0-\uffff@._+-]+")
_ENCODED = re.compile(r"[A-Za-z0-9+/_-]{12,}={0,2}")


@dataclass
class Forbidden:
    """The values that may not appear in an output, each with the column it comes from."""

    long: dict[int, dict[str, str]] = field(default_factory=dict)  # length → value → column
    short: dict[str, str] = field(default_factory=dict)  # value → column

    def add(self, column: str, values: Iterable[str]) -> None:
        for raw in values:
            value = raw.strip().lower()
            if not value:
                continue
            if len(value) >= SUBSTRING_MIN:
                self.long.setdefault(len(value), {}).setdefault(value, column)
            else:
                self.short.setdefault(value, column)

    def __len__(self) -> int:
        return len(self.short) + sum(len(v) for v in self.long.values())

    def find(self, text: str) -> str | None:
        """The column of a forbidden value found in ``text`` (or in what an encoded run in it
        decodes to), or None."""
        for candidate in (text.lower(), *_decoded(text)):
            found = self._find_plain(candidate)
            if found is not None:
                return found
        return None

    def _find_plain(self, text: str) -> str | None:
        for length, values in self.long.items():
            for start in range(len(text) - length + 1):
                column = values.get(text[start : start + length])
                if column is not None:
                    return column
        if self.short:
            for token in _TOKEN.findall(text):
                column = self.short.get(token)
                if column is not None:
                    return column
        return None


def _decoded(text: str) -> list[str]:
    """The text that base64 (standard or URL-safe) or hex runs in ``text`` decode to."""
    out = []
    for run in _ENCODED.findall(text):
        bare = run.rstrip("=")
        padded = bare + "=" * (-len(bare) % 4)
        for decode, encoded in (
            (base64.b64decode, padded),
            (base64.urlsafe_b64decode, padded),
            (bytes.fromhex, run),
        ):
            try:
                raw = decode(encoded)
            except (binascii.Error, ValueError):
                continue
            decoded = raw.decode("utf-8", errors="ignore").lower()
            if decoded:
                out.append(decoded)
    return out


@dataclass(frozen=True)
class Output:
    """A script's output as it would be released: a JSON object, or a CSV table (its header names
    its columns) with the ones its script marked as counts."""

    data: bytes
    table: bool = False
    counts: tuple[str, ...] = ()


def check(
    output: Output,
    *,
    max_bytes: int,
    declared_columns: tuple[str, ...] | None,
    k: int,
    forbidden: Forbidden,
) -> list[str]:
    """The reasons the output may not be released (empty: it passes to the reviewer or out)."""
    if len(output.data) > max_bytes:
        # nothing else is read of an output that is too large
        return [f"output is {len(output.data)} bytes; the policy allows at most {max_bytes} (outputBytes)"]
    reasons = []
    try:
        text = output.data.decode("utf-8")
    except UnicodeDecodeError:
        return ["output is not UTF-8 text"]
    if output.table:
        reasons += _table_problems(output, text, declared_columns, k)
    else:
        if declared_columns is not None:
            reasons.append(
                f"the request declared a table with columns {list(declared_columns)}; "
                "the output is a JSON object"
            )
        try:
            if not isinstance(json.loads(text), Mapping):
                reasons.append("output must be a JSON object")
        except ValueError:
            reasons.append("output is not JSON")
    column = forbidden.find(text)
    if column is not None:
        reasons.append(f"output contains a value of column {column!r}, which may not leave the provider")
    return reasons


def _table_problems(output: Output, text: str, declared: tuple[str, ...] | None, k: int) -> list[str]:
    if declared is None:
        return ["output is a table but the request declared none; declare its columns (output.columns)"]
    rows = list(csv.reader(io.StringIO(text)))
    header = tuple(rows[0]) if rows else ()
    if header != declared:
        return [f"output table has columns {list(header)}; the request declared {list(declared)}"]
    unknown = sorted(set(output.counts) - set(header))
    if unknown:
        return [f"the script marked counts {unknown} that the table does not have"]
    reasons = []
    for name in output.counts:
        index = header.index(name)
        small = sum(1 for row in rows[1:] if _below(row[index] if index < len(row) else "", k))
        if small:
            reasons.append(f"count column {name!r} has {small} cells below k = {k} (or not a number)")
    return reasons


def _below(cell: str, k: int) -> bool:
    """A count cell that is not a whole number of at least k."""
    try:
        value = float(cell)
    except ValueError:
        return True
    return not math.isfinite(value) or value != int(value) or value < k
