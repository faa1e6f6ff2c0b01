"""The outbox: usage records are stored locally first (in the same transaction as the job's
final state), then delivered to the space's log in batches with retries and exponential
backoff. The space appends idempotently by record id, so a record delivered twice is counted
once; each receipt is checked on arrival (the space's signature on the tree head, the leaf
hash, the inclusion proof) before the record counts as delivered."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from sqlalchemy import or_, select

from connectors.context import Connector, log
from connectors.models import OutboxRecord, OutboxState
from contracts.treehead import ReceiptError, check_receipt
from node.models import utcnow
from node.signing import RemoteError

MAX_BACKOFF_S = 300
BATCH = 200  # records per delivery request


def _due(ctx: Connector, now: dt.datetime) -> list[OutboxRecord]:
    grace = now - dt.timedelta(seconds=ctx.settings.countersign_grace_s)
    with ctx.db.session() as session:
        return list(
            session.scalars(
                select(OutboxRecord)
                .where(OutboxRecord.next_attempt_at <= now)
                .where(
                    or_(
                        OutboxRecord.state == OutboxState.READY,
                        # a consumer that never countersigns cannot keep a use out of the ledger
                        (OutboxRecord.state == OutboxState.AWAITING) & (OutboxRecord.created_at <= grace),
                    )
                )
                .order_by(OutboxRecord.created_at)
                .limit(500)
            )
        )


def deliver_due(ctx: Connector) -> dict[str, int]:
    """Try every record that is due once — in batches, or one by one when a batch is refused —
    and check each receipt on arrival. Returns counts of delivered and failed records."""
    counts = {"delivered": 0, "failed": 0}
    due = _due(ctx, utcnow())
    for start in range(0, len(due), BATCH):
        chunk = due[start : start + BATCH]
        try:
            receipts = ctx.space.append_batch([row.signed for row in chunk])
        except RemoteError as exc:
            if 400 <= exc.status < 500 and len(chunk) > 1:
                for row in chunk:  # find the record the space refuses; deliver the others
                    counts[_deliver_one(ctx, row)] += 1
                continue
            for row in chunk:
                _failed(ctx, row, exc)
            counts["failed"] += len(chunk)
            continue
        for row, receipt in zip(chunk, receipts, strict=True):
            counts[_accept(ctx, row, receipt)] += 1
    return counts


def _deliver_one(ctx: Connector, row: OutboxRecord) -> str:
    try:
        receipt = ctx.space.append_record(row.signed)
    except RemoteError as exc:
        _failed(ctx, row, exc)
        return "failed"
    return _accept(ctx, row, receipt)


def _accept(ctx: Connector, row: OutboxRecord, receipt: dict[str, Any]) -> str:
    """Stores the receipt once it proves the record is in the log under a head the space signed:
    as sent, or — when its provider's copy got there first — with our countersignature as a leaf
    of its own."""
    try:
        late = receipt.get("countersignature")
        if isinstance(late, dict):
            _check_countersignature(ctx, row, late)
        else:
            check_receipt(receipt, row.signed, ctx.settings.space_public_key)
    except ReceiptError as exc:
        log.error("the space's receipt for usage record %s does not verify: %s", row.id, exc)
        _update(ctx, row.id, state=OutboxState.BAD_RECEIPT, last_error=f"receipt does not verify: {exc}")
        return "failed"
    _update(ctx, row.id, state=OutboxState.DELIVERED, receipt=receipt, delivered_at=utcnow(), last_error=None)
    return "delivered"


def _check_countersignature(ctx: Connector, row: OutboxRecord, late: dict[str, Any]) -> None:
    signed, record = late.get("signed"), row.signed["document"]
    if not isinstance(signed, dict) or not isinstance(signed.get("document"), dict):
        raise ReceiptError("the countersignature leaf is not a signed document")
    check_receipt(late.get("receipt") or {}, signed, ctx.settings.space_public_key)
    document = signed["document"]  # check_receipt proved it is a leaf, so a signed document
    mine = row.signed["signatures"].get(record["consumer"])
    if document.get("record") != record["id"] or document.get("signature") != mine:
        raise ReceiptError(
            f"the countersignature leaf is not {record['consumer']}'s signature of {record['id']}"
        )


def _failed(ctx: Connector, row: OutboxRecord, exc: RemoteError) -> None:
    attempts = row.attempts + 1
    changes: dict[str, Any] = {
        "attempts": attempts,
        "last_error": str(exc),
        "next_attempt_at": utcnow() + dt.timedelta(seconds=min(MAX_BACKOFF_S, 2**attempts)),
    }
    if exc.status == 409:
        changes["state"] = OutboxState.CONFLICT  # same id, other content: a person must look
        log.error("usage record %s conflicts with the ledger: %s", row.id, exc)
    _update(ctx, row.id, **changes)


def _update(ctx: Connector, record_id: str, **changes: Any) -> None:
    ctx.db.update(OutboxRecord, record_id, **changes)


def receipts(ctx: Connector) -> list[dict[str, Any]]:
    """Every delivered record with the receipt that proved it in the log, oldest first."""
    with ctx.db.session() as session:
        rows = session.scalars(
            select(OutboxRecord)
            .where(OutboxRecord.state == OutboxState.DELIVERED)
            .order_by(OutboxRecord.created_at)
        )
        # a record whose provider's copy entered the log first is proved by our countersignature's leaf
        return [
            row.receipt["countersignature"]
            if isinstance(row.receipt, dict) and "countersignature" in row.receipt
            else {"signed": row.signed, "receipt": row.receipt}
            for row in rows
        ]


def pending(ctx: Connector) -> list[OutboxRecord]:
    with ctx.db.session() as session:
        return list(session.scalars(select(OutboxRecord).where(OutboxRecord.state != OutboxState.DELIVERED)))


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
