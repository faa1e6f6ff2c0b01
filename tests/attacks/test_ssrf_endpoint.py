"""registered-metadata-endpoint: a participant registers an endpoint such as
http://169.254.169.254/…, to which providers would then POST (server-side request forgery
through every member). The space resolves the host and refuses addresses the operator's policy
denies — link-local and metadata by default, loopback outside development — and stores nothing."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.settings import ConnectorSettings
from contracts.keys import SigningKey
from node.egress import GuardedBackend
from node.signing import RemoteError, SignedClient
from policies.endpoints import DEFAULT_DENIED
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
            with pytest.raises(ApiError, match=r"^no participant 'mallory'$"):
                operator.get("/participants/mallory")  # nothing was stored
        finally:
            operator.close()


@pytest.fixture
def listener() -> Iterator[tuple[int, list[object]]]:
    """A loopback HTTP server that answers 200 and counts the connections it accepted."""
    accepted: list[object] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            accepted.append(self.path)
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], accepted
    server.shutdown()
    server.server_close()


def rebound(monkeypatch: pytest.MonkeyPatch, name: str, address: str) -> None:
    """``name`` resolves to ``address`` from now on, as a re-pointed DNS record would."""
    real = socket.getaddrinfo

    def resolve(host: str, port: object, *args: object, **kwargs: object) -> Any:
        if host == name:
            return real(address, port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)


def test_an_endpoint_rebound_to_a_denied_address_is_refused_when_connecting(
    monkeypatch: pytest.MonkeyPatch, listener: tuple[int, list[object]]
) -> None:
    """rebound-endpoint: an endpoint passes the space's check at registration, then its name is
    re-pointed at a denied address. Every connection resolves the name again, checks the
    addresses and connects to the one it checked."""
    port, accepted = listener
    client = SignedClient("telecom", SigningKey.generate(), guard=GuardedBackend(DEFAULT_DENIED, False))
    try:
        rebound(monkeypatch, "bank.example", "127.0.0.1")  # loopback: denied outside development
        with pytest.raises(RemoteError) as refused:
            client.send("POST", f"http://bank.example:{port}/dsp/jobs", json={})
        assert refused.value.status == 0
        assert refused.value.problem["detail"] == (
            "refused by the space's endpoint policy: connection to bank.example: bank.example resolves to "
            "127.0.0.1, in the denied range 127.0.0.0/8 (loopback is allowed only in a development space: "
            "tds space init --dev); register an address the other participants can reach"
        )
        rebound(monkeypatch, "bank.example", "169.254.169.254")
        with pytest.raises(
            RemoteError, match=r"resolves to 169\.254\.169\.254, in the denied range 169\.254\.0\.0/16"
        ):
            client.send("POST", f"http://bank.example:{port}/dsp/jobs", json={})
        assert accepted == []  # nothing was sent anywhere
    finally:
        client.close()


def test_a_connection_goes_to_the_address_that_was_checked(
    monkeypatch: pytest.MonkeyPatch, listener: tuple[int, list[object]]
) -> None:
    """The name is resolved once per connection and that address is the one connected to: a
    name that only the checked lookup knows still reaches the server."""
    port, accepted = listener
    rebound(monkeypatch, "bank.example", "127.0.0.1")
    client = SignedClient("telecom", SigningKey.generate(), guard=GuardedBackend(DEFAULT_DENIED, True))
    try:
        assert client.send("POST", f"http://bank.example:{port}/dsp/jobs", json={}).json() == {}
    finally:
        client.close()
    assert accepted == ["/dsp/jobs"]


def test_connectors_take_the_spaces_endpoint_policy_when_they_register(tmp_path: Path) -> None:
    with cluster(tmp_path / "nodes") as live:
        bank = live.add_connector("bank", "Bank", 85)
        known = httpx.get(f"{live.space.url}/.well-known/tds", trust_env=False).json()
    assert known["endpoints"] == {"denied": list(DEFAULT_DENIED), "loopback": True}  # a --dev space
    settings = ConnectorSettings.from_options(bank.config.options)
    assert (settings.endpoint_denied_ranges, settings.endpoint_loopback) == (DEFAULT_DENIED, True)
