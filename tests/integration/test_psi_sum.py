"""psi.sum between two connectors and the space: the exact sum and per-category sums of the
provider's column over A ∩ B, k enforced by the provider on the counts it decrypts, the summed
columns checked by policy, and every end — succeeded, withheld, denied, failed — a usage record
the consumer countersigned."""

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import agreed, c, ledger_for

OURS = range(0, 3000)
THEIRS = range(1000, 6000)  # |A ∩ B| = 2000: 1000..2999


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sum")
    (root / "a.csv").write_text("phone\n" + "".join(f"137{i:08d}\n" for i in OURS))
    rows = "".join(
        f"137{i:08d},{i % 97}.{i % 10}5,{['郑州', '洛阳', '开封'][i % 3] if i < 5990 else '小城'}\n"
        for i in THEIRS
    )
    (root / "b.csv").write_text("phone,balance,city\n" + rows)
    return {"a": root / "a.csv", "b": root / "b.csv"}


def expected(by_city: bool) -> dict[str, tuple[int, Decimal]]:
    out: dict[str, tuple[int, Decimal]] = {}
    for i in set(OURS) & set(THEIRS):
        city = (["郑州", "洛阳", "开封"][i % 3] if i < 5990 else "小城") if by_city else ""
        count, total = out.get(city, (0, Decimal(0)))
        out[city] = (count + 1, total + Decimal(f"{i % 97}.{i % 10}5"))
    return out


def submit(bank: Any, agreement: str, a: Path, **extra: Any) -> dict[str, Any]:
    body = {"agreement": agreement, "operation": "psi.sum", "input": str(a), "column": "phone", **extra}
    job = bank.post("/api/jobs", body)
    return dict(bank.wait_for_job(job["id"], 300))


def test_the_sum_and_the_sums_by_category(bank, telecom, operator, files) -> None:  # type: ignore[no-untyped-def]
    allowed = [c("column", "isPartOf", ["balance", "city"]), c("resultSize", "gteq", 10)]
    agreement = agreed(bank, telecom, files["b"], allowed, ("psi.sum",))
    job = submit(bank, agreement, files["a"], sum="balance")
    assert job["status"] == "succeeded", job
    result = bank.get(f"/api/jobs/{job['id']}/result")
    ((count, total),) = expected(False).values()
    assert (result["cardinality"], result["count"], Decimal(result["sum"])) == (2000, count, total)
    assert result["sum"] == f"{total:.2f}"
    job = submit(bank, agreement, files["a"], sum="balance", by="city")
    result = bank.get(f"/api/jobs/{job['id']}/result")
    want = expected(True)
    got = {r["category"]: (r["count"], Decimal(r["sum"])) for r in result["categories"]}
    assert got == want and result["by"] == "city"
    assert result["withheld_categories"] == 1  # 小城: none of its rows matched, 0 < k
    records = ledger_for(operator, bank, telecom, agreement, 2)
    assert [(r["signed"]["document"]["outcome"], r["signed"]["document"]["fee_fen"]) for r in records] == [
        ("succeeded", 5000)
    ] * 2
    assert all(sorted(r["signed"]["signatures"]) == ["bank", "telecom"] for r in records)


def test_the_provider_withholds_categories_under_k(bank, telecom, operator, files) -> None:  # type: ignore[no-untyped-def]
    allowed = [c("column", "isPartOf", ["balance", "city"]), c("resultSize", "gteq", 667)]
    agreement = agreed(bank, telecom, files["b"], allowed, ("psi.sum",))
    job = submit(bank, agreement, files["a"], sum="balance", by="city")
    result = bank.get(f"/api/jobs/{job['id']}/result")
    want = expected(True)
    assert sorted(n for n, _ in want.values()) == [666, 667, 667]
    released = {r["category"]: (r["count"], Decimal(r["sum"])) for r in result["categories"]}
    assert released == {k: v for k, v in want.items() if v[0] == 667}
    assert result["withheld_categories"] == 2  # the one of 666 and 小城's 0
    small = [c("column", "isPartOf", ["balance"]), c("resultSize", "gteq", 2001)]
    agreement = agreed(bank, telecom, files["b"], small, ("psi.sum",))
    job = submit(bank, agreement, files["a"], sum="balance")
    assert job["status"] == "withheld", job
    assert (
        job["error"]
        == "result withheld: resultSize gteq 2001 not met (the result is not told); the provider counted it"
    )
    (record,) = ledger_for(operator, bank, telecom, agreement, 1)
    assert record["signed"]["document"]["outcome"] == "withheld"


def test_a_column_outside_the_policy_is_denied_and_a_text_column_fails(
    bank, telecom, operator, files
) -> None:  # type: ignore[no-untyped-def]
    agreement = agreed(bank, telecom, files["b"], [c("column", "isPartOf", ["balance"])], ("psi.sum",))
    job = submit(bank, agreement, files["a"], sum="balance", by="city")
    assert job["status"] == "denied"
    assert job["error"] == (
        "denied by provider: psi.sum not permitted: column isPartOf [balance]: column is ['balance', 'city']"
    )
    agreement = agreed(
        bank, telecom, files["b"], [c("column", "isPartOf", ["balance", "city"])], ("psi.sum",)
    )
    job = submit(bank, agreement, files["a"], sum="city")
    assert job["status"] == "failed"
    assert "column 'city' holds values that are not numbers" in job["error"]
    assert "郑州" not in job["error"]
    job = submit(bank, agreement, files["a"], sum="nope")
    assert job["status"] == "denied" and "column is ['nope']" in job["error"]
    outcomes = [r["signed"]["document"]["outcome"] for r in ledger_for(operator, bank, telecom, agreement, 2)]
    assert outcomes == ["failed", "denied"]


def test_a_set_over_the_policys_bound_is_denied_and_recorded(bank, telecom, operator, files) -> None:  # type: ignore[no-untyped-def]
    bound = [c("column", "isPartOf", ["balance"]), c("consumerSetSize", "lteq", len(OURS) - 1)]
    agreement = agreed(bank, telecom, files["b"], bound, ("psi.sum",))
    job = submit(bank, agreement, files["a"], sum="balance")
    assert (job["status"], job["error"]) == (
        "denied",
        f"denied by provider: psi.sum not permitted: consumerSetSize lteq {len(OURS) - 1}: "
        f"consumerSetSize is {len(OURS)}",
    )
    (record,) = ledger_for(operator, bank, telecom, agreement, 1)
    assert (record["signed"]["document"]["outcome"], record["signed"]["document"]["fee_fen"]) == ("denied", 0)


def test_bad_requests_are_refused_before_a_job_exists(bank, telecom, files) -> None:  # type: ignore[no-untyped-def]
    from tds.errors import ApiError

    agreement = agreed(bank, telecom, files["b"], [], ("psi.sum",))
    before = len(bank.get("/api/jobs")["jobs"])
    for extra, message in [
        ({}, "psi.sum needs the provider's column to sum (--sum COLUMN)"),
        ({"sum": "balance", "epsilon": 1.0}, "epsilon: psi.sum takes none"),
    ]:
        body = {
            "agreement": agreement,
            "operation": "psi.sum",
            "input": str(files["a"]),
            "column": "phone",
            **extra,
        }
        with pytest.raises(ApiError, match=re.escape(message)):
            bank.post("/api/jobs", body)
    with pytest.raises(ApiError, match=re.escape("sum, by: only psi.sum sums a column, not psi.cardinality")):
        bank.post(
            "/api/jobs",
            {
                "agreement": agreement,
                "operation": "psi.cardinality",
                "input": str(files["a"]),
                "column": "phone",
                "sum": "balance",
            },
        )
    assert len(bank.get("/api/jobs")["jobs"]) == before
