"""operator-terminated-agreement-still-used: the operator terminates an agreement at the space;
the provider's connector, which kept its own copy FINALIZED, went on running jobs under it and
the space billed them. The provider now asks the space before every job, and the log refuses
uses that started after the termination. While the space cannot answer, jobs are refused."""

from __future__ import annotations

from pathlib import Path

from tds.local import cluster, negotiate, publish_dataset, run_job
from tests.integration.helpers import cardinality_offer, phone_sets


def test_a_job_after_the_operator_terminated_the_agreement_is_denied_by_the_provider(tmp_path: Path) -> None:
    phone_sets(tmp_path, "136", range(0, 30), range(10, 60))
    with cluster(tmp_path / "nodes") as live:
        bank, telecom = live.add_connector("bank", "Bank", 75), live.add_connector("telecom", "Telecom", 76)
        consumer, provider, operator = bank.api(), telecom.api(), live.operator()
        try:
            offer = cardinality_offer({"model": "per_job", "amount_fen": 100})
            entry = publish_dataset(provider, "subs", tmp_path / "b.csv", offer)
            agreements = [
                negotiate(consumer, entry["offers"][0]["id"], ["psi.cardinality"]) for _ in range(2)
            ]
            ended, other = (a["agreement_id"] for a in agreements)
            assert run_job(consumer, ended, "psi.cardinality", tmp_path / "a.csv")["status"] == "succeeded"
            operator.post(f"/admin/agreements/{ended}/termination", {"reason": "breach of purpose"})
            for api in (consumer, provider):  # the space tells both connectors at once
                api.wait_for(
                    f"/api/contracts/{ended}",
                    lambda n: n["state"] == "TERMINATED" and n["reason"].endswith(": breach of purpose"),
                    timeout=30,
                )

            job = run_job(consumer, ended, "psi.cardinality", tmp_path / "a.csv")
            assert job["status"] == "denied"
            assert f"agreement {ended} was terminated by space at " in job["error"]
            assert job["error"].endswith(": breach of purpose")
            (held,) = [n for n in provider.get("/api/contracts")["contracts"] if n["agreement_id"] == ended]
            assert held["state"] == "TERMINATED"  # the provider's copy follows the space's

            for api in (consumer, provider):
                api.post("/api/outbox/flush")
            records = operator.get("/ledger/records", agreement=ended)["records"]
            assert [r["signed"]["document"]["outcome"] for r in records] == ["succeeded", "denied"]

            live.space.kill()  # the space cannot be asked: no job runs on the provider's word alone
            refused = run_job(consumer, other, "psi.cardinality", tmp_path / "a.csv")
            assert refused["status"] == "denied", refused
            assert (
                f"the space cannot confirm that agreement {other} is in force (unreachable)"
                in refused["error"]
            )
        finally:
            for api in (consumer, provider, operator):
                api.close()
