"""The outbox: usage records are stored locally first, then delivered to the space's ledger
with retries and exponential backoff. The space appends idempotently by record id, so a
record delivered twice is counted once."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from sqlalchemy import or_, select

from connectors.context import Connector, log
from connectors.models import OutboxRecord
from node.models import utcnow
from node.signing import RemoteError

MAX_BACKOFF_S = 300


def _due(ctx: Connector, now: dt.datetime) -> list[OutboxRecord]:
    grace = now - dt.timedelta(seconds=ctx.settings.countersign_grace_s)
    with ctx.db.session() as session:
        return list(
            session.scalars(
                select(OutboxRecord)
                .where(OutboxRecord.next_attempt_at <= now)
                .where(
                    or_(
                        OutboxRecord.state == "ready",
                        # a consumer that never countersigns cannot keep a use out of the ledger
                        (OutboxRecord.state == "awaiting_countersignature")
                        & (OutboxRecord.created_at <= grace),
                    )
                )
                .order_by(OutboxRecord.created_at)
                .limit(500)
            )
        )


def deliver_due(ctx: Connector) -> dict[str, int]:
    """Try every record that is due once; return counts of delivered and failed attempts."""
    delivered = failed = 0
    for row in _due(ctx, utcnow()):
        try:
            receipt = ctx.space.append_record(row.signed)
            changes: dict[str, Any] = {
                "state": "delivered",
                "receipt": receipt,
                "delivered_at": utcnow(),
                "last_error": None,
            }
            delivered += 1
        except RemoteError as exc:
            failed += 1
            attempts = row.attempts + 1
            changes = {
                "attempts": attempts,
                "last_error": str(exc),
                "next_attempt_at": utcnow() + dt.timedelta(seconds=min(MAX_BACKOFF_S, 2**attempts)),
            }
            if exc.status == 409:
                changes["state"] = "conflict"  # same id, other content: a person must look
                log.error("usage record %s conflicts with the ledger: %s", row.id, exc)
        with ctx.db.transaction() as session:
            stored = session.get(OutboxRecord, row.id)
            assert stored is not None
            for key, value in changes.items():
                setattr(stored, key, value)
    return {"delivered": delivered, "failed": failed}


def pending(ctx: Connector) -> list[OutboxRecord]:
    with ctx.db.session() as session:
        return list(session.scalars(select(OutboxRecord).where(OutboxRecord.state != "delivered")))


def start(ctx: Connector) -> threading.Thread:
    """A daemon thread delivering due records every interval, or at once when woken."""

    def loop() -> None:
        while not ctx.stopping.is_set():
            try:
                deliver_due(ctx)
            except Exception:
                log.exception("outbox delivery round failed")
            ctx.outbox_wakeup.wait(ctx.settings.delivery_interval_s)
            ctx.outbox_wakeup.clear()

    thread = threading.Thread(target=loop, name="tds-outbox", daemon=True)
    thread.start()
    return thread


def view(row: OutboxRecord) -> dict[str, Any]:
    return {
        "id": row.id,
        "job": row.job_id,
        "state": row.state,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "receipt": row.receipt,
    }
