"""Usage records are stored locally first and delivered when the space is back: nothing is
lost, nothing is counted twice."""

from pathlib import Path

from tds.local import cluster, negotiate, publish_dataset, run_job
from tests.integration.helpers import cardinality_offer, phone_sets, verified_log


def test_records_wait_for_the_space_and_arrive_once(tmp_path: Path) -> None:
    phone_sets(tmp_path, "137", range(400), range(300, 600))
    offer = cardinality_offer({"model": "per_row", "amount_fen": 3})
    with cluster(tmp_path / "nodes") as live:
        bank_node = live.add_connector("bank", "Bank", 51)
        telecom_node = live.add_connector("telecom", "Telecom", 52)
        bank, telecom = bank_node.api(), telecom_node.api()
        try:
            entry = publish_dataset(telecom, "subs", tmp_path / "b.csv", offer)
            agreement = negotiate(bank, entry["offers"][0]["id"], ["psi.cardinality"])["agreement_id"]
            live.space.stop()  # members stay trusted for peer_cache_s (30 s) from their last check
            # the provider asks the space before every job: with the space down it refuses, and
            # the record of that refusal waits for the space like any other
            job = run_job(bank, agreement, "psi.cardinality", tmp_path / "a.csv")
            assert job["status"] == "denied" and "the space cannot confirm" in job["error"]
            assert bank.post("/api/outbox/flush")["delivered"] == 0  # the space is down
            (pending,) = bank.get("/api/outbox")["pending"]
            assert pending["state"] == "ready" and pending["attempts"] >= 1
            assert "unreachable" in pending["last_error"]

            live.space.start()
            for api in (bank, telecom):  # due again after the backoff (2 s after one failure)
                api.wait_for("/api/outbox", lambda o: not o["pending"], timeout=30)
            operator = live.operator()
            ledger = operator.get("/ledger/records")
            assert [r["record_id"] for r in ledger["records"]] == [pending["id"]]
            assert ledger["records"][0]["signed"]["document"]["outcome"] == "denied"
            again = run_job(bank, agreement, "psi.cardinality", tmp_path / "a.csv")
            assert again["summary"] == {"cardinality": 100}
            for api in (bank, telecom):
                api.post("/api/outbox/flush")
            ledger = operator.get("/ledger/records")
            assert [r["signed"]["document"]["fee_fen"] for r in ledger["records"]] == [0, 3 * 400]
            verified_log(operator)
            operator.close()
        finally:
            bank.close()
            telecom.close()
