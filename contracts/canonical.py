"""Canonical JSON (RFC 8785, JSON Canonicalization Scheme) for everything that is signed."""

from __future__ import annotations

from typing import Any

import rfc8785

from contracts.errors import ContractError


def canonical_bytes(document: Any) -> bytes:
    """The RFC 8785 serialisation of ``document``; the exact bytes that get signed and hashed."""
    try:
        return rfc8785.dumps(document)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise ContractError(f"document cannot be canonicalised (RFC 8785): {exc}") from exc
