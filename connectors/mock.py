"""Mock samples: a synthetic table with the schema of a dataset and none of its rows (issue 14,
step 1), published with the catalog entry so that a consumer can write and try a script before
asking to run it on the real data.

Per column, from the real file, read once on the provider's machine:

* keys, and columns tagged as direct identifiers (phone, id_card, email, credit_code): made up in
  the same format — Faker's zh_CN provider for phone numbers, ID numbers and e-mail addresses,
  GB 32100 for credit codes with a valid check character, the shape of the column's values
  (digit for digit, letter for letter) otherwise — and redrawn while one equals a real value;
* numbers and dates: drawn from the column's marginal distribution by quantile bins of at least
  k rows each, between the k-th smallest and the k-th largest value (so an outlier's value never
  shows), and redrawn while a value equals one that occurs fewer than k times;
* other columns (categories, booleans): only values that occur at least k times, with their
  frequencies; the share of rarer values is left empty.

Empty cells keep each column's share. No real row and no value rarer than k can appear, which
``tests/connectors/test_mock.py`` checks. NumPy draws the marginals, Faker the formats: no model
of the joint distribution is fitted (a mock is for trying code, not for analysis).
"""

from __future__ import annotations

import csv
import io
import re
import secrets
import string
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from faker import Faker

from connectors.output_checks import IDENTIFYING_TAGS
from contracts.credit_code import ALPHABET, check_character
from sandbox.ops.csvkeys import normalise_key, read_columns

ROWS = 200  # rows in a mock sample
MAX_BINS = 20
TRIES = 50  # draws before a value that keeps meeting real ones is left empty
_DECIMALS = re.compile(r"\.(\d+)")


def mock_sample(
    path: Path, columns: Sequence[dict[str, Any]], key_column: str, k: int, rows: int = ROWS
) -> str:
    """The mock sample of the CSV at ``path`` as CSV text, header first (``columns`` as the
    dataset's profile describes them: name, type, tags, completeness)."""
    values = read_columns(path, [c["name"] for c in columns])
    rng = np.random.default_rng(secrets.randbits(64))
    fake = Faker("zh_CN")
    fake.seed_instance(secrets.randbits(64))
    generated = []
    for column in columns:
        real = values[column["name"]]
        identifying = column["name"] == key_column or bool(IDENTIFYING_TAGS & set(column.get("tags", [])))
        if identifying:
            cells = _made_up(real, column.get("tags", []), rows, rng, fake)
        elif column.get("type") in ("integer", "number", "date"):
            cells = _marginal(real, column["type"], k, rows, rng)
        else:
            cells = _frequent(real, k, rows, rng)
        if not identifying:
            completeness = float(column.get("completeness", 1.0))
            cells = [c if rng.random() < completeness else "" for c in cells]
        generated.append(cells)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([c["name"] for c in columns])
    writer.writerows(zip(*generated, strict=True))
    return out.getvalue()


# --- keys and identifiers ---------------------------------------------------------------------
def _credit_code(rng: np.random.Generator) -> str:
    digits, chars = "0123456789", ALPHABET
    first17 = "".join(
        [*(chars[i] for i in rng.integers(0, len(chars), 2)), *(digits[i] for i in rng.integers(0, 10, 6)),
         *(chars[i] for i in rng.integers(0, len(chars), 9))]
    )  # fmt: skip
    return first17 + check_character(first17)


def _shaped(template: str, rng: np.random.Generator) -> str:
    """A value with the shape of ``template``: a digit for each digit, a letter of the same case
    for each letter, other characters kept."""
    out = []
    for ch in template:
        if ch.isdigit():
            out.append(string.digits[rng.integers(0, 10)])
        elif ch.isascii() and ch.isupper():
            out.append(string.ascii_uppercase[rng.integers(0, 26)])
        elif ch.isascii() and ch.islower():
            out.append(string.ascii_lowercase[rng.integers(0, 26)])
        else:
            out.append(ch)
    return "".join(out)


def _made_up(real: list[str], tags: list[str], rows: int, rng: np.random.Generator, fake: Faker) -> list[str]:
    taken = {normalise_key(v).lower() for v in real if v}
    templates = [v for v in real if v] or ["0000000000"]
    make: Callable[[], str]
    if "phone" in tags:
        make = fake.phone_number
    elif "id_card" in tags:
        make = fake.ssn
    elif "email" in tags:
        make = fake.email
    elif "credit_code" in tags:
        make = lambda: _credit_code(rng)  # noqa: E731
    else:
        make = lambda: _shaped(templates[int(rng.integers(0, len(templates)))], rng)  # noqa: E731
    out: list[str] = []
    for _ in range(rows):
        for _ in range(TRIES):
            value = make()
            if value.lower() not in taken:
                taken.add(value.lower())  # unique within the mock too
                out.append(value)
                break
        else:
            out.append("")
    return out


# --- numbers and dates ------------------------------------------------------------------------
def _marginal(real: list[str], kind: str, k: int, rows: int, rng: np.random.Generator) -> list[str]:
    filled = [v for v in real if v]
    if len(filled) < 2 * k:
        return [""] * rows  # too few values to draw from without showing one
    counts = Counter(filled)
    if kind == "date":
        parsed = np.array([np.datetime64(v[:10], "D").astype(np.int64) for v in filled], dtype=float)
    else:
        parsed = np.array([float(v) for v in filled])
    ordered = np.sort(parsed)
    low, high = ordered[k - 1], ordered[-k]  # the k-th smallest and the k-th largest
    bins = max(1, min(MAX_BINS, len(filled) // k))
    edges = np.quantile(ordered[(ordered >= low) & (ordered <= high)], np.linspace(0, 1, bins + 1))
    decimals = max((len(m.group(1)) for v in filled[:1000] if (m := _DECIMALS.search(v))), default=0)
    out = []
    for _ in range(rows):
        for _ in range(TRIES):
            b = int(rng.integers(0, bins))
            x = rng.uniform(edges[b], edges[b + 1]) if edges[b + 1] > edges[b] else edges[b]
            text = _format(x, kind, min(decimals, 4))
            if not 0 < counts.get(text, 0) < k:
                out.append(text)
                break
        else:
            out.append("")
    return out


def _format(x: float, kind: str, decimals: int) -> str:
    if kind == "date":
        return str(np.datetime64(round(float(x)), "D"))
    if kind == "integer":
        return str(round(float(x)))
    return f"{x:.{decimals}f}" if decimals else str(round(float(x)))


# --- categories -------------------------------------------------------------------------------
def _frequent(real: list[str], k: int, rows: int, rng: np.random.Generator) -> list[str]:
    filled = [v for v in real if v]
    counts = Counter(filled)
    kept = [(v, n) for v, n in counts.items() if n >= k]
    if not filled or not kept:
        return [""] * rows
    rare_share = 1 - sum(n for _, n in kept) / len(filled)
    choices = [v for v, _ in kept] + [""]
    weights = np.array([n for _, n in kept] + [rare_share * len(filled)], dtype=float)
    picks = rng.choice(len(choices), size=rows, p=weights / weights.sum())
    return [choices[i] for i in picks]
