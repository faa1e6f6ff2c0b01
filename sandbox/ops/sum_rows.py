"""The provider's rows of a psi.sum job: its keys, the summed column as whole numbers, and the
category of each key, read from its dataset in one streamed pass.

Keys are normalised as for every PSI job (sandbox.ops.csvkeys); a key that appears on several
rows stands for their total, so each key is one element of the run (a repeated element would
tell the consumer that a key is repeated). An empty cell adds nothing, as SQL's SUM skips NULL;
the key is still counted. Decimals are scaled to whole numbers by the largest number of places
the column uses (at most :data:`MAX_PLACES`), so the sum is exact.

What goes out of the sandbox in an error names the column, never a cell's value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from sandbox.errors import WorkerFailed
from sandbox.ops.csvkeys import column_index, iter_rows, normalise_key

MAX_PLACES = 6
MAX_CATEGORIES = 16  # each category is a set of ciphertexts of its own (sandbox.ops.psi_sum)
NUMBER = re.compile(r"[+-]?(\d+)(?:\.(\d*))?")
# the plain modulus of psi.sum's BFV (sandbox.ops.psi_sum): the largest prime below 2^50 that is
# 1 mod 2·8192; here, with the arithmetic on it, so the consumer's connector unmasks a sum
# without loading TenSEAL
PLAIN_MODULUS = 1125899906826241
HALF = PLAIN_MODULUS // 2


@dataclass(frozen=True)
class SumRows:
    keys: list[str]
    values: list[int]  # the key's total, scaled by 10**places
    categories: list[int]  # the key's category, an index into labels
    labels: list[str]  # sorted; [""] when the job sums over everything
    places: int

    def category_sizes(self) -> list[int]:
        sizes = [0] * len(self.labels)
        for category in self.categories:
            sizes[category] += 1
        return sizes


def _scaled(cell: str, places: int) -> int:
    whole, _, fraction = cell.partition(".")
    sign = -1 if whole.startswith("-") else 1
    digits = whole.lstrip("+-") + fraction.ljust(places, "0")
    return sign * int(digits)


def read(path: Path, key: str, summed: str, by: str | None) -> SumRows:
    rows = iter_rows(path)
    first = next(rows, None)
    if first is None:
        raise WorkerFailed("input", f"{path.name}: empty file; expected a header row and data")
    header = first[1]
    key_at, sum_at = column_index(header, key, path), column_index(header, summed, path)
    by_at = column_index(header, by, path) if by else None
    cells: dict[str, tuple[list[str], str]] = {}  # key → (its cells of the summed column, category)
    places = 0
    for line, row in rows:
        if len(row) != len(header):
            raise WorkerFailed(
                "input", f"{path.name}: line {line} has {len(row)} fields, the header has {len(header)}"
            )
        name = normalise_key(row[key_at])
        if not name:
            continue
        cell = row[sum_at].strip()
        if cell:
            match = NUMBER.fullmatch(cell)
            if match is None:
                raise WorkerFailed(
                    "request",
                    f"column {summed!r} holds values that are not numbers; psi.sum adds integers or "
                    f"decimals with at most {MAX_PLACES} places",
                )
            places = max(places, len(match.group(2) or ""))
        category = normalise_key(row[by_at]) if by_at is not None else ""
        held = cells.get(name)
        if held is None:
            cells[name] = ([cell] if cell else [], category)
        elif held[1] != category:
            raise WorkerFailed(
                "request",
                f"column {by!r} gives a key more than one category; psi.sum --by needs one category per key",
            )
        elif cell:
            held[0].append(cell)
    if places > MAX_PLACES:
        raise WorkerFailed(
            "request",
            f"column {summed!r} has more than {MAX_PLACES} decimal places; psi.sum adds at most that",
        )
    labels = sorted({category for _, category in cells.values()})
    if len(labels) > MAX_CATEGORIES:
        raise WorkerFailed(
            "request",
            f"column {by!r} has {len(labels)} categories; psi.sum --by takes at most {MAX_CATEGORIES}",
        )
    index = {label: i for i, label in enumerate(labels)}
    keys = list(cells)
    values = [sum(_scaled(c, places) for c in cells[k][0]) for k in keys]
    return SumRows(keys, values, [index[cells[k][1]] for k in keys], labels or [""], places)


def centred(value: int) -> int:
    value %= PLAIN_MODULUS
    return value - PLAIN_MODULUS if value > HALF else value


def unmasked(masked: int, mask: int) -> int:
    """The consumer's sum: the provider's masked value less its mask, with its sign."""
    return centred(masked - mask)


def unscaled(value: int, places: int) -> str:
    """A scaled whole number as the exact decimal it stands for."""
    return str(Decimal(value).scaleb(-places)) if places else str(value)
