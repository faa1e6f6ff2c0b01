"""kill -9 the space during a stream of appends, and a connector between a job's end and the
delivery of its records: afterwards every acknowledged record is in the log exactly once, every
record a connector wrote is delivered, the recomputed root equals the last signed head, and
every head handed out before is consistent with the log after."""

import random
import threading
import time
import uuid
from pathlib import Path

from contracts.audit import audit
from contracts.documents import new_signed, sign_document
from contracts.treehead import check_receipt
from contracts.usage import build_record
from node.signing import RemoteError, SignedClient
from tds.audit import fetch
from tds.local import cluster, negotiate, publish_dataset, run_job
from tests.conftest import USAGE_FIELDS
from tests.integration.helpers import cardinality_offer, phone_sets


def record(agreement: str, provider_key, consumer_key, **change) -> dict:  # type: ignore[no-untyped-def]
    fields = {
        **USAGE_FIELDS,
        "id": f"urn:uuid:{uuid.uuid4()}",
        "agreement": agreement,
        "dataset": None,
        **change,
    }
    signed = new_signed(build_record(**fields), "telecom", provider_key)
    return sign_document(signed, "bank", consumer_key)


def test_kill_9_the_space_during_a_stream_of_appends(tmp_path: Path) -> None:
    with cluster(tmp_path / "nodes") as live:
        bank = live.add_connector("bank", "Bank", 61, start=False)
        telecom = live.add_connector("telecom", "Telecom", 62, start=False)
        # denials of jobs under an agreement nobody recorded: the space logs those without one
        # (a use it would bill needs a recorded agreement, which these connectors never made)
        denial = {"outcome": "denied", "reason": "no such agreement", "fee_fen": 0, "purpose": None}
        records = [
            record("urn:uuid:a", telecom.config.key(), bank.config.key(), **denial) for _ in range(240)
        ]
        client = SignedClient("telecom", telecom.config.key(), timeout=10)
        acknowledged: dict[str, dict] = {}
        done = threading.Event()
        kills = 0

        def killer() -> None:
            nonlocal kills
            rng = random.Random(5)
            while not done.is_set():
                time.sleep(rng.uniform(0.05, 0.4))
                live.space.kill()  # SIGKILL to the whole process group, mid-append or not
                kills += 1
                live.space.start()

        thread = threading.Thread(target=killer, daemon=True)
        thread.start()
        try:
            position = 0
            while position < len(records) and kills < 8:
                batch = records[position : position + random.Random(position).choice([1, 1, 5])]
                try:
                    if len(batch) == 1:
                        answer = [
                            client.send("POST", f"{live.space.url}/ledger/records", json=batch[0]).json()
                        ]
                    else:
                        body = {"records": batch}
                        answer = client.send("POST", f"{live.space.url}/ledger/batch", json=body).json()[
                            "receipts"
                        ]
                except RemoteError:
                    time.sleep(0.05)  # the space is down or restarting: send the same again
                    continue
                for signed, receipt in zip(batch, answer, strict=True):
                    acknowledged[signed["document"]["id"]] = receipt
                position += len(batch)
        finally:
            done.set()
            thread.join(10)
        assert kills >= 3, "the stream ended before the space was killed a few times"
        # the connector's side of loss-free delivery: what was written is sent until it lands
        sent = records[: position + 5]
        for signed in sent:
            client.send("POST", f"{live.space.url}/ledger/records", json=signed)
        client.close()

        operator = live.operator()
        bundle = fetch(operator)
        operator.close()
        ids = [r["signed"]["document"]["id"] for r in bundle.records]
        assert len(ids) == len(set(ids)) == len(sent)  # everything once, nothing twice
        assert set(acknowledged) <= set(ids)
        by_id = {r["signed"]["document"]["id"]: r for r in bundle.records}
        space_key = bundle.space_public_key
        heads_handed_out = []
        for record_id, receipt in acknowledged.items():
            assert by_id[record_id]["seq"] == receipt["leaf_index"]
            check_receipt(receipt, by_id[record_id]["signed"], space_key)
            heads_handed_out.append(receipt["tree_head"])
        report = audit(space_key, bundle.participants, bundle.records, bundle.heads, seen=heads_handed_out)
        assert report.problems == []
        assert report.latest is not None and report.latest.size == len(sent)


def test_kill_9_a_connector_between_the_job_and_the_delivery(tmp_path: Path) -> None:
    phone_sets(tmp_path, "137", range(200), range(100, 300))
    offer = cardinality_offer({"model": "per_job", "amount_fen": 700})
    with cluster(tmp_path / "nodes") as live:
        bank_node = live.add_connector("bank", "Bank", 63, options={"peer_cache_s": 120})
        telecom_node = live.add_connector("telecom", "Telecom", 64, options={"peer_cache_s": 120})
        bank, telecom = bank_node.api(), telecom_node.api()
        entry = publish_dataset(telecom, "subs", tmp_path / "b.csv", offer)
        agreement = negotiate(bank, entry["offers"][0]["id"], ["psi.cardinality"])["agreement_id"]
        assert run_job(bank, agreement, "psi.cardinality", tmp_path / "a.csv")["status"] == "succeeded"
        for api in (bank, telecom):  # the first job's records are in the log
            api.wait_for("/api/outbox", lambda o: not o["pending"], timeout=30)
        live.space.kill()  # the space is gone; members stay trusted for peer_cache_s
        # the provider cannot confirm the agreement with the space, so it refuses; that refusal
        # is a use attempt like any other, whose record must survive the kill below
        job = run_job(bank, agreement, "psi.cardinality", tmp_path / "a.csv")
        assert job["status"] == "denied" and "the space cannot confirm" in job["error"]
        assert [p["job"] for p in bank.get("/api/outbox")["pending"]] == [job["id"]]
        bank.close()
        telecom.close()
        bank_node.kill()  # job done, its record written, not delivered: kill -9
        telecom_node.kill()
        live.space.start()
        bank_node.start()
        telecom_node.start()
        bank, telecom, operator = bank_node.api(), telecom_node.api(), live.operator()
        try:
            for api in (bank, telecom):
                api.wait_for("/api/outbox", lambda o: not o["pending"], timeout=30)
            records = operator.get("/ledger/records", agreement=agreement)["records"]
            assert [r["signed"]["document"]["job"] for r in records].count(job["id"]) == 1
            assert len(records) == 2
            receipts = bank.get("/api/outbox/receipts")["receipts"]
            assert {r["signed"]["document"]["job"] for r in receipts} >= {job["id"]}
            bundle = fetch(operator)
            report = audit(
                bundle.space_public_key, bundle.participants, bundle.records, bundle.heads, receipts=receipts
            )
            assert report.problems == [] and report.receipts == len(receipts) == 2
        finally:
            for api in (bank, telecom, operator):
                api.close()
