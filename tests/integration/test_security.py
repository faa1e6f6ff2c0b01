"""Signed requests between real nodes: every forgery, replay or stale request is refused (401,
problem+json, with the reason) before the handler runs; registrations are checked."""

import datetime as dt
import json
import subprocess
import sys

import httpx
import pytest

from contracts.httpsig import sign_request
from contracts.keys import SigningKey
from node import clock
from node.signing import RemoteError, SignedClient
from tds.local import credit_code, free_port
from tests.conftest import MALLORY
from tests.integration.conftest import publish


def send(url: str, headers: dict, body: bytes = b"", method: str = "GET") -> httpx.Response:
    return httpx.request(method, url, headers=headers, content=body, trust_env=False)


def refused(response: httpx.Response, reason: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["title"] == "Signature refused"
    assert reason in problem["detail"], problem["detail"]


def signed(method: str, url: str, body: bytes, key_id: str, key: SigningKey) -> dict[str, str]:
    """Headers of a request signed now, by the nodes' clock."""
    return sign_request(method, url, body, key_id, key, created=clock.now())


def test_unsigned_request(live) -> None:  # type: ignore[no-untyped-def]
    refused(
        send(live.connectors["telecom"].url + "/dsp/jobs", {}, b"x", "POST"),
        "missing Signature and Signature-Input headers",
    )


def test_replayed_request(live) -> None:  # type: ignore[no-untyped-def]
    url = live.space.url + "/participants/telecom"
    headers = signed("GET", url, b"", "bank", live.connectors["bank"].config.key())
    assert send(url, headers).status_code == 200
    refused(send(url, headers), "was already used: replayed request")


def test_forged_signature(live) -> None:  # type: ignore[no-untyped-def]
    url = live.space.url + "/participants/telecom"
    refused(send(url, signed("GET", url, b"", "bank", MALLORY)), "does not verify")


def test_unknown_participant(live) -> None:  # type: ignore[no-untyped-def]
    url = live.space.url + "/catalog"
    refused(send(url, signed("GET", url, b"", "ghost", MALLORY)), "unknown key id 'ghost'")


def test_stale_request(live) -> None:  # type: ignore[no-untyped-def]
    url = live.space.url + "/catalog"
    old = clock.now() - dt.timedelta(seconds=400)
    headers = sign_request("GET", url, b"", "bank", live.connectors["bank"].config.key(), created=old)
    refused(send(url, headers), "allowed ±300 s")


def test_body_swapped_after_signing(live) -> None:  # type: ignore[no-untyped-def]
    url = live.space.url + "/ledger/records"
    headers = signed("POST", url, b"{}", "bank", live.connectors["bank"].config.key())
    refused(send(url, {**headers, "Content-Type": "application/json"}, b'{"a": 1}', "POST"), "Content-Digest")


def test_request_to_another_url(live) -> None:  # type: ignore[no-untyped-def]
    signed_for = live.space.url + "/catalog?q=a"
    headers = signed("GET", signed_for, b"", "bank", live.connectors["bank"].config.key())
    refused(send(live.space.url + "/catalog?q=b", headers), "")


def test_request_signed_for_another_node_is_refused(live) -> None:  # type: ignore[no-untyped-def]
    # signed by bank for telecom; replayed to the space with telecom's Host header
    telecom_url = live.connectors["telecom"].url
    signed_for = telecom_url + "/participants/telecom"
    headers = signed("GET", signed_for, b"", "bank", live.connectors["bank"].config.key())
    host = telecom_url.split("://", 1)[1]
    response = send(live.space.url + "/participants/telecom", {**headers, "Host": host})
    refused(response, f"the request was addressed to {host}, not to this node ({live.space.url})")


def tds(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tds.cli", *args], capture_output=True, text=True, check=False
    )


def test_registration_with_a_wrong_credit_code_writes_nothing(live, tmp_path) -> None:  # type: ignore[no-untyped-def]
    good = credit_code(40)
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    target = tmp_path / "node"
    done = tds(
        "--data-dir",
        str(target),
        "connector",
        "init",
        "--name",
        "typo-co",
        "--space",
        live.space.url,
        "--url",
        f"http://127.0.0.1:{free_port()}",
        "--legal-name",
        "Typo",
        "--credit-code",
        bad,
    )
    assert done.returncode == 1
    assert f"has check character {bad[-1]!r}, expected {good[-1]!r} (GB 32100)" in done.stderr
    assert not target.exists()


def test_same_name_with_another_key_is_refused(live, tmp_path) -> None:  # type: ignore[no-untyped-def]
    done = tds(
        "--data-dir",
        str(tmp_path / "imposter"),
        "connector",
        "init",
        "--name",
        "bank",
        "--space",
        live.space.url,
        "--legal-name",
        "Imposter",
        "--credit-code",
        credit_code(41),
    )
    assert done.returncode == 1
    assert "participant bank is registered with another key" in done.stderr


def test_pending_participant_is_not_trusted(live, tmp_path) -> None:  # type: ignore[no-untyped-def]
    pending = live.add_connector("pending-co", "Pending Co", 42, admit=False, start=False)
    client = SignedClient("pending-co", pending.config.key())
    try:
        with pytest.raises(RemoteError, match="participant pending-co is pending, not admitted"):
            client.send("GET", live.space.url + "/catalog")
        # it may read its own registration, to learn when it is admitted
        assert client.send("GET", live.space.url + "/participants/pending-co").json()["status"] == "pending"
    finally:
        client.close()


def test_suspended_participant_is_refused_by_space_and_peers(live, data) -> None:  # type: ignore[no-untyped-def]
    shady = live.add_connector("shady-co", "Shady Co", 43)
    operator, api, telecom = live.operator(), shady.api(), live.connectors["telecom"].api()
    try:
        offer = publish(telecom, data["telecom_csv"])["offers"][0]["id"]
        operator.post("/admin/participants/shady-co/suspend")
        with pytest.raises(Exception, match="participant shady-co is suspended"):
            api.get("/api/catalog")
        # telecom has not met shady-co before, so it asks the space now and learns of the suspension
        client = SignedClient("shady-co", shady.config.key())
        body = {
            "@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
            "@type": "ContractRequestMessage",
            "consumerPid": "urn:uuid:x",
            "offer": {"@type": "Offer", "@id": offer, "permission": [{"action": "psi.cardinality"}]},
            "callbackAddress": shady.url + "/dsp",
            "tds:purpose": "risk-control",
        }
        with pytest.raises(RemoteError, match="participant shady-co is suspended") as caught:
            client.send("POST", live.connectors["telecom"].url + "/dsp/negotiations/request", json=body)
        assert caught.value.status == 401
        client.close()
    finally:
        for a in (operator, api, telecom):
            a.close()


def test_connector_api_needs_its_token(live) -> None:  # type: ignore[no-untyped-def]
    url = live.connectors["bank"].url + "/api/jobs"
    assert httpx.get(url, trust_env=False).json()["detail"] == "send 'Authorization: Bearer <token>'"
    wrong = httpx.get(url, headers={"Authorization": "Bearer tds_wrong"}, trust_env=False)
    assert (wrong.status_code, wrong.json()["detail"]) == (401, "unknown or revoked token")


def test_secrets_are_not_world_readable(live) -> None:  # type: ignore[no-untyped-def]
    for node in [live.space, *live.connectors.values()]:
        for name in ("node.key", "admin.token"):
            assert oct((node.config.path / name).stat().st_mode & 0o777) == "0o600", (node.url, name)
        config = json.loads((node.config.path / "config.json").read_text())
        assert "tds_" not in json.dumps(config)  # no token in the config file
    logs = "".join(
        (n.config.path / "serve.log").read_text()
        for n in [live.space, *live.connectors.values()]
        if (n.config.path / "serve.log").exists()
    )
    tokens = [(n.config.path / "admin.token").read_text() for n in [live.space, *live.connectors.values()]]
    assert not any(token in logs for token in tokens)
    assert "PRIVATE KEY" not in logs


def test_fixed_keys_are_not_any_nodes_key(live) -> None:  # type: ignore[no-untyped-def]
    keys = {
        SigningKey.load(n.config.path / "node.key").public_key
        for n in [live.space, *live.connectors.values()]
    }
    assert MALLORY.public_key not in keys and len(keys) == 1 + len(live.connectors)
