"""HTTP Message Signatures (RFC 9421) with ``ed25519`` keys held by pycryptodome.

The ``http-message-signatures`` library builds and parses the signature base, the
``Signature-Input``/``Signature`` fields and ``Content-Digest`` (RFC 9530); this module plugs
our pycryptodome keys into it and fixes TDS's profile:

* covered components: ``@method``, ``@target-uri`` and ``content-digest`` (RFC 9421 §2.2);
* parameters: ``created``, ``keyid``, ``nonce``, ``alg="ed25519"`` (§2.3);
* the receiver refuses a ``created`` more than ``window`` seconds away from its clock, in either
  direction, and leaves nonce bookkeeping (replay) to the caller, which owns the storage.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureAlgorithm,
    HTTPSignatureKeyResolver,
    InvalidSignature,
)
from http_message_signatures.exceptions import HTTPMessageSignaturesException

from contracts import keys
from contracts.errors import RequestSignatureError, SignatureError

COVERED = ("@method", "@target-uri", "content-digest")
LABEL = "tds"
TAG = "tds"


class PycryptodomeEd25519(HTTPSignatureAlgorithm):
    """The library's algorithm interface over our pycryptodome keys (RFC 9421 §3.3.6)."""

    algorithm_id = "ed25519"

    def __init__(self, public_key: Any = None, private_key: Any = None) -> None:
        self.public_key = public_key  # base64url raw public key
        self.private_key = private_key  # keys.SigningKey

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)

    def verify(self, signature: bytes, message: bytes) -> None:
        keys.verify(self.public_key, message, signature)


class _Request:
    """The minimal request shape the library reads: method, url and a header mapping."""

    def __init__(self, method: str, url: str, headers: dict[str, str]) -> None:
        self.method = method.upper()
        self.url = url
        self.headers = headers


class _SignWith(HTTPSignatureKeyResolver):
    def __init__(self, key: keys.SigningKey) -> None:
        self._key = key

    def resolve_private_key(self, key_id: str) -> keys.SigningKey:
        return self._key

    def resolve_public_key(self, key_id: str) -> None:  # pragma: no cover - signing only
        raise NotImplementedError


class _VerifyWith(HTTPSignatureKeyResolver):
    def __init__(self, public_key_of: Callable[[str], str | None]) -> None:
        self._public_key_of = public_key_of

    def resolve_private_key(self, key_id: str) -> None:  # pragma: no cover - verifying only
        raise NotImplementedError

    def resolve_public_key(self, key_id: str) -> str:
        public_key = self._public_key_of(key_id)
        if public_key is None:
            raise RequestSignatureError(f"unknown key id {key_id!r}")
        return public_key


def sign_request(
    method: str,
    url: str,
    body: bytes,
    key_id: str,
    key: keys.SigningKey,
    *,
    created: dt.datetime,
    headers: Mapping[str, str] | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """Return the headers (with Content-Digest, Signature-Input, Signature) for a request
    signed at ``created`` (the caller's clock: this module reads none)."""
    request = _Request(method, url, dict(headers or {}))
    signer = HTTPMessageSigner(signature_algorithm=PycryptodomeEd25519, key_resolver=_SignWith(key))
    signer.sign(
        request,
        key_id=key_id,
        created=created,
        nonce=nonce or secrets.token_urlsafe(18),
        label=LABEL,
        tag=TAG,
        covered_component_ids=COVERED,
        body=body,
    )
    return request.headers


@dataclass(frozen=True)
class VerifiedRequest:
    key_id: str
    nonce: str
    created: dt.datetime


def verify_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    public_key_of: Callable[[str], str | None],
    *,
    now: dt.datetime,
    window: int = 300,
) -> VerifiedRequest:
    """Verify a signed request against ``now``; raise RequestSignatureError with the reason.

    ``public_key_of`` maps a key id to its base64url public key, or None when the key is
    unknown or may not be used (suspended participant): both are refused.
    """
    present = {name.lower() for name in headers}
    if "signature-input" not in present or "signature" not in present:
        raise RequestSignatureError("missing Signature and Signature-Input headers (RFC 9421)")
    if "content-digest" not in present:
        raise RequestSignatureError("missing Content-Digest header (RFC 9530)")
    request = _Request(method, url, dict(headers))
    verifier = HTTPMessageVerifier(
        signature_algorithm=PycryptodomeEd25519, key_resolver=_VerifyWith(public_key_of)
    )
    # The library compares `created` with its own clock; we check it below against the one
    # reference time the caller fixed for this request, so turn the library's check off.
    verifier.max_clock_skew = dt.timedelta(days=365 * 100)
    try:
        results = verifier.verify(
            request,
            max_age=None,  # checked below against our single reference time
            expect_tag=TAG,
            require_components=COVERED,
            body=body,
        )
    except RequestSignatureError:
        raise
    except (InvalidSignature, HTTPMessageSignaturesException, SignatureError) as exc:
        cause = exc.__cause__ if isinstance(exc.__cause__, RequestSignatureError) else None
        if cause is not None:
            raise cause from exc
        message = str(exc)
        if "digest" in message.lower():
            message = f"Content-Digest does not match the body ({message})"
        raise RequestSignatureError(message) from exc
    params = results[0].parameters
    created_raw, nonce = params.get("created"), params.get("nonce")
    if not isinstance(created_raw, int) or isinstance(created_raw, bool):
        raise RequestSignatureError("signature has no created parameter")
    if not isinstance(nonce, str) or not nonce:
        raise RequestSignatureError("signature has no nonce parameter")
    created = dt.datetime.fromtimestamp(created_raw, dt.UTC)
    skew = abs((now - created).total_seconds())
    if skew > window:
        raise RequestSignatureError(
            f"created {created.isoformat()} is {skew:.0f} s from the receiver's clock; allowed ±{window} s"
        )
    return VerifiedRequest(key_id=str(params["keyid"]), nonce=nonce, created=created)
