"""psi-sum-forged-counts: a consumer running a modified connector masks the count slots of its
psi.sum answer so that a category it matched too few rows of looks as if it met k. The provider
decrypts the counts itself and refuses any that exceeds what the run allows (the consumer's set,
the category's rows): nothing is released, the attempt is a failed usage record, and the use
counts without a fee. (A count forged within those bounds by weighting rows is the protocol's
semi-honest limit: README, trust model.)"""

from __future__ import annotations

import uuid
from pathlib import Path

import tenseal as ts

from node.signing import RemoteError, SignedClient
from sandbox import framing
from sandbox.limits import Limits
from sandbox.ops import psi_sum, psi_sum_jobs, psi_x25519
from tds.local import cluster, negotiate, publish_dataset

OFFER = {
    "policy": {"permission": [{"action": "psi.sum", "constraint": [
        {"leftOperand": "column", "operator": "isPartOf", "rightOperand": ["balance"]},
        {"leftOperand": "resultSize", "operator": "gteq", "rightOperand": 50},
    ]}]},
    "price": {"model": "per_job", "amount_fen": 300},
    "auto_approve": True,
}  # fmt: skip


def test_a_count_forged_past_the_consumers_set_releases_nothing(tmp_path: Path) -> None:
    (tmp_path / "b.csv").write_text("phone,balance\n" + "".join(f"139{i:08d},{i}\n" for i in range(1000)))
    ours = ["13900000250"]  # one target: its balance is what the forger is after
    with cluster(tmp_path / "nodes") as live:
        bank, telecom = live.add_connector("bank", "Bank", 83), live.add_connector("telecom", "Telecom", 84)
        consumer, provider = bank.api(), telecom.api()
        forger = SignedClient("bank", bank.config.key())
        try:
            entry = publish_dataset(provider, "subs", tmp_path / "b.csv", OFFER)
            agreement = negotiate(consumer, entry["offers"][0]["id"], ["psi.sum"])["agreement_id"]
            key, job = psi_x25519.new_key(), f"urn:uuid:{uuid.uuid4()}"
            header = {"job": job, "agreement": agreement, "operation": "psi.sum", "consumer_set_size": 1,
                      "engine": "ecdh-x25519", "sum": "balance", "by": None}  # fmt: skip
            request = psi_x25519.client_request(ours, key, False, 1)
            answer = forger.send("POST", f"{telecom.url}/dsp/jobs", content=framing.encode(header, [request]),
                                 content_type=framing.MEDIA_TYPE)  # fmt: skip
            _, blobs = framing.decode(answer.content, 1 << 30)
            params = {"key": key.hex(), "expected": 1, "provider_set_size": 1000, "categories": 1}
            found, sums = psi_sum_jobs.client(lambda f: None)({"params": params}, blobs, Limits(workers=1))
            assert found["cardinality"] == 1
            # the forgery: 49 more in a count slot, so that the count reads 50 = k
            context = psi_sum.load_public(blobs[2])
            forged = ts.bfv_vector_from(context, sums[0]) + (
                [0] * psi_sum.ROWS + [49] + [0] * (psi_sum.ROWS - 1)
            )
            try:
                forger.send("POST", f"{telecom.url}/dsp/jobs/{job}/sum",
                            content=framing.encode({"job": job}, [forged.serialize()]),
                            content_type=framing.MEDIA_TYPE)  # fmt: skip
                raise AssertionError("the provider released a sum on a forged count")
            except RemoteError as refused:
                assert refused.status == 422
                assert (
                    "a category's count exceeds the consumer's set or the category"
                    in refused.problem["detail"]
                )
                assert "250" not in str(refused.problem.get("detail"))
                assert "masked" not in refused.problem and "released" not in refused.problem
                record = refused.problem["usage_record"]["document"]
            assert (record["outcome"], record["fee_fen"], record["operation"]) == ("failed", 0, "psi.sum")
            assert int(provider.get(f"/api/contracts/{agreement}")["uses"]) == 1
        finally:
            forger.close()
            consumer.close()
            provider.close()
