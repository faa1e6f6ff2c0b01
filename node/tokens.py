"""Bearer tokens for people (CLI users, auditors): random, shown once, stored as SHA-256; listed
and revoked by a short id."""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from node.problems import Problem

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


# --- listing and revoking: a token is named by the first 12 hex digits of its hash ------------
ID_LENGTH = 12


def token_id(token: str) -> str:
    """What ``tds … token list`` names ``token`` by: never the token, which is shown only once."""
    return token_hash(token)[:ID_LENGTH]


def view(row: Any) -> dict[str, Any]:
    return {
        "id": row.token_hash[:ID_LENGTH],
        "role": row.role,
        "label": row.label,
        "created_at": row.created_at.isoformat(),
        "revoked": bool(row.revoked),
        **({"participant": row.participant_id} if getattr(row, "participant_id", None) else {}),
    }


def listing(session: Session, model: Any) -> list[dict[str, Any]]:
    return [view(row) for row in session.scalars(select(model).order_by(model.created_at, model.token_hash))]


def revoke(session: Session, model: Any, wanted: str, kept_role: str) -> Any:
    """Revoke the token ``wanted`` names; never the last live token of ``kept_role`` (the
    operator's or the admin's: nobody could then act on the node)."""
    if not re.fullmatch(rf"[0-9a-f]{{{ID_LENGTH}}}", wanted):
        raise Problem(
            400,
            "Bad token id",
            f"token id: expected the {ID_LENGTH} hex digits token list shows, got {wanted!r}",
        )
    row = session.scalar(select(model).where(model.token_hash.startswith(wanted, autoescape=True)))
    if row is None:
        raise Problem(404, "Not found", f"no token {wanted}: token list shows the ids", kind="not-found")
    if row.revoked:
        raise Problem(409, "Conflict", f"token {wanted} is already revoked", kind="conflict")
    if row.role == kept_role:
        live = session.scalar(
            select(func.count()).select_from(model).where(model.role == kept_role, model.revoked.is_(False))
        )
        if live == 1:
            raise Problem(
                409,
                "Conflict",
                f"token {wanted} is the last {kept_role} token: issue another {kept_role} token first "
                f"(or rotate it: tds … token rotate)",
                kind="conflict",
            )
    row.revoked = True
    return row
