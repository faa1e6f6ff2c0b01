"""psi-membership-probe: ``resultSize`` (k) was enforced only by the consumer's own connector,
so a consumer padded its set with random strings around one phone number and learned from the
exact count whether the provider holds it. A provider can now require the cardinality mode it
counts itself: the count leaves its sandbox only with discrete Laplace noise of the job's ε,
the ε comes off the agreement's budget, and k is enforced by the provider on the noisy count,
recorded as ``withheld`` when it is not met."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest

from sandbox.ops import psi
from tds.client import NodeAPI
from tds.errors import ApiError
from tds.local import cluster, negotiate, publish_dataset
from tests.integration.helpers import phone_sets

K = 20
PRICE = {"model": "per_job", "amount_fen": 300}
# ε ≤ 2 per job (a job without ε does not satisfy it), 3 in all, and k = 20
OFFER = {
    "policy": {
        "permission": [
            {
                "action": "psi.cardinality",
                "constraint": [
                    {"leftOperand": "epsilon", "operator": "lteq", "rightOperand": 2.0},
                    {"leftOperand": "epsilonTotal", "operator": "lteq", "rightOperand": 3.0},
                    {"leftOperand": "resultSize", "operator": "gteq", "rightOperand": K},
                ],
            }
        ]
    },
    "price": PRICE,
    "auto_approve": True,
}


def job(consumer: NodeAPI, agreement: str, csv: Path, **extra: Any) -> dict[str, Any]:
    body = {"agreement": agreement, "operation": "psi.cardinality", "input": str(csv), "column": "phone"}
    started = consumer.post("/api/jobs", {**body, **extra})
    return dict(consumer.wait_for_job(started["id"], 300))


def records(live: Any, agreement: str) -> dict[str, dict[str, Any]]:
    operator = live.operator()
    try:
        found = operator.get("/ledger/records", agreement=agreement)["records"]
    finally:
        operator.close()
    return {r["signed"]["document"]["job"]: r["signed"] for r in found if r["kind"] == "usage"}


def test_a_provider_counted_cardinality_resists_membership_probing(tmp_path: Path) -> None:
    phone_sets(tmp_path, "139", range(0, 400), range(200, 1200))  # 200 in common
    probe = tmp_path / "probe.csv"  # one real number among random strings
    padding = "".join(f"pad-{secrets.token_hex(8)}\n" for _ in range(500))
    probe.write_text("phone\n13900000250\n" + padding)
    with cluster(tmp_path / "nodes") as live:
        bank, telecom = live.add_connector("bank", "Bank", 81), live.add_connector("telecom", "Telecom", 82)
        consumer, provider = bank.api(), telecom.api()
        try:
            entry = publish_dataset(provider, "subs", tmp_path / "b.csv", OFFER)
            agreement = negotiate(consumer, entry["offers"][0]["id"], ["psi.cardinality"])["agreement_id"]

            exact = job(consumer, agreement, probe)  # the old probe: an exact count
            assert exact["status"] == "denied"
            assert "epsilon lteq 2.0: the request does not state epsilon" in exact["error"]

            probed = job(consumer, agreement, probe, epsilon=1.0)  # noisy, and k held by the provider
            assert probed["status"] == "withheld", probed["error"]
            assert probed["error"] == (
                "result withheld: resultSize gteq 20 not met (the result is not told); "
                "the provider counted it"
            )
            with pytest.raises(ApiError) as refused:
                consumer.get(f"/api/jobs/{probed['id']}/result")
            assert (refused.value.status, refused.value.problem["type"].rsplit("/", 1)[-1]) == (
                403,
                "withheld",
            )

            real = job(consumer, agreement, tmp_path / "a.csv", epsilon=1.0)
            assert real["status"] == "succeeded", real
            result = consumer.get(f"/api/jobs/{real['id']}/result")
            # discrete Laplace of ε = 1: |noise| > 25 has probability 2e^-26 / (1 + e^-1) ≈ 7e-12
            assert abs(result["cardinality"] - 200) <= 25 and result["epsilon"] == 1.0
            assert result["noise"] == "discrete Laplace, added by the provider"

            over = job(consumer, agreement, tmp_path / "a.csv", epsilon=1.5)  # 1 + 1 + 1.5 > 3
            assert over["status"] == "denied"
            assert "epsilonTotal lteq 3.0" in over["error"]

            (held,) = [
                n for n in provider.get("/api/contracts")["contracts"] if n["agreement_id"] == agreement
            ]
            assert (held["uses"], held["epsilon_spent"]) == (2, 2.0)  # the withheld job counted

            for api in (consumer, provider):
                api.post("/api/outbox/flush")
            logged = records(live, agreement)
            outcomes = {
                key: (r["document"]["outcome"], r["document"]["fee_fen"]) for key, r in logged.items()
            }
            assert outcomes == {
                exact["id"]: ("denied", 0),
                probed["id"]: ("withheld", 300),  # an auditor sees it was withheld, and it is charged
                real["id"]: ("succeeded", 300),
                over["id"]: ("denied", 0),
            }
            assert set(logged[probed["id"]]["signatures"]) == {"telecom", "bank"}
        finally:
            consumer.close()
            provider.close()


def test_the_swapped_run_counts_exactly_before_noise() -> None:
    """The provider as the PSI client over the consumer's setup gives the exact intersection size
    (the noise is added after, in sandbox.ops.dp). One worker: the test process has threads, and
    a forked pool of it may deadlock (the sandbox forks from a single-threaded worker)."""
    consumer_items = [f"1390000{i:04d}" for i in range(0, 300)]
    provider_items = [f"1390000{i:04d}" for i in range(100, 900)]
    consumer_key = psi.new_server_key()
    setup = psi.server_setup(consumer_items, consumer_key, 1)
    provider_key = psi.new_key()
    request = psi.client_request(provider_items, provider_key, False, 1)
    response = psi.server_process(psi.parse_request(request), consumer_key, 1)
    assert psi.client_result(provider_key, False, setup, response, 1, None, 800, 300) == 200
    with pytest.raises(ValueError, match="setup has 300 items, 301 were declared"):
        psi.client_result(provider_key, False, setup, response, 1, None, 800, 301)
    with pytest.raises(ValueError, match="response has 800 items, the request had 799"):
        psi.client_result(provider_key, False, setup, response, 1, None, 799, 300)
