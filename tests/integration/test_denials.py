"""Every refused job says why, leaves a denied usage record in the ledger, and changes nothing
else (the agreement's use count stays where it was)."""

import datetime as dt
import os
import re
import subprocess
import sys
import time

import pytest

from connectors.psi_jobs import CONSUMER_WITHHELD
from node import clock
from node.signing import RemoteError, SignedClient
from tds.errors import ApiError
from tests.integration.conftest import agreed, c, ledger_for, negotiate, publish, run_job


def uses(telecom, agreement: str) -> int:  # type: ignore[no-untyped-def]
    return int(telecom.get(f"/api/contracts/{agreement}")["uses"])


def denied_record(operator, bank, telecom, agreement: str, expected: int) -> dict:  # type: ignore[no-untyped-def]
    records = ledger_for(operator, bank, telecom, agreement, expected)
    assert len(records) == expected
    document = records[-1]["signed"]["document"]
    assert document["outcome"] == "denied" and document["fee_fen"] == 0
    assert sorted(records[-1]["signed"]["signatures"]) == ["bank", "telecom"]
    return document  # type: ignore[no-any-return]


def test_uses_exhausted(live, bank, telecom, operator, data) -> None:  # type: ignore[no-untyped-def]
    agreement = agreed(bank, telecom, data["telecom_csv"], [c("count", "lteq", 1)])
    assert run_job(bank, agreement, "psi.cardinality", data["bank_csv"])["status"] == "succeeded"
    second = run_job(bank, agreement, "psi.cardinality", data["bank_csv"])
    assert second["status"] == "denied"
    assert second["error"] == "denied by provider: psi.cardinality not permitted: count lteq 1: count is 2"
    assert (
        denied_record(operator, bank, telecom, agreement, 2)["reason"]
        == "psi.cardinality not permitted: count lteq 1: count is 2"
    )
    assert uses(telecom, agreement) == 1
    # both sides show the same count, the provider's: the consumer's connector asks for it
    both = [api.get(f"/api/contracts/{agreement}")["use"] for api in (telecom, bank)]
    assert [(u["uses"], u["limits"], u["left"]) for u in both] == [
        (1, {"psi.cardinality": 1, "psi.intersection": 1}, {"psi.cardinality": 0, "psi.intersection": 0})
    ] * 2  # the count is the agreement's, across its operations
    assert [u["counted_by"] for u in both] == ["this connector (the provider)", "telecom (the provider)"]
    # only the provider answers, and only to the agreement's consumer
    telecom_asks = SignedClient("telecom", live.connectors["telecom"].config.key())
    try:
        with pytest.raises(RemoteError) as refused:
            telecom_asks.send("GET", f"{live.connectors['bank'].url}/dsp/agreements/{agreement}/uses")
        assert refused.value.status == 404  # the bank is its consumer: it keeps no count to tell
        with pytest.raises(RemoteError) as refused:
            telecom_asks.send("GET", f"{live.connectors['telecom'].url}/dsp/agreements/{agreement}/uses")
        assert refused.value.status == 403 and "telecom is not the consumer of agreement" in str(
            refused.value.problem
        )
    finally:
        telecom_asks.close()


def test_operation_outside_the_agreement(bank, telecom, operator, data) -> None:  # type: ignore[no-untyped-def]
    agreement = agreed(bank, telecom, data["telecom_csv"], operations=("psi.cardinality",))
    job = run_job(bank, agreement, "psi.intersection", data["bank_csv"])
    assert job["status"] == "denied"
    assert (
        "operation psi.intersection is not in the agreement (it permits ['psi.cardinality'])" in job["error"]
    )
    denied_record(operator, bank, telecom, agreement, 1)
    assert uses(telecom, agreement) == 0


def test_consumer_set_too_large(bank, telecom, operator, data) -> None:  # type: ignore[no-untyped-def]
    agreement = agreed(bank, telecom, data["telecom_csv"], [c("consumerSetSize", "lteq", 1999)])
    job = run_job(bank, agreement, "psi.cardinality", data["bank_csv"])
    assert job["status"] == "denied"
    assert job["error"].endswith("consumerSetSize lteq 1999: consumerSetSize is 2000")
    assert denied_record(operator, bank, telecom, agreement, 1)["consumer_set_size"] == 2000
    assert uses(telecom, agreement) == 0


def test_terminated_agreement(bank, telecom, operator, data) -> None:  # type: ignore[no-untyped-def]
    agreement = agreed(bank, telecom, data["telecom_csv"])
    ended = bank.post(f"/api/contracts/{agreement}/terminate", {"reason": "project closed"})
    assert ended["state"] == "TERMINATED"
    assert (
        telecom.wait_for(f"/api/contracts/{agreement}", lambda n: n["state"] == "TERMINATED", 10)["reason"]
        == "project closed"
    )
    assert operator.get(f"/agreements/{agreement}")["state"] == "TERMINATED"
    job = run_job(bank, agreement, "psi.cardinality", data["bank_csv"])
    assert job["status"] == "denied"
    assert f"agreement {agreement} was terminated: project closed" in job["error"]
    denied_record(operator, bank, telecom, agreement, 1)


def test_expired_agreement(bank, telecom, operator, data) -> None:  # type: ignore[no-untyped-def]
    # valid long enough for a slow machine to finish negotiating, then wait until it has expired
    # by the nodes' clock (node.clock: the suite may run with it moved to another date)
    until = clock.now() + dt.timedelta(seconds=10)
    agreement = agreed(bank, telecom, data["telecom_csv"], [c("dateTime", "lt", until.isoformat())])
    deadline = time.monotonic() + 60
    while clock.now() <= until and time.monotonic() < deadline:  # until the agreement has expired
        time.sleep(0.1)
    job = run_job(bank, agreement, "psi.cardinality", data["bank_csv"])
    assert job["status"] == "denied"
    assert "dateTime lt " in job["error"]
    denied_record(operator, bank, telecom, agreement, 1)
    assert uses(telecom, agreement) == 0


def test_minimum_result_size_withholds_the_result(live, bank, telecom, operator, data) -> None:  # type: ignore[no-untyped-def]
    agreement = agreed(bank, telecom, data["telecom_csv"], [c("resultSize", "gteq", 501)])
    job = run_job(bank, agreement, "psi.cardinality", data["bank_csv"])
    assert job["status"] == "withheld"
    # the reason names the constraint, not the size it protects
    assert job["error"] == "result withheld: resultSize gteq 501 not met (the result is not told)"
    assert job["summary"] is None
    with pytest.raises(ApiError, match="result withheld") as caught:
        bank.get(f"/api/jobs/{job['id']}/result")
    assert caught.value.status == 403
    # the command line exits as the job ended, 5 (withheld), whichever command reads it
    bank_dir = str(live.connectors["bank"].config.path)
    for command in (["job", "result", job["id"]], ["job", "wait", job["id"]]):
        shown = subprocess.run([sys.executable, "-m", "tds.cli", "--data-dir", bank_dir, *command],
                               capture_output=True, text=True, check=False)  # fmt: skip
        assert (shown.returncode, shown.stderr.splitlines()[-1]) == (5, f"error: {job['error']}")
    # the use happened (the provider computed), so it is recorded — as withheld, at the agreed fee,
    # the consumer's connector having told the provider — and charged
    (logged,) = ledger_for(operator, bank, telecom, agreement, 1)
    record = logged["signed"]["document"]
    assert (record["outcome"], record["reason"]) == ("withheld", CONSUMER_WITHHELD)
    assert record["fee_fen"] > 0 and set(logged["signed"]["signatures"]) == {"bank", "telecom"}
    (held,) = [j for j in telecom.get("/api/jobs")["jobs"] if j["id"] == job["id"]]
    assert (held["status"], held["record_id"]) == ("withheld", record["id"])


def test_negotiation_refused_by_policy(bank, telecom, data) -> None:  # type: ignore[no-untyped-def]
    entry = publish(telecom, data["telecom_csv"], [c("purpose", "isAnyOf", ["risk-control"])])
    neg = negotiate(bank, entry["offers"][0]["id"], purpose="marketing")
    assert neg["state"] == "TERMINATED"
    assert neg["reason"].startswith(
        "psi.cardinality not permitted: purpose isAnyOf [risk-control]: purpose is 'marketing'"
    )
    assert neg["agreement_id"] is None


def test_manual_approval_and_rejection(bank, telecom, data) -> None:  # type: ignore[no-untyped-def]
    entry = publish(telecom, data["telecom_csv"], auto_approve=False)
    offer = entry["offers"][0]["id"]
    waiting = negotiate(bank, offer)
    assert waiting["state"] == "REQUESTED"
    approved = telecom.post(f"/api/contracts/{waiting['provider_pid']}/approve")
    assert approved["state"] == "AGREED"
    final = bank.wait_for(f"/api/contracts/{waiting['id']}", lambda n: n["state"] == "FINALIZED", 20)
    assert final["agreement_id"] == approved["agreement_id"]
    refused = negotiate(bank, offer)
    telecom.post(f"/api/contracts/{refused['provider_pid']}/reject", {"reason": "not this quarter"})
    ended = bank.wait_for(f"/api/contracts/{refused['id']}", lambda n: n["state"] == "TERMINATED", 20)
    assert ended["reason"] == "not this quarter"
    with pytest.raises(ApiError, match="only a REQUESTED one can be approved"):
        telecom.post(f"/api/contracts/{refused['provider_pid']}/approve")


def test_requesting_an_operation_the_offer_lacks(bank, telecom, data) -> None:  # type: ignore[no-untyped-def]
    entry = publish(telecom, data["telecom_csv"], operations=("psi.cardinality",))
    with pytest.raises(
        ApiError, match=r"does not include \['psi.intersection'\]; it offers \['psi.cardinality'\]"
    ):
        bank.post(
            "/api/contracts",
            {"offer": entry["offers"][0]["id"], "purpose": "x", "operations": ["psi.intersection"]},
        )


@pytest.mark.parametrize(
    ("content", "column", "message"),
    [
        (b'phone\n"13800000000\n', "phone", "malformed CSV at line"),
        (b"msisdn\n13800000000\n", "phone", r"no column 'phone'; the header has \['msisdn'\]"),
        (b"", "phone", "empty file"),
        (b"phone\n\n \n", "phone", "column 'phone' has no non-empty values"),
        (b"phone,x\n138,1\n139\n", "phone", "line 3 has 1 fields, the header has 2"),
    ],
)
def test_bad_input_is_refused_and_creates_nothing(
    bank,
    telecom,
    operator,
    data,
    tmp_path,
    content: bytes,  # type: ignore[no-untyped-def]
    column: str,
    message: str,
) -> None:
    agreement = agreed(bank, telecom, data["telecom_csv"])
    before = len(bank.get("/api/jobs", limit=1000)["jobs"])
    bad = tmp_path / "bad.csv"
    bad.write_bytes(content)
    with pytest.raises(ApiError, match=message) as caught:
        bank.post(
            "/api/jobs",
            {"agreement": agreement, "operation": "psi.cardinality", "input": str(bad), "column": column},
        )
    assert caught.value.status == 422
    assert len(bank.get("/api/jobs", limit=1000)["jobs"]) == before
    assert operator.get("/ledger/records", agreement=agreement)["records"] == []
    assert uses(telecom, agreement) == 0


def test_unknown_agreement_and_operation(bank, data) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ApiError, match="no contract negotiation or agreement 'urn:uuid:nope'"):
        bank.post(
            "/api/jobs",
            {
                "agreement": "urn:uuid:nope",
                "operation": "psi.cardinality",
                "input": str(data["bank_csv"]),
                "column": "phone",
            },
        )
    runs = "['psi.cardinality', 'psi.intersection', 'psi.sum', 'he.aggregate', 'he.score', 'script']"
    with pytest.raises(ApiError, match=re.escape(f"operation 'psi.everything': this connector runs {runs}")):
        bank.post("/api/jobs", {"agreement": "x", "operation": "psi.everything", "input": "x"})
    fields = "input: unknown field; expected any of operation, agreement, code, args, reason, columns"
    with pytest.raises(ApiError, match=re.escape(f"script request: code: required; {fields}")):
        bank.post("/api/jobs", {"agreement": "x", "operation": "script", "input": "x"})
    score = {"agreement": "x", "operation": "he.score", "ids": "x", "column": "phone"}
    with pytest.raises(ApiError, match=re.escape("he.score request: model: required") + "$"):
        bank.post("/api/jobs", score)
    with pytest.raises(ApiError, match="no contract negotiation or agreement 'x'"):
        bank.post("/api/jobs", {**score, "model": "x"})


def test_a_job_request_is_refused_with_every_wrong_field_and_creates_nothing(bank, data) -> None:  # type: ignore[no-untyped-def]
    before = bank.get("/api/jobs")["jobs"]
    request = {
        "agreement": "x",
        "operation": "psi.cardinality",
        "input": str(data["bank_csv"]),
        "column": "phone",
    }
    with pytest.raises(ApiError) as refused:
        bank.post("/api/jobs", {**request, "epsilon": True, "colum": "phone", "input": 7})
    assert refused.value.status == 400
    assert refused.value.problem["detail"] == (
        "psi.cardinality request: input: expected a valid string, got 7; epsilon: expected a valid number, "
        "got True; colum: unknown field; expected any of operation, agreement, input, column, epsilon, "
        "sum, by"
    )
    assert [e["pointer"] for e in refused.value.problem["errors"]] == ["/input", "/epsilon", "/colum"]
    with pytest.raises(ApiError, match=re.escape("agreements[1]: expected a valid string, got 3")):
        bank.post("/api/jobs", {"operation": "he.aggregate", "agreements": ["a", 3], "stats": ["count"]})
    assert bank.get("/api/jobs")["jobs"] == before


def test_provider_failure_is_recorded_and_releases_the_use(live, bank, telecom, operator, data) -> None:  # type: ignore[no-untyped-def]
    entry = publish(telecom, data["telecom_csv"], [c("count", "lteq", 1)])
    neg = negotiate(bank, entry["offers"][0]["id"])
    agreement = bank.wait_for(f"/api/contracts/{neg['id']}", lambda n: n["state"] == "FINALIZED", 20)[
        "agreement_id"
    ]
    held = live.connectors["telecom"].config.path / "datasets" / f"{entry['name']}.csv"
    held.rename(held.with_suffix(".away"))  # the provider's copy is gone: its sandbox cannot read it
    try:
        job = run_job(bank, agreement, "psi.cardinality", data["bank_csv"])
    finally:
        held.with_suffix(".away").rename(held)
    assert job["status"] == "failed"
    assert f"failed by provider: {entry['name']}.csv: cannot read: No such file or directory" in job["error"]
    records = ledger_for(operator, bank, telecom, agreement, 1)
    document = records[0]["signed"]["document"]
    assert (document["outcome"], document["fee_fen"]) == ("failed", 0)
    assert uses(telecom, agreement) == 0  # the use reserved at grant was given back
    assert run_job(bank, agreement, "psi.cardinality", data["bank_csv"])["status"] == "succeeded"


def test_a_contained_violation_fails_the_job_and_the_connector_serves_on(  # type: ignore[no-untyped-def]
    bank, telecom, operator, data
) -> None:
    # the offer lowers the provider's output cap to nothing: its sandbox cannot answer
    entry = publish(telecom, data["telecom_csv"], sandbox_limits={"output_mb": 0})
    assert "sandbox_limits" not in entry["offers"][0]  # local to the provider, never listed
    neg = negotiate(bank, entry["offers"][0]["id"])
    agreement = bank.wait_for(f"/api/contracts/{neg['id']}", lambda n: n["state"] == "FINALIZED", 20)[
        "agreement_id"
    ]
    job = run_job(bank, agreement, "psi.cardinality", data["bank_csv"])
    assert job["status"] == "failed"
    assert job["error"] == "failed by provider: sandbox: output limit 0 MiB exceeded"
    document = ledger_for(operator, bank, telecom, agreement, 1)[0]["signed"]["document"]
    assert (document["outcome"], document["reason"]) == ("failed", "sandbox: output limit 0 MiB exceeded")
    assert uses(telecom, agreement) == 0
    backend = telecom.get("/api/status")["sandbox"]
    if os.environ.get("CI") == "true":
        assert backend == "bwrap"  # auto picks the strongest: .ci/run installs bubblewrap
    provider_job = telecom.get(f"/api/jobs/{job['id']}")
    assert provider_job["metrics"]["sandbox"] == [backend]  # it failed: no isolation to report
    # the same connector goes on serving other agreements
    other = agreed(bank, telecom, data["telecom_csv"])
    done = run_job(bank, other, "psi.cardinality", data["bank_csv"])
    assert done["status"] == "succeeded"
    assert done["metrics"]["provider_sandbox"][0] == backend
    assert "namespaces" in done["metrics"]["provider_sandbox"]


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        (
            {"memory_mb": 10**6},
            "per-offer sandbox limits may only lower the connector's; too high: memory_mb",
        ),
        ({"ram": 1}, "unknown sandbox limits ['ram']"),
        ("small", 'sandbox_limits: expected an object such as {"memory_mb": 512}'),
    ],
)
def test_per_offer_limits_above_the_connectors_are_refused(telecom, data, limits, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ApiError, match=re.escape(message)):
        publish(telecom, data["telecom_csv"], sandbox_limits=limits)


def test_a_proposed_price_waits_for_the_provider_and_is_what_the_jobs_charge(
    bank, telecom, operator, data
) -> None:  # type: ignore[no-untyped-def]
    entry = publish(telecom, data["telecom_csv"], price={"model": "per_job", "amount_fen": 5000})
    offer_id = entry["offers"][0]["id"]
    request = {"offer": offer_id, "purpose": "risk-control", "operations": ["psi.cardinality"]}
    with pytest.raises(ApiError, match=r"price: price.amount_fen: expected a whole number of fen"):
        bank.post("/api/contracts", {**request, "price": {"model": "per_job", "amount_fen": 39.5}})
    asked = {"model": "per_job", "amount_fen": 4000}
    neg = bank.post("/api/contracts", {**request, "price": asked})
    waiting = bank.wait_for(f"/api/contracts/{neg['id']}", lambda n: n["provider_pid"], 20)
    at_provider = telecom.get(f"/api/contracts/{waiting['provider_pid']}")
    # the provider decided, when the request came, that a person approves it: nothing is sent
    # to the consumer until one does
    assert (at_provider["state"], at_provider["approval"]) == ("REQUESTED", "manual")
    assert at_provider["price"] == {**asked, "currency": "CNY"}
    assert bank.get(f"/api/contracts/{neg['id']}")["state"] == "REQUESTED"
    telecom.post(f"/api/contracts/{waiting['provider_pid']}/approve")
    done = bank.wait_for(f"/api/contracts/{neg['id']}", lambda n: n["state"] == "FINALIZED", 20)
    assert done["agreement"]["document"]["tds:price"] == {**asked, "currency": "CNY"}
    job = run_job(bank, done["agreement_id"], "psi.cardinality", data["bank_csv"])
    record = ledger_for(operator, bank, telecom, done["agreement_id"], 1)[0]["signed"]["document"]
    assert (job["status"], record["fee_fen"]) == ("succeeded", 4000)
