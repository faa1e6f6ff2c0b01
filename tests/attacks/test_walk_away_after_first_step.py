"""walk-away: a consumer running a modified connector sends the first message of psi.sum — which
gives it |B| and the provider's encrypted set — and never the second, hoping for a use that is
neither counted nor recorded. The provider ends the run after its ``psi_wait_s``: a failed usage
record that reaches the space without the consumer's countersignature, the use counted against
the agreement's limit (no fee: nothing was released), and a second message sent late finds no
run. (The provider-counted PSI waits in the same connectors.waiting.)"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from node.signing import RemoteError, SignedClient
from sandbox import framing
from sandbox.ops import psi_x25519
from tds.local import cluster, negotiate, publish_dataset, run_job
from tests.integration.conftest import ledger_for

OFFER = {
    "policy": {"permission": [{"action": "psi.sum", "constraint": [
        {"leftOperand": "column", "operator": "isPartOf", "rightOperand": ["balance"]},
        {"leftOperand": "count", "operator": "lteq", "rightOperand": 1},
    ]}]},
    "price": {"model": "per_job", "amount_fen": 300},
    "auto_approve": True,
}  # fmt: skip
WAIT_S = 2


def test_a_consumer_that_walks_away_after_the_first_step_is_recorded_and_counted(tmp_path: Path) -> None:
    (tmp_path / "b.csv").write_text("phone,balance\n" + "".join(f"139{i:08d},{i}\n" for i in range(500)))
    (tmp_path / "a.csv").write_text("phone\n13900000007\n")
    with cluster(tmp_path / "nodes") as live:
        bank = live.add_connector("bank", "Bank", 85)
        telecom = live.add_connector(
            "telecom", "Telecom", 86, options={"psi_wait_s": WAIT_S, "countersign_grace_s": 1}
        )
        consumer, provider, operator = bank.api(), telecom.api(), live.operator()
        walker = SignedClient("bank", bank.config.key())
        try:
            entry = publish_dataset(provider, "subs", tmp_path / "b.csv", OFFER)
            agreement = negotiate(consumer, entry["offers"][0]["id"], ["psi.sum"])["agreement_id"]
            key, job = psi_x25519.new_key(), f"urn:uuid:{uuid.uuid4()}"
            header = {"job": job, "agreement": agreement, "operation": "psi.sum", "consumer_set_size": 1,
                      "engine": "ecdh-x25519", "sum": "balance", "by": None}  # fmt: skip
            request = psi_x25519.client_request(["13900000007"], key, False, 1)
            answer = walker.send("POST", f"{telecom.url}/dsp/jobs", content=framing.encode(header, [request]),
                                 content_type=framing.MEDIA_TYPE)  # fmt: skip
            reply, _ = framing.decode(answer.content, 1 << 30)
            assert (reply["continue"], reply["provider_set_size"], reply["wait_s"]) == (True, 500, WAIT_S)
            # … and the consumer walks away: the provider ends the run after WAIT_S and records it
            deadline = time.monotonic() + WAIT_S + 30
            while not (found := ledger_for(operator, consumer, provider, agreement, 1)):
                assert time.monotonic() < deadline, "the walked-away run was never recorded"
            (record,) = found
            document = record["signed"]["document"]
            assert (document["outcome"], document["fee_fen"], document["operation"]) == (
                "failed",
                0,
                "psi.sum",
            )
            assert document["reason"] == f"the consumer did not send the second PSI message within {WAIT_S} s"
            assert sorted(record["signed"]["signatures"]) == ["telecom"]
            assert int(provider.get(f"/api/contracts/{agreement}")["uses"]) == 1
            with pytest.raises(RemoteError) as late:
                walker.send("POST", f"{telecom.url}/dsp/jobs/{job}/sum",
                            content=framing.encode({"job": job}, [b"late"]),
                            content_type=framing.MEDIA_TYPE)  # fmt: skip
            assert late.value.status == 404
            assert late.value.problem["detail"] == f"no PSI run {job} waits for bank's second message here"
            denied = run_job(consumer, agreement, "psi.sum", tmp_path / "a.csv", sum="balance")
            assert (denied["status"], denied["error"]) == (
                "denied",
                "denied by provider: psi.sum not permitted: count lteq 1: count is 2",
            )
        finally:
            walker.close()
            consumer.close()
            provider.close()
            operator.close()
