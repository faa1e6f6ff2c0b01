"""What the operator does — admit, suspend, review, settle, issue tokens — each done and written
to the log of operator actions in one transaction, whether it came from the API or the console.

``actor`` names the person: the label of their token, or the token's hash prefix without one.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from contracts.keys import SigningKey
from node.tokens import new_token, token_hash
from space import catalog, registry, settlement
from space.errors import Conflict, NotFound, Refused
from space.models import CatalogEntry, OperatorAction, Participant, Settlement, Token

ROLES = ("operator", "auditor", "participant")


def actor_of(token: Token) -> str:
    return token.label or f"{token.role} token {token.token_hash[:12]}"


def note(session: Session, actor: str, action: str, target: str, now: dt.datetime, **detail: Any) -> None:
    session.add(OperatorAction(at=now, actor=actor, action=action, target=target, detail=detail))


def admit(
    session: Session, actor: str, pid: str, key: SigningKey, now: dt.datetime, days: int
) -> Participant:
    found = registry.get(session, pid)
    if found.status == "admitted":
        raise Conflict(f"{pid} is already admitted; suspend it first to admit it again")
    before = found.status
    registry.admit(session, pid, key, now, days)
    note(session, actor, "admit", pid, now, was=before, credential_days=days)
    return found


def suspend(session: Session, actor: str, pid: str, now: dt.datetime) -> Participant:
    found = registry.get(session, pid)
    if found.status == "suspended":
        raise Conflict(f"{pid} is already suspended")
    before = found.status
    registry.suspend(session, pid)
    note(session, actor, "suspend", pid, now, was=before)
    return found


def review(
    session: Session, actor: str, entry_id: str, approve: bool, text: str, now: dt.datetime
) -> CatalogEntry:
    entry = catalog.review(session, entry_id, approve, text)
    note(session, actor, "approve" if approve else "reject", entry_id, now, note=text, rule=entry.review_rule)
    return entry


def settle(
    session: Session,
    actor: str,
    period: str,
    key: SigningKey,
    commission_bp: int,
    now: dt.datetime,
    zone: str = "UTC",
) -> tuple[Settlement, bool]:
    row, created = settlement.settle(session, period, key, commission_bp, now, zone)
    if created:
        note(session, actor, "settle", period, now, tree_size=row.tree_size, commission_bp=commission_bp,
             **({"zone": zone} if zone != "UTC" else {}))  # fmt: skip
    return row, created


def issue_token(
    session: Session, actor: str, role: str, label: str, participant: str | None, now: dt.datetime
) -> str:
    """A new bearer token (shown once; stored as its hash). A participant's names its participant."""
    if role not in ROLES:
        raise Refused(f"role: expected one of {list(ROLES)}, got {role!r}")
    if (role == "participant") != bool(participant):
        raise Refused("participant: give it for a participant token and only then")
    if participant is not None and session.get(Participant, participant) is None:
        raise NotFound(f"no participant {participant!r}")
    token = new_token()
    session.add(Token(token_hash=token_hash(token), role=role, label=label, participant_id=participant))
    note(session, actor, "issue-token", participant or role, now, role=role, label=label)
    return token
