"""values-in-error-texts: a provider's error texts quoted its cells (issue 12 §2). Every text a
provider sends out after a failed or refused job — the problem detail, the usage record's
reason, the job's error as the consumer sees it — is searched for every value of the
provider's data, for each operation, with requests an honest connector sends and forged ones
a modified connector sends."""

from __future__ import annotations

import csv
import json
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from node.signing import RemoteError, SignedClient
from sandbox import framing
from sandbox.framing import MEDIA_TYPE as FRAMES
from sandbox.ops import psi, psi_x25519
from tds.local import cluster, negotiate, publish_dataset
from tests.integration.helpers import phone_sets
from tests.integration.test_he_jobs import run


def cells(*files: Path) -> set[str]:
    """Every distinct cell of the files, but those too short to mean anything on their own."""
    found = set()
    for path in files:
        with path.open(newline="", encoding="utf-8") as handle:
            for row in list(csv.reader(handle))[1:]:
                found.update(cell for cell in row if len(cell) >= 4)
    return found


def leaked(texts: Iterable[str], values: set[str]) -> list[tuple[str, str]]:
    return [(value, text) for text in texts for value in values if value in text]


def log_reasons(live: Any, agreements: Iterable[str]) -> list[str]:
    operator = live.operator()
    try:
        return [
            r["signed"]["document"]["reason"]
            for agreement in agreements
            for r in operator.get("/ledger/records", agreement=agreement, limit=1000)["records"]
            if r["kind"] == "usage"
        ]
    finally:
        operator.close()


@pytest.fixture(scope="module")
def psi_world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("psi-texts")
    phone_sets(root, "137", range(0, 300), range(100, 700))
    offer = {
        "policy": {
            "permission": [
                {"action": "psi.intersection", "constraint": [
                    {"leftOperand": "resultSize", "operator": "gteq", "rightOperand": 10**6}]},
                {"action": "psi.cardinality"},
            ]
        },
        "price": {"model": "per_job", "amount_fen": 100},
        "auto_approve": True,
    }  # fmt: skip
    with cluster(root / "nodes") as live:
        bank = live.add_connector("bank", "Bank", 83)
        # records of forged requests are never countersigned: deliver them at once
        telecom = live.add_connector("telecom", "Telecom", 84, options={"countersign_grace_s": 0})
        consumer, provider = bank.api(), telecom.api()
        entry = publish_dataset(provider, "subs", root / "b.csv", offer)
        agreement = negotiate(consumer, entry["offers"][0]["id"], ["psi.cardinality", "psi.intersection"])
        yield {"live": live, "root": root, "consumer": consumer, "provider": provider,
               "agreement": agreement["agreement_id"], "signer": SignedClient("bank", bank.config.key()),
               "endpoint": telecom.config.url + "/dsp"}  # fmt: skip
        consumer.close()
        provider.close()


def forged(world: dict[str, Any], header: dict[str, Any], blobs: list[bytes], path: str = "/jobs") -> str:
    """What the provider answers a modified consumer's connector: its problem detail and record."""
    body = {"agreement": world["agreement"], "job": f"urn:uuid:{uuid.uuid4()}", **header}
    try:
        answer = world["signer"].send("POST", world["endpoint"] + path, content=framing.encode(body, blobs),
                                      content_type=FRAMES)  # fmt: skip
    except RemoteError as exc:
        return json.dumps(exc.problem, ensure_ascii=False)
    return json.dumps(framing.decode(answer.content, 1 << 26)[0], ensure_ascii=False)


def counted_first(world: dict[str, Any], declared: int, setup: bytes) -> tuple[str, bytes, str]:
    """A modified consumer's first message of a provider-counted run: (job id, the provider's
    request, or b"" and the provider's answer when it refused)."""
    job = f"urn:uuid:{uuid.uuid4()}"
    header = {"job": job, "agreement": world["agreement"], "operation": "psi.cardinality",
              "consumer_set_size": declared, "mode": "counted", "epsilon": 1.0}  # fmt: skip
    try:
        framed = framing.encode(header, [setup])
        answer = world["signer"].send(
            "POST", world["endpoint"] + "/jobs", content=framed, content_type=FRAMES
        )
    except RemoteError as exc:
        return job, b"", json.dumps(exc.problem, ensure_ascii=False)
    reply, blobs = framing.decode(answer.content, 1 << 26)
    return job, blobs[0], json.dumps(reply, ensure_ascii=False)


def test_no_psi_failure_quotes_a_providers_key(psi_world: dict[str, Any]) -> None:
    world = psi_world
    request = psi.client_request(["13700000001", "13700000002"], psi.new_key(), False, 1)
    garbage = b"\x0a\xff" + bytes(range(256)) * 4
    texts = [
        forged(world, {"operation": "psi.cardinality", "consumer_set_size": 2}, [garbage]),
        forged(world, {"operation": "psi.cardinality", "consumer_set_size": 3}, [request]),  # size lies
        forged(world, {"operation": "psi.intersection", "consumer_set_size": 2}, [request]),  # reveal differs
        forged(
            world, {"operation": "psi.cardinality", "consumer_set_size": 2, "mode": "sideways"}, [request]
        ),
    ]
    setup = psi.server_setup(["13700000150", "13700000151"], psi.new_server_key(), 1)
    # a counted run whose second message is garbage, and one whose setup lies about its size
    for declared, second in ((2, garbage), (5, None)):
        job, theirs, answer = counted_first(world, declared, setup)
        texts.append(answer)
        if second is None:
            second = psi.server_process(psi.parse_request(theirs), psi.new_server_key(), 1)
        texts.append(forged(world, {"job": job}, [second], f"/jobs/{job}/count"))
    job, _, answer = counted_first(world, 2, garbage)  # garbage as the setup: found at the count
    texts += [answer, forged(world, {"job": job}, [garbage], f"/jobs/{job}/count")]
    honest = run(world["consumer"], {"operation": "psi.intersection", "agreement": world["agreement"],
                                     "input": str(world["root"] / "a.csv"), "column": "phone"})  # fmt: skip
    assert honest["status"] == "withheld"
    texts.append(str(honest["error"]))
    for api in (world["consumer"], world["provider"]):
        api.post("/api/outbox/flush")
    reasons = log_reasons(world["live"], [world["agreement"]])
    assert (
        reasons.count(
            "the consumer's PSI messages cannot be used: the setup or the response is not a valid PSI message"
        )
        == 2
    )
    assert len(reasons) == 7  # every forged request that passed the policy check, and the withheld job
    values = cells(world["root"] / "b.csv")
    assert len(values) == 600 and len(texts) >= 11
    assert leaked(texts + reasons, values) == []


def test_an_x25519_request_with_a_point_of_small_order_is_refused_and_counted(
    psi_world: dict[str, Any],
) -> None:
    """A modified consumer sends u = 0 among honest points to the X25519 engine, hoping the
    provider's key leaks through a small subgroup: the provider computes nothing on it, refuses
    the request as the consumer's (the use counts), and says nothing of its data or key.
    (Runs after the test above, which counts this agreement's records.)"""
    world = psi_world
    honest = psi_x25519.parse_request(
        psi_x25519.client_request(["13700000001"], psi_x25519.new_key(), False, 1)
    )
    request = psi_x25519.encode([*honest.encrypted_elements, bytes(32)], False)
    answer = json.loads(
        forged(
            world,
            {"operation": "psi.cardinality", "consumer_set_size": 2, "engine": "ecdh-x25519"},
            [request],
        )
    )
    assert answer["status"] == 422 and "a message holds a point of small order" in answer["detail"]
    record = answer["usage_record"]["document"]
    assert record["outcome"] == "failed" and record["reason"].startswith("the PSI request cannot be used")
    unknown = json.loads(
        forged(world, {"operation": "psi.cardinality", "consumer_set_size": 1, "engine": "rsa"}, [request])
    )
    assert (unknown["status"], unknown["detail"]) == (
        400,
        "job request: engine: expected 'ecdh-p256' or 'ecdh-x25519', got 'rsa'",
    )
    values = cells(world["root"] / "b.csv")
    assert leaked([json.dumps(answer), json.dumps(unknown)], values) == []
