"""The outbox's backlog, read from the database: what GET /metrics and ``tds status`` show."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select

from connectors.models import OutboxRecord, OutboxState
from node.db import Database


@dataclass(frozen=True)
class Backlog:
    counts: dict[str, int]  # every OutboxState, 0 where none
    oldest_undelivered: dt.datetime | None  # when the oldest record not yet in the log was made

    def age_s(self, now: dt.datetime) -> float:
        """How long the oldest undelivered record has waited (0: none waits)."""
        return max(0.0, (now - self.oldest_undelivered).total_seconds()) if self.oldest_undelivered else 0.0


def read(db: Database) -> Backlog:
    with db.session() as session:
        rows = session.execute(
            select(OutboxRecord.state, func.count(), func.min(OutboxRecord.created_at)).group_by(
                OutboxRecord.state
            )
        ).all()
    found = {str(state): (int(count), oldest) for state, count, oldest in rows}
    waiting = [oldest for state, (_, oldest) in found.items() if state != OutboxState.DELIVERED and oldest]
    return Backlog(
        {s.value: found.get(s.value, (0, None))[0] for s in OutboxState}, min(waiting, default=None)
    )
