"""Attacks on "every use is billed exactly as agreed" by the provider, who holds the output: it
sends the consumer an output other than the one its signed ``released`` step names (or a step
of another job), with a usage record that bills it. The consumer's connector takes no such
output and countersigns no such record, so the use is disputed at the space, never billed."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from contracts.documents import new_signed
from contracts.script_steps import build_step
from contracts.usage import build_record
from node.signing import SignedClient
from policies.model import format_datetime
from tests.integration.scripts import review_state, script_world, submit


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with script_world(tmp_path_factory.mktemp("forged-output")) as made:
        yield made


def forged_news(
    world: dict[str, Any], job: dict[str, Any], output: str, claimed: str, step: dict[str, Any]
) -> dict:
    """What a provider's modified connector could send: a billing record, and a released step
    whose output hash is ``claimed``'s, with ``output``."""
    live = world["live"]
    key = live.connectors["bank"].config.key()
    shown = world["reviews"].get(f"/api/reviews/{job['id']}")
    entry = world["lab"].get(f"/api/catalog/{world['entry']['id']}")
    now = format_datetime(dt.datetime.now(dt.UTC))
    record = build_record(
        id=f"urn:uuid:{uuid.uuid4()}", job=job["id"], agreement=world["agreement"], dataset=entry["id"],
        provider="bank", consumer="lab", operation="script", purpose="scientific-research",
        outcome="succeeded", reason="output released", consumer_set_size=None, provider_set_size=None,
        fee_fen=300, started_at=now, finished_at=now,
    )  # fmt: skip
    released = build_step(**{
        "id": f"urn:uuid:{uuid.uuid4()}", "job": job["id"], "agreement": world["agreement"],
        "dataset": entry["id"], "provider": "bank", "consumer": "lab", "step": "released",
        "code_sha256": shown["code_sha256"], "output_sha256": hashlib.sha256(claimed.encode()).hexdigest(),
        "runs": None, "reviewer": "审核员王", "note": "", "at": now, **step,
    })  # fmt: skip
    return {
        "state": "released",
        "usage_record": new_signed(record, "bank", key),
        "step": new_signed(released, "bank", key),
        "output": output,
        "output_format": "json",
        "detail": "output released",
    }


@pytest.mark.parametrize(
    ("output", "claimed", "step", "reason"),
    [
        ('{"mean": 99}', '{"mean": 5}', {}, "the released step says"),
        ('{"mean": 5}', '{"mean": 5}', {"job": "urn:uuid:another-job"}, "the released step says"),
    ],
    ids=["other-output", "step-of-another-job"],
)
def test_an_output_the_released_step_does_not_name_is_refused_and_not_countersigned(
    world: dict[str, Any], output: str, claimed: str, step: dict[str, Any], reason: str
) -> None:
    job = submit(world, 'RESULT = {"mean": 5}', reason="均值")
    review_state(world, job["id"], "review")
    live = world["live"]
    client = SignedClient("bank", live.connectors["bank"].config.key())
    try:
        body = forged_news(world, job, output, claimed, step)
        client.send("POST", f"{live.connectors['lab'].config.url}/dsp/jobs/{job['id']}/script", json=body)
    finally:
        client.close()
    done = world["lab"].get(f"/api/jobs/{job['id']}")
    assert done["status"] == "failed"
    assert done["error"].startswith("the provider's released output was refused: " + reason)
    assert done["record_id"] is None  # not countersigned: the use is disputed, not billed
    outbox = world["lab"].get("/api/outbox")
    assert body["usage_record"]["document"]["id"] not in json.dumps(outbox)
