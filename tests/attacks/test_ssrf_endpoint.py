"""registered-metadata-endpoint: a participant registers an endpoint such as
http://169.254.169.254/…, to which providers would then POST (server-side request forgery
through every member). The space resolves the host and refuses addresses the operator's policy
denies — link-local and metadata by default, loopback outside development — and stores nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts.keys import SigningKey
from node.signing import RemoteError, SignedClient
from tds.errors import ApiError
from tds.local import cluster, credit_code


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        (
            "http://169.254.169.254/latest/meta-data",
            "resolves to 169.254.169.254, in the denied range 169.254.0.0/16",
        ),
        (
            "http://[::ffff:169.254.169.254]:80/",
            "resolves to 169.254.169.254, in the denied range 169.254.0.0/16",
        ),
        ("http://0.0.0.0:8701", "resolves to 0.0.0.0, in the denied range 0.0.0.0/8"),
    ],
    ids=["metadata", "metadata-v4-mapped", "unspecified"],
)
def test_a_registration_naming_an_internal_endpoint_is_refused(
    tmp_path: Path, endpoint: str, message: str
) -> None:
    with cluster(tmp_path / "nodes") as live:
        key = SigningKey.generate()
        body = {"id": "mallory", "legal_name": "Mallory Ltd", "credit_code": credit_code(66),
                "roles": ["consumer"], "jurisdiction": "CN-HA", "public_key": key.public_key,
                "endpoint": endpoint}  # fmt: skip
        client = SignedClient("mallory", key)
        try:
            with pytest.raises(RemoteError) as refused:
                client.send("POST", f"{live.space.url}/participants", json=body)
        finally:
            client.close()
        assert refused.value.status == 422
        assert message in refused.value.problem["detail"]
        operator = live.operator()
        try:
            with pytest.raises(ApiError, match=r"no participant 'mallory' \(HTTP 404\)"):
                operator.get("/participants/mallory")  # nothing was stored
        finally:
            operator.close()
