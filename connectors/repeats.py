"""How often each id was scored under an agreement, for he.score's ``idRepeats`` operand.

The provider adds noise to every feature it scores (``score_noise``), and averaging n scores
of one id shrinks that noise by √n; a policy bounds n with ``idRepeats lteq N``: the most times
any requested id has been scored under the agreement, this job included. Counted only for
agreements whose policy names ``idRepeats``; a job's ids count when its use is reserved, so an
attempt that fails still counts (the bound errs on the provider's side)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from connectors.models import ScoredId

CHUNK = 500  # ids per IN list (SQLite allows 32 766 parameters; PostgreSQL 65 535)


def hashes(agreement_id: str, keys: Sequence[str]) -> list[str]:
    """The stored form of normalised ids: SHA-256 over the agreement id and the id."""
    return [hashlib.sha256(f"{agreement_id}\0{key}".encode()).hexdigest() for key in keys]


def most_scored(session: Session, agreement_id: str, hashed: Sequence[str]) -> int:
    """The most times any of ``hashed`` was scored under the agreement (0: none was)."""
    most = 0
    for start in range(0, len(hashed), CHUNK):
        chunk = hashed[start : start + CHUNK]
        found = session.scalar(
            select(func.max(ScoredId.times)).where(
                ScoredId.agreement_id == agreement_id, ScoredId.id_hash.in_(chunk)
            )
        )
        most = max(most, int(found or 0))
    return most


def count(session: Session, agreement_id: str, hashed: Sequence[str]) -> None:
    """One more scoring of each of ``hashed``, in the caller's transaction."""
    if not hashed:
        return
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    rows = [{"agreement_id": agreement_id, "id_hash": h, "times": 1} for h in hashed]
    statement = dialect.insert(ScoredId)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["agreement_id", "id_hash"], set_={"times": ScoredId.times + 1}
        ),
        rows,
    )
