"""The automatic checks on a script's output: size, shape, declared columns, counts ≥ k and no
identifying value of the dataset, however plainly encoded."""

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.output_checks import Forbidden, Output, check

KEYS = ["13800138000", "13900139001", "ab12"]


def forbidden() -> Forbidden:
    f = Forbidden()
    f.add("phone", KEYS)
    return f


def run(output: Output, declared: tuple[str, ...] | None = None, max_bytes: int = 10_000) -> list[str]:
    return check(output, max_bytes=max_bytes, declared_columns=declared, k=10, forbidden=forbidden())


def json_out(value: object) -> Output:
    return Output(json.dumps(value).encode())


def table(text: str, counts: tuple[str, ...] = ()) -> Output:
    return Output(text.encode(), table=True, counts=counts)


def test_a_clean_json_object_passes() -> None:
    assert run(json_out({"mean_income": 5123.5, "rows": 1000})) == []


def test_a_clean_table_with_counts_at_least_k_passes() -> None:
    out = table("city,n,mean\nzz,10,1.5\nyy,250,2.0\n", counts=("n",))
    assert run(out, declared=("city", "n", "mean")) == []


@pytest.mark.parametrize(
    "leak",
    [
        {"rows": [["13800138000", 5000]]},  # raw rows copied out
        {"key": 13800138000},  # a key as a number
        {"key": 13800138000.0},
        {"note": "id=13900139001;"},  # inside other text
        {"b64": base64.b64encode(b"13800138000,5000").decode()},
        {"b64url": base64.urlsafe_b64encode(b"x 13900139001 x").decode().rstrip("=")},
        {"hex": b"13800138000".hex()},
        {"short": "ab12"},  # a short key as a whole token
        {"upper": "AB12"},
    ],
)
def test_a_key_anywhere_withholds_the_output_naming_the_column_not_the_value(leak: dict) -> None:
    reasons = run(json_out(leak))
    assert reasons == ["output contains a value of column 'phone', which may not leave the provider"]
    assert not any(k in r for r in reasons for k in KEYS)


def test_a_short_key_inside_a_longer_token_is_not_a_match() -> None:
    assert run(json_out({"code": "xab123"})) == []


def test_an_output_over_the_cap_is_refused_before_anything_else_is_read() -> None:
    out = json_out({"x": "13800138000" * 100})
    assert run(out, max_bytes=100) == [
        f"output is {len(out.data)} bytes; the policy allows at most 100 (outputBytes)"
    ]


def test_small_counts_withhold_a_table() -> None:
    out = table("city,n\nzz,3\nyy,12\nxx,9.5\nww,\n", counts=("n",))
    assert run(out, declared=("city", "n")) == ["count column 'n' has 3 cells below k = 10 (or not a number)"]


def test_a_key_in_a_count_column_is_found_too() -> None:
    out = table("n\n13800138000\n", counts=("n",))
    assert run(out, declared=("n",)) == [
        "output contains a value of column 'phone', which may not leave the provider"
    ]


@pytest.mark.parametrize(
    ("output", "declared", "reason"),
    [
        (
            table("a,b\n1,2\n"),
            ("a", "c"),
            "output table has columns ['a', 'b']; the request declared ['a', 'c']",
        ),
        (
            table("a,b\n1,2\n"),
            None,
            "output is a table but the request declared none; declare its columns (output.columns)",
        ),
        (
            table("a\n1\n", counts=("n",)),
            ("a",),
            "the script marked counts ['n'] that the table does not have",
        ),
        (
            json_out({"a": 1}),
            ("a",),
            "the request declared a table with columns ['a']; the output is a JSON object",
        ),
        (Output(b"[1, 2]"), None, "output must be a JSON object"),
        (Output(b"{oops"), None, "output is not JSON"),
        (Output(b"\xff\xfe"), None, "output is not UTF-8 text"),
    ],
)
def test_a_wrong_shape_is_named(output: Output, declared: tuple[str, ...] | None, reason: str) -> None:
    assert run(output, declared=declared) == [reason]


@given(st.text(alphabet='0123456789abcdef ,:{}"', max_size=200), st.sampled_from(KEYS[:2]))
def test_a_long_key_spliced_into_any_text_is_found(noise: str, key: str) -> None:
    cut = len(noise) // 2
    text = noise[:cut] + key + noise[cut:]
    assert forbidden().find(text) == "phone"


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz ,.", max_size=300))
def test_text_without_keys_or_digits_is_clean(text: str) -> None:
    assert forbidden().find(text) is None
