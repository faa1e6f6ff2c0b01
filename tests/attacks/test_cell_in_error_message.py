"""cell-in-error-message: he.aggregate over a text column failed with NumPy's message, which
quotes the cell ("could not convert string to float: 'Li Si'"); with a --where filter that
reads any cell, one row at a time, and the failure gave the use back, so probing was free.
Now no text that leaves a provider carries a value of its data, and a failure caused by the
consumer's request after the policy check counts as a use (without a fee)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tds.errors import ApiError
from tests.attacks.test_values_in_error_texts import cells, leaked, log_reasons
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


def test_no_he_job_failure_quotes_a_providers_cell(world: dict[str, Any], tmp_path: Path) -> None:
    hos1 = world["agreements"]["hos1"]
    failing = [
        {"stats": ["sum"], "column": "city"},  # text where numbers are needed
        {"stats": ["histogram"], "column": "city", "bins": [0, 10, 20]},
        {"stats": ["linreg"], "features": ["city"], "target": "x"},
        {"stats": ["linreg"], "features": ["x"], "target": "city"},
        {"stats": ["sum"], "column": "x", "where": "city > 3"},  # a text column compared with a number
        {
            "stats": ["count"],
            "column": "x",
            "where": "patient == 'P1-7'",
        },  # a column the offer does not allow
        {"stats": ["mean"], "column": "x", "where": "x > 99.99999 and x < 99.999991"},  # below k
    ]
    texts = []
    for body in failing:
        job = run(world["lab"], {"operation": "he.aggregate", "agreements": [hos1], **body})
        assert job["status"] in ("failed", "denied", "withheld"), (body, job)
        texts.append(str(job["error"]))
    ids = tmp_path / "ids.csv"
    ids.write_text("patient\nP3-1\nP3-2\nnobody\n")
    model = tmp_path / "model.json"
    for weights in ({"x": 1.0, "city": 1.0}, {"x": "heavy"}):  # a column not offered; not a number
        model.write_text(json.dumps({"weights": weights, "bias": 0.0}))
        body = {"operation": "he.score", "agreement": world["score"], "ids": str(ids), "column": "patient",
                "model": str(model)}  # fmt: skip
        try:
            job = run(world["lab"], body)
        except ApiError as exc:  # refused by the consumer's own connector before any job exists
            texts.append(str(exc))
        else:
            texts.append(str(job["error"]))
    for api in [world["lab"], *world["apis"].values()]:
        api.post("/api/outbox/flush")
    texts += log_reasons(world["live"], [hos1, world["score"]])
    values = cells(*(world["root"] / f"{name}.csv" for name in ("hos1", "hos2", "hos3")))
    assert len(values) > 10_000 and len(texts) >= 9
    assert leaked(texts, values) == []
