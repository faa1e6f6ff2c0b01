"""cell-in-error-message: he.aggregate over a text column failed with NumPy's message, which
quotes the cell ("could not convert string to float: 'Li Si'"); with a --where filter that
reads any cell, one row at a time, and the failure gave the use back, so probing was free.
Now no text that leaves a provider carries a value of its data, and a failure caused by the
consumer's request after the policy check counts as a use (without a fee)."""

from __future__ import annotations

from typing import Any

from tests.integration.test_he_jobs import run

CITIES = ("郑州", "洛阳")  # the providers' cells in the column probed


def uses(world: dict[str, Any], provider: str, agreement: str) -> int:
    (held,) = [n for n in world["apis"][provider].get("/api/contracts")["contracts"]
               if n["agreement_id"] == agreement]  # fmt: skip
    return int(held["uses"])


def test_a_text_column_fails_without_quoting_a_cell_and_the_use_counts(world: dict[str, Any]) -> None:
    agreement = world["agreements"]["hos1"]
    before = uses(world, "hos1", agreement)
    body = {"operation": "he.aggregate", "stats": ["sum"], "column": "city", "where": "x >= 99.9",
            "agreements": [agreement]}  # fmt: skip
    job = run(world["lab"], body)
    assert job["status"] == "failed"
    assert "column 'city' holds values that are not numbers" in job["error"]
    assert not any(city in job["error"] for city in CITIES), job["error"]
    assert uses(world, "hos1", agreement) == before + 1  # a failure of the consumer's own asking
    for api in [world["lab"], *world["apis"].values()]:
        api.post("/api/outbox/flush")
    operator = world["live"].operator()
    try:
        records = operator.get("/ledger/records", agreement=agreement)["records"]
    finally:
        operator.close()
    record = records[-1]["signed"]["document"]
    assert (record["outcome"], record["fee_fen"]) == ("failed", 0)
    assert not any(city in record["reason"] for city in CITIES), record["reason"]
