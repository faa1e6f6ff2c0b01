"""Documents signed by one or more parties.

A signed document is ``{"document": {...}, "signatures": {signer_id: base64url(sig)}}``. Each
signature is over the RFC 8785 canonical bytes of ``document`` alone, so parties can sign in
any order and adding a signature never changes what the others signed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from contracts.canonical import canonical_bytes
from contracts.errors import SignatureError
from contracts.keys import SigningKey, b64url, b64url_decode, verify


def sign_document(signed: Mapping[str, Any], signer_id: str, key: SigningKey) -> dict[str, Any]:
    """Return a copy of ``signed`` with ``signer_id``'s signature added."""
    document = signed["document"]
    signatures = dict(signed.get("signatures", {}))
    signatures[signer_id] = b64url(key.sign(canonical_bytes(document)))
    return {"document": document, "signatures": signatures}


def new_signed(document: Mapping[str, Any], signer_id: str, key: SigningKey) -> dict[str, Any]:
    return sign_document({"document": dict(document)}, signer_id, key)


def verify_document(
    signed: Mapping[str, Any],
    required: Iterable[str],
    public_key_of: Callable[[str], str],
) -> None:
    """Check the shape and that every ``required`` signer signed; raise SignatureError if not.

    Signatures from parties other than the required ones are refused too: a document
    carries exactly the signatures of the parties it binds.
    """
    if not isinstance(signed, Mapping) or not isinstance(signed.get("document"), Mapping):
        raise SignatureError('expected {"document": {...}, "signatures": {...}}')
    signatures = signed.get("signatures")
    if not isinstance(signatures, Mapping):
        raise SignatureError("the document carries no signatures object")
    required = sorted(set(required))
    extra = sorted(set(signatures) - set(required))
    if extra:
        raise SignatureError(f"unexpected signers {extra}; expected only {required}")
    missing = [signer for signer in required if signer not in signatures]
    if missing:
        raise SignatureError(
            f"signed by {len(required) - len(missing)}/{len(required)} parties; missing {missing}"
        )
    message = canonical_bytes(signed["document"])
    for signer in required:
        value = signatures[signer]
        if not isinstance(value, str):
            raise SignatureError(f"signature of {signer} is not a string")
        try:
            verify(public_key_of(signer), message, b64url_decode(value))
        except SignatureError as exc:
            raise SignatureError(f"signature of {signer}: {exc}") from exc
