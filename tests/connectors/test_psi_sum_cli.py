"""The command line's side of psi.sum: the request it builds, its usage errors, and how a result
prints."""

from pathlib import Path

import click
import pytest

from tds.commands.jobs import RESULT_LINES, _job_body

OPTIONS = {"input_file": None, "column": "phone", "epsilon": None, "summed": None, "by": None}


def test_the_request_names_the_columns(tmp_path: Path) -> None:
    a = tmp_path / "a.csv"
    body = _job_body("psi.sum", ("A",), {**OPTIONS, "input_file": a, "summed": "balance", "by": "city"})
    assert body == {"agreement": "A", "operation": "psi.sum", "input": str(a.resolve()), "column": "phone",
                    "sum": "balance", "by": "city"}  # fmt: skip


@pytest.mark.parametrize(
    ("operation", "extra", "message"),
    [
        ("psi.sum", {}, "psi.sum needs --sum COLUMN (the provider's column to sum)"),
        (
            "psi.cardinality",
            {"summed": "balance"},
            "--sum and --by are psi.sum's; psi.cardinality sums nothing",
        ),
        ("psi.intersection", {"by": "city"}, "--sum and --by are psi.sum's; psi.intersection sums nothing"),
    ],
)
def test_usage_errors(tmp_path: Path, operation: str, extra: dict[str, str], message: str) -> None:
    with pytest.raises(click.UsageError) as refused:
        _job_body(operation, ("A",), {**OPTIONS, "input_file": tmp_path / "a.csv", **extra})
    assert refused.value.message == message


def test_a_result_prints_as_a_line_or_a_table() -> None:
    whole = {"cardinality": 2000, "column": "balance", "count": 2000, "sum": "65690.00"}
    assert RESULT_LINES["sums"](whole) == "|A ∩ B| = 2000\nsum of balance over 2000 matched rows = 65690.00"
    by = {"cardinality": 2000, "column": "balance", "by": "city", "withheld_categories": 1,
          "categories": [{"category": "开封", "count": 667, "sum": "32593.35"},
                         {"category": "洛阳", "count": 667, "sum": "-5.5"}]}  # fmt: skip
    assert RESULT_LINES["sums"](by).splitlines() == [
        "|A ∩ B| = 2000",
        "city  count  sum of balance",
        "开封      667        32593.35",
        "洛阳      667            -5.5",
        "1 category withheld by the provider: under the offer's k",
    ]
