"""withheld-part-is-free: an he.aggregate part a provider withholds because its rows are below
the agreement's k was recorded as a denial, which gave the use back and cost nothing, so a
consumer could probe a filter's row count against k for free. Now it is recorded as
``withheld``: the use counts and the agreed fee is due (the README's outcome table)."""

from __future__ import annotations

from typing import Any

from tests.integration.test_he_jobs import run


def test_a_part_below_k_is_withheld_counted_and_charged(world: dict[str, Any]) -> None:
    small, hos3 = world["small"], world["agreements"]["hos3"]
    (held,) = [
        n for n in world["apis"]["hos1"].get("/api/contracts")["contracts"] if n["agreement_id"] == small
    ]
    body = {"operation": "he.aggregate", "stats": ["count"], "column": "x", "agreements": [small, hos3]}
    job = run(world["lab"], body)
    assert job["summary"] == {"statistics": {"count": 2900}, "contributors": 1}
    (after,) = [
        n for n in world["apis"]["hos1"].get("/api/contracts")["contracts"] if n["agreement_id"] == small
    ]
    assert after["uses"] == held["uses"] + 1
    for api in [world["lab"], *world["apis"].values()]:
        api.post("/api/outbox/flush")
    operator = world["live"].operator()
    try:
        records = operator.get("/ledger/records", agreement=small)["records"]
    finally:
        operator.close()
    mine = [r["signed"] for r in records if r["signed"]["document"]["job"] == job["id"]]
    (record,) = mine
    assert (record["document"]["outcome"], record["document"]["fee_fen"]) == ("withheld", 100)
    assert set(record["signatures"]) == {"hos1", "lab"}  # the consumer countersigned the withholding
