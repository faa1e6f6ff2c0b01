"""he.score-understated-set-size: a consumer running a modified connector declares fewer ids
than it sends (0, negative), so that it pays nothing, escapes idsPerDay and consumerSetSize, and
probes membership through the found mask. Or it repeats an id, to average the noise away. The
provider counts the ids itself and refuses before anything is computed or reserved."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from node.signing import RemoteError, SignedClient
from sandbox import framing
from sandbox.framing import MEDIA_TYPE as FRAMES


def lying_request(world: dict[str, Any], declared: Any, ids: list[str]) -> RemoteError:
    live = world["live"]
    provider = live.connectors["hos3"]
    params = {"features": ["x", "z"], "fingerprint": "0" * 64}
    header = {"job": f"urn:uuid:{uuid.uuid4()}", "agreement": world["score"], "operation": "he.score",
              "consumer_set_size": declared, "params": params}  # fmt: skip
    body = framing.encode(header, [b"not a context", json.dumps(ids).encode(), b"w1", b"w2"])
    client = SignedClient("lab", live.connectors["lab"].config.key())
    try:
        with pytest.raises(RemoteError) as err:
            client.send("POST", f"{provider.url}/dsp/jobs", content=body, content_type=FRAMES)
    finally:
        client.close()
    return err.value


def log(world: dict[str, Any]) -> list[dict[str, Any]]:
    operator = world["live"].operator()
    try:
        return list(operator.get("/ledger/records")["records"])
    finally:
        operator.close()


@pytest.mark.parametrize(
    ("declared", "ids", "message"),
    [
        (
            0,
            ["P3-1", "P3-2", "P3-3"],
            "consumer_set_size 0 but the request carries 3 ids; declare the number of ids sent",
        ),
        (-5, ["P3-1"], "consumer_set_size -5 but the request carries 1 ids; declare the number of ids sent"),
        (1, ["P3-1", "P3-1", "P3-2"], "1 ids appear more than once; send each id once"),
        (1, [], "the ids must be a non-empty JSON list of non-empty strings"),
    ],
    ids=["declared-zero", "declared-negative", "repeated-id", "no-ids"],
)
def test_a_declared_size_that_is_not_the_ids_sent_is_refused(
    world: dict[str, Any],
    declared: int,
    ids: list[str],
    message: str,
) -> None:
    before = log(world)
    refused = lying_request(world, declared, ids)
    assert refused.status == 400
    assert refused.problem["detail"] == f"he.score request: {message}"
    assert log(world) == before  # nothing used, nothing billed
