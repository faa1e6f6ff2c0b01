"""Mock samples: the dataset's schema and formats, and none of its keys, rows or rare values."""

import csv
import io
import random
from collections import Counter
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.mock import ROWS, mock_sample
from connectors.profiling import profile_csv

K = 10


def write(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read(text: str) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], rows[1:]


def real_file(tmp_path: Path) -> Path:
    rnd = random.Random(7)
    rows: list[list[object]] = []
    for i in range(3000):
        rows.append(
            [
                f"1{rnd.choice('3589')}{i:09d}",  # phone
                f"user{i}@bank.example",  # email, a second identifier
                rnd.randint(1000, 90000) if i != 17 else 98765432,  # income with one outlier
                round(rnd.uniform(0, 1), 3),
                rnd.choice(["郑州", "洛阳", "开封"]) if i % 700 else f"稀有{i}",  # five rare cities
                f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}",
                "" if i % 4 == 0 else rnd.choice(["true", "false"]),
            ]
        )
    header = ["phone", "email", "income", "score", "city", "opened", "active"]
    return write(tmp_path / "real.csv", header, rows)


def rare_values(path: Path) -> dict[str, set[str]]:
    header, rows = read(path.read_text(encoding="utf-8"))
    out = {}
    for i, name in enumerate(header):
        counts = Counter(row[i] for row in rows if row[i])
        out[name] = {v for v, n in counts.items() if n < K}
    return out


def test_the_mock_has_the_schema_and_formats_of_the_real_file(tmp_path: Path) -> None:
    real = real_file(tmp_path)
    profile = profile_csv(real, "phone")
    mock = write_mock(tmp_path, real, profile)
    header, rows = read(mock.read_text(encoding="utf-8"))
    assert header == ["phone", "email", "income", "score", "city", "opened", "active"]
    assert len(rows) == ROWS
    again = profile_csv(mock, "phone")
    assert [(c["name"], c["type"], c["tags"]) for c in again["columns"]] == [
        (c["name"], c["type"], c["tags"]) for c in profile["columns"]
    ]
    assert again["key_uniqueness"] == 1.0
    assert {row[4] for row in rows} <= {"郑州", "洛阳", "开封", ""}
    assert 0.5 < sum(1 for row in rows if row[6]) / ROWS < 0.95  # the empty share is kept


def write_mock(tmp_path: Path, real: Path, profile: dict) -> Path:
    mock = tmp_path / "mock.csv"
    mock.write_text(mock_sample(real, profile["columns"], profile["key_column"], K), encoding="utf-8")
    return mock


def test_no_key_identifier_or_rare_value_of_the_real_file_is_in_the_mock(tmp_path: Path) -> None:
    real = real_file(tmp_path)
    mock_text = mock_sample(real, profile_csv(real, "phone")["columns"], "phone", K)
    _, real_rows = read(real.read_text(encoding="utf-8"))
    header, rows = read(mock_text)
    for identifying in (0, 1):
        assert not {r[identifying] for r in rows} & {r[identifying] for r in real_rows}
    rare = rare_values(real)
    for i, name in enumerate(header):
        assert not {row[i] for row in rows} & rare[name], name
    assert "98765432" not in mock_text
    assert not {tuple(r) for r in rows} & {tuple(r) for r in real_rows}


@settings(max_examples=20, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 40), st.sampled_from(["a", "b", "c", "d"]), st.floats(0, 100)),
        min_size=1,
        max_size=120,
    ),
    st.integers(1, 12),
)
def test_any_small_table_yields_no_rare_value_and_no_key(
    tmp_path_factory, rows: list[tuple[int, str, float]], k: int
) -> None:
    folder = tmp_path_factory.mktemp("mock")
    real = write(
        folder / "t.csv",
        ["id", "n", "cat", "x"],
        [[f"K{i:05d}", n, cat, round(x, 2)] for i, (n, cat, x) in enumerate(rows)],
    )
    profile = profile_csv(real, "id")
    header, mock_rows = read(mock_sample(real, profile["columns"], "id", k, rows=30))
    _, real_rows = read(real.read_text(encoding="utf-8"))
    assert header == ["id", "n", "cat", "x"] and len(mock_rows) == 30
    assert not {r[0] for r in mock_rows} & {r[0] for r in real_rows}
    for i in (1, 2, 3):
        counts = Counter(r[i] for r in real_rows)
        assert all(counts[r[i]] >= k or counts[r[i]] == 0 for r in mock_rows if r[i])
