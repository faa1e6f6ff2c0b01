"""Bearer tokens for people (CLI users, auditors): random, shown once, stored as SHA-256."""

from __future__ import annotations

import hashlib
import secrets

PREFIX = "tds_"


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def bearer(header: str | None) -> str | None:
    if not header or not header.startswith("Bearer "):
        return None
    token = header[len("Bearer ") :].strip()
    return token or None
