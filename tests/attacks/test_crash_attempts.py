"""kill -9 during a job loses no attempt (issue 12 §6).

killed-provider-keeps-the-use: the provider's connector was killed while its sandbox computed;
the reserved use was gone from the consumer's limit with no trace of the attempt. Now the use
and the pending attempt are written together before computing, and at its next start the
connector ends the attempt as failed (its own fault: the use given back) and logs it.

killed-consumer-job-runs-forever: the consumer's connector was killed while the provider
computed; its job stayed "running" for good. Now it is ended failed at the next start, and the
provider's record of the use, never countersigned, reaches the log signed by the provider alone
(so it is disputed, not billed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connectors.attempts import INTERRUPTED_CONSUMER, INTERRUPTED_PROVIDER
from tds.client import NodeAPI
from tds.local import cluster, negotiate, publish_dataset, run_job
from tests.integration.helpers import cardinality_offer, phone_sets

ROWS = 60_000  # enough for the provider's sandbox to take a few seconds


def pending(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [j for j in body["jobs"] if j["role"] == "provider" and j["phase"] == "pending"]


def big_job(
    tmp_path: Path, consumer: NodeAPI, provider: NodeAPI
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(agreement, the consumer's job, the provider's pending attempt) of a PSI job whose
    provider sandbox takes a few seconds, once the provider has reserved its use."""
    offer = cardinality_offer({"model": "per_job", "amount_fen": 9})
    entry = publish_dataset(provider, "subs", tmp_path / "b.csv", offer)
    agreement = negotiate(consumer, entry["offers"][0]["id"], ["psi.cardinality"])["agreement_id"]
    body = {"agreement": agreement, "operation": "psi.cardinality", "input": str(tmp_path / "a.csv"),
            "column": "phone"}  # fmt: skip
    job = consumer.post("/api/jobs", body)
    seen = provider.wait_for("/api/jobs", lambda b: bool(pending(b)), timeout=120, interval=0.05)
    assert pending(seen), "the provider never started the job"
    return agreement, job, pending(seen)[0]


def uses(provider: NodeAPI, agreement: str) -> int:
    (held,) = [n for n in provider.get("/api/contracts")["contracts"] if n["agreement_id"] == agreement]
    return int(held["uses"])


def logged(live: Any, agreement: str) -> list[dict[str, Any]]:
    operator = live.operator()
    try:
        return list(operator.get("/ledger/records", agreement=agreement)["records"])
    finally:
        operator.close()


def test_a_provider_killed_during_its_sandbox_gives_the_use_back_and_logs_the_attempt(tmp_path: Path) -> None:
    phone_sets(tmp_path, "135", range(0, ROWS), range(ROWS // 2, ROWS + ROWS // 2))
    with cluster(tmp_path / "nodes") as live:
        bank, telecom = live.add_connector("bank", "Bank", 77), live.add_connector("telecom", "Telecom", 78)
        consumer, provider = bank.api(), telecom.api()
        agreement, job, attempt = big_job(tmp_path, consumer, provider)
        assert uses(provider, agreement) == 1  # reserved with the pending attempt
        provider.close()
        telecom.kill()  # kill -9 while the sandbox computes
        ended = consumer.wait_for_job(job["id"], 120)
        assert ended["status"] == "failed"
        telecom.start()
        provider = telecom.api()
        try:
            recovered = provider.get(f"/api/jobs/{attempt['id']}")
            assert (recovered["status"], recovered["error"]) == ("failed", INTERRUPTED_PROVIDER)
            assert uses(provider, agreement) == 0  # the provider's fault: the use is given back
            for api in (consumer, provider):
                api.post("/api/outbox/flush")
            (record,) = [r["signed"]["document"] for r in logged(live, agreement)]
            assert (record["outcome"], record["reason"], record["fee_fen"]) == (
                "failed",
                INTERRUPTED_PROVIDER,
                0,
            )
            again = run_job(consumer, agreement, "psi.cardinality", tmp_path / "a.csv")
            assert again["summary"] == {"cardinality": ROWS // 2}
            assert uses(provider, agreement) == 1
            for api in (consumer, provider):
                api.post("/api/outbox/flush")
            outcomes = [r["signed"]["document"]["outcome"] for r in logged(live, agreement)]
            assert outcomes == ["failed", "succeeded"]  # every use taken has its record, once
        finally:
            consumer.close()
            provider.close()


def test_a_consumer_killed_while_the_provider_computes_does_not_show_a_running_job(tmp_path: Path) -> None:
    phone_sets(tmp_path, "134", range(0, ROWS), range(ROWS // 2, ROWS + ROWS // 2))
    with cluster(tmp_path / "nodes") as live:
        bank = live.add_connector("bank", "Bank", 79)
        telecom = live.add_connector("telecom", "Telecom", 80, options={"countersign_grace_s": 0})
        consumer, provider = bank.api(), telecom.api()
        agreement, job, attempt = big_job(tmp_path, consumer, provider)
        consumer.close()
        bank.kill()  # kill -9 while the provider computes
        provider.wait_for(f"/api/jobs/{attempt['id']}", lambda j: j["phase"] == "done", timeout=120)
        bank.start()
        consumer = bank.api()
        try:
            shown = consumer.get(f"/api/jobs/{job['id']}")
            assert (shown["status"], shown["phase"], shown["error"]) == (
                "failed",
                "done",
                INTERRUPTED_CONSUMER,
            )
            provider.wait_for("/api/outbox", lambda o: not o["pending"], timeout=60)
            (record,) = logged(live, agreement)
            assert record["signed"]["document"]["outcome"] == "succeeded"
            assert set(record["signed"]["signatures"]) == {"telecom"}  # never countersigned: disputed
        finally:
            consumer.close()
            provider.close()
