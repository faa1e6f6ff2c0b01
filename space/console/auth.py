"""Who is signed in to the console: a token the operator issued, looked up again on every request
(so revoking a token ends its sessions), and what its role may see and do."""

from __future__ import annotations

from dataclasses import dataclass

from flask import session
from sqlalchemy import select

from node.db import Database
from node.tokens import token_hash
from space.models import Token
from space.operator import actor_of


@dataclass(frozen=True)
class User:
    role: str  # operator, auditor, participant
    participant: str | None  # a participant's id; None for the operator and auditors
    label: str
    actor: str  # how the log of operator actions names this person

    @property
    def acts(self) -> bool:
        """Only the operator changes anything; auditors read everything, participants their own."""
        return self.role == "operator"

    @property
    def reads_all(self) -> bool:
        return self.role in ("operator", "auditor")

    def sees(self, *parties: str | None) -> bool:
        return self.reads_all or (self.participant is not None and self.participant in parties)


def _user(row: Token) -> User:
    return User(row.role, row.participant_id, row.label, actor_of(row))


def sign_in(database: Database, token: str) -> User | None:
    """Start a session for ``token``; None (and no session) if it is unknown or revoked."""
    with database.session() as db:
        row = db.scalar(select(Token).where(Token.token_hash == token_hash(token.strip())))
    if row is None or row.revoked:
        return None
    session.clear()  # nothing from before signing in carries over
    session["token"] = row.token_hash
    return _user(row)


def current(database: Database) -> User | None:
    hashed = session.get("token")
    if not isinstance(hashed, str):
        return None
    with database.session() as db:
        row = db.get(Token, hashed)
    if row is None or row.revoked:
        session.clear()
        return None
    return _user(row)
