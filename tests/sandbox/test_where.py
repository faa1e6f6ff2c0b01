"""The --where filter language: what it selects, and what it refuses (with where)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox.ops.where import MAX_DEPTH, WhereError, columns, mask, parse

TABLE = {
    "age": np.array(["30", "45", "n/a", "61", "18"], dtype=object),
    "city": np.array(["郑州", "洛阳", "郑州", "开封", "郑州"], dtype=object),
    "score-2": np.array(["1.5", "2", "3", "-1", "0"], dtype=object),
}


@pytest.mark.parametrize(
    ("text", "selected"),
    [
        ("age >= 45", [1, 3]),
        ("age < 40 and city = '郑州'", [0, 4]),
        ("age > 60 or city in ('洛阳', '开封')", [1, 3]),
        ('not (city == "郑州")', [1, 3]),
        ("city not in ('郑州')", [1, 3]),
        ("age != 30", [1, 3, 4]),  # 'n/a' is not a number: it never matches a numeric condition
        ("`score-2` <= 0", [3, 4]),
        ("score-2 > 1e0", [0, 1, 2]),
        ("age in (18, 61)", [3, 4]),
    ],
)
def test_selects(text: str, selected: list[int]) -> None:
    assert list(np.flatnonzero(mask(parse(text), TABLE))) == selected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the expression is empty"),
        ("age >", "expected a number or 'text' at the end, got the end"),
        ("age 5", "expected in at 4, got '5'"),
        ("(age > 5", "expected ) at the end"),
        ("age > 5 city = 'x'", "unexpected 'city' at 8; join conditions with and / or"),
        ("age > 5; drop table", "unexpected character ';' at 7"),
        ("__import__('os')", "expected in at 10"),
        ("> 5", "expected a column name at 0, got '>'"),
        ("x" * 2001, "at most 2000 characters"),
        ("not " * (MAX_DEPTH + 1) + "age > 1", f"nested more than {MAX_DEPTH} deep"),
    ],
)
def test_refusals_say_where(text: str, message: str) -> None:
    with pytest.raises(WhereError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(text)


def test_unknown_columns_are_named() -> None:
    with pytest.raises(
        WhereError, match=r"unknown column 'salary'; the data has \['age', 'city', 'score-2'\]"
    ):
        mask(parse("salary > 1"), TABLE)


def test_columns_used() -> None:
    assert columns(parse("age > 1 and (city = 'a' or not `score-2` in (1))")) == {"age", "city", "score-2"}


@given(st.lists(st.integers(-1000, 1000), min_size=1, max_size=50), st.integers(-1000, 1000))
def test_numeric_comparisons_agree_with_python(values: list[int], pivot: int) -> None:
    table = {"v": np.array([str(v) for v in values], dtype=object)}
    for op, fn in (
        ("<", int.__lt__),
        ("<=", int.__le__),
        (">", int.__gt__),
        (">=", int.__ge__),
        ("=", int.__eq__),
    ):
        expected = [fn(v, pivot) for v in values]
        assert list(mask(parse(f"v {op} {pivot}"), table)) == expected
