"""RFC 9421 HTTP message signatures: the RFC's own ed25519 vector, then TDS's profile and
the attacks the receiver must refuse."""

import base64
import datetime as dt

import pytest
from http_message_signatures import HTTPMessageSigner, HTTPMessageVerifier, HTTPSignatureKeyResolver

from contracts.errors import RequestSignatureError
from contracts.httpsig import PycryptodomeEd25519, sign_request, verify_request
from contracts.keys import SigningKey
from tests.conftest import ALICE, MALLORY

# RFC 9421 Appendix B.1.4 test-key-ed25519 (JWK d and x), and the B.2 test request
RFC_KEY = SigningKey.from_seed(base64.urlsafe_b64decode("n4Ni-HpISpVObnQMW0wOhCKROaIKqKtW_2ZYb2p9KcU="))
RFC_PUBLIC = "JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs"
RFC_SIGNATURE = "wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw=="


class _Message:
    def __init__(self) -> None:
        self.method = "POST"
        self.url = "https://example.com/foo?param=Value&Pet=dog"
        self.headers = {
            "Host": "example.com",
            "Date": "Tue, 20 Apr 2021 02:07:55 GMT",
            "Content-Type": "application/json",
            "Content-Length": "18",
            "Content-Digest": "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+"
            "AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:",
        }


class _Keys(HTTPSignatureKeyResolver):
    def resolve_private_key(self, key_id: str) -> SigningKey:
        return RFC_KEY

    def resolve_public_key(self, key_id: str) -> str:
        return RFC_PUBLIC


COMPONENTS = ("date", "@method", "@path", "@authority", "content-type", "content-length")


def test_rfc9421_b26_signature_is_reproduced() -> None:
    assert RFC_KEY.public_key == RFC_PUBLIC
    message = _Message()
    HTTPMessageSigner(signature_algorithm=PycryptodomeEd25519, key_resolver=_Keys()).sign(
        message,
        key_id="test-key-ed25519",
        created=dt.datetime.fromtimestamp(1618884473, dt.UTC),
        label="sig-b26",
        include_alg=False,
        covered_component_ids=COMPONENTS,
        use_existing_digest=True,
    )
    assert message.headers["Signature-Input"] == (
        'sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length")'
        ';created=1618884473;keyid="test-key-ed25519"'
    )
    assert message.headers["Signature"] == f"sig-b26=:{RFC_SIGNATURE}:"


def test_rfc9421_b26_signature_verifies() -> None:
    message = _Message()
    message.headers["Signature-Input"] = (
        'sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length")'
        ';created=1618884473;keyid="test-key-ed25519"'
    )
    message.headers["Signature"] = f"sig-b26=:{RFC_SIGNATURE}:"
    verifier = HTTPMessageVerifier(signature_algorithm=PycryptodomeEd25519, key_resolver=_Keys())
    (result,) = verifier.verify(message, max_age=None)
    assert result.parameters["keyid"] == "test-key-ed25519"


URL = "http://127.0.0.1:8701/dsp/jobs?x=1"
BODY = b'{"job": 1}'
NOW = dt.datetime(2026, 11, 27, 8, 0, tzinfo=dt.UTC)


def signed(**overrides: object) -> dict[str, str]:
    args: dict = {
        "method": "POST",
        "url": URL,
        "body": BODY,
        "key_id": "alice",
        "key": ALICE,
        "created": NOW,
        "nonce": "n-1",
    }
    args.update(overrides)
    return sign_request(
        args.pop("method"),
        args.pop("url"),
        args.pop("body"),
        args.pop("key_id"),
        args.pop("key"),
        created=args["created"],
        nonce=args["nonce"],
    )


def check(
    headers: dict[str, str],
    *,
    method: str = "POST",
    url: str = URL,
    body: bytes = BODY,
    now: dt.datetime = NOW,
    keys: dict | None = None,
) -> object:
    known = {"alice": ALICE.public_key} if keys is None else keys
    return verify_request(method, url, headers, body, known.get, now=now)


def test_profile_covers_method_target_uri_and_digest() -> None:
    headers = signed()
    assert headers["Signature-Input"].startswith('tds=("@method" "@target-uri" "content-digest")')
    assert 'nonce="n-1"' in headers["Signature-Input"] and 'keyid="alice"' in headers["Signature-Input"]
    verified = check(headers)
    assert (verified.key_id, verified.nonce) == ("alice", "n-1")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("name", "mutate", "reason"),
    [
        ("missing-signature", lambda h, a: h.pop("Signature"), "missing Signature and Signature-Input"),
        ("missing-digest", lambda h, a: h.pop("Content-Digest"), "missing Content-Digest"),
        ("tampered-body", lambda h, a: a.update(body=b'{"job": 2}'), "Content-Digest does not match"),
        ("tampered-method", lambda h, a: a.update(method="PUT"), "verif|Signature"),
        ("tampered-url", lambda h, a: a.update(url=URL.replace("x=1", "x=2")), "verif|Signature"),
        ("unknown-key", lambda h, a: a.update(keys={}), "unknown key id 'alice'"),
        ("wrong-key", lambda h, a: a.update(keys={"alice": MALLORY.public_key}), "does not verify"),
        ("stale-created", lambda h, a: a.update(now=NOW + dt.timedelta(seconds=301)), r"allowed ±300 s"),
        ("future-created", lambda h, a: a.update(now=NOW - dt.timedelta(seconds=400)), "future|±300"),
    ],
)
def test_refusals(name: str, mutate: object, reason: str) -> None:
    headers = signed()
    args: dict = {}
    mutate(headers, args)  # type: ignore[operator]
    with pytest.raises(RequestSignatureError, match=reason):
        check(headers, **args)


def test_signature_without_nonce_is_refused() -> None:
    headers = signed()
    headers["Signature-Input"] = headers["Signature-Input"].replace(';nonce="n-1"', "")
    with pytest.raises(RequestSignatureError):
        check(headers)


def test_within_window_is_accepted() -> None:
    check(signed(), now=NOW + dt.timedelta(seconds=299))
