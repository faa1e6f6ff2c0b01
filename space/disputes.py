"""The operator's decisions on disputed uses: a billable use its consumer never signed is billed
or voided by a leaf the space signs (:func:`decide`), once; and the countersignatures kept
beside the log before migration 0007 become leaves (:func:`adopt_late`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contracts import leaves
from contracts.documents import new_signed
from contracts.errors import ContractError
from contracts.keys import SigningKey
from contracts.treehead import SPACE_SIGNER
from contracts.usage import BILLABLE
from node.db import Database
from policies.model import format_datetime
from space import registry
from space.errors import Conflict, Refused, SpaceError
from space.ledger import countersignature_of, entry_by_record, open_appender, raise_alert
from space.models import LateSignature, LedgerEntry
from space.tree import MAX_PAGE, receipts, sign_head


def disputed(session: Session, after: int = -1, limit: int = 100) -> list[LedgerEntry]:
    """Billable uses whose consumer never signed, in the leaf or later, and no decision yet."""
    settled_leaves = select(LedgerEntry.subject).where(LedgerEntry.kind != "usage")
    query = (
        select(LedgerEntry)
        .where(
            LedgerEntry.kind == "usage",
            LedgerEntry.outcome.in_(BILLABLE),
            LedgerEntry.seq > after,
            LedgerEntry.record_id.not_in(settled_leaves.where(LedgerEntry.subject.is_not(None))),
        )
        .order_by(LedgerEntry.seq)
    )
    found = []
    for entry in session.scalars(query):
        if _consumer_signed(entry):
            continue
        found.append(entry)
        if len(found) >= max(1, min(limit, MAX_PAGE)):
            break
    return found


def _consumer_signed(entry: LedgerEntry) -> bool:
    document = entry.signed.get("document") if isinstance(entry.signed, dict) else None
    consumer = document.get("consumer") if isinstance(document, dict) else None
    return consumer in (entry.signed.get("signatures") or {})


def decide(
    database: Database,
    key: SigningKey,
    log_id: str,
    actor: str,
    record_id: str,
    verdict: str,
    reason: str,
    clock: Callable[[], dt.datetime],
) -> dict[str, Any]:
    """Appends the operator's decision on a disputed use (bill it, or void it) as a leaf signed by
    the space; returns its receipt. Only a billable use its consumer never signed can be decided,
    and only once."""
    with database.write_lock:
        with database.transaction() as session:
            entry = entry_by_record(session, record_id)
            record = entry.signed["document"]
            if entry.kind != "usage" or entry.outcome not in BILLABLE:
                raise Conflict(
                    f"{record_id} is a {entry.kind} leaf with outcome {entry.outcome}: only a "
                    f"{' or '.join(BILLABLE)} use can be disputed"
                )
            countersigned = countersignature_of(session, record_id)
            if _consumer_signed(entry) or countersigned is not None:
                where = f"leaf {countersigned.seq}" if countersigned is not None else "its own leaf"
                raise Conflict(f"usage record {record_id} is not disputed: its consumer signed it ({where})")
            try:
                document = leaves.decision(
                    record, entry.seq, verdict, reason, actor, format_datetime(clock())
                )
            except ContractError as exc:
                raise Refused(str(exc), status=400) from exc
            earlier = session.scalar(select(LedgerEntry).where(LedgerEntry.record_id == document["id"]))
            if earlier is not None:
                raise Conflict(
                    f"usage record {record_id} was decided already: "
                    f"{earlier.signed['document']['decision']} at leaf {earlier.seq}"
                )
            log, appender = open_appender(session, actor, clock())
            seq = appender.add(new_signed(document, SPACE_SIGNER, key), "decision", record)
            appender.flush(log)
        with database.transaction() as session:
            sign_head(session, key, log_id, clock())
    with database.session() as session:
        return receipts(session, [seq])[0]


def adopt_late(database: Database, key: SigningKey, log_id: str, clock: Callable[[], dt.datetime]) -> int:
    """Countersignatures kept beside the log before migration 0007 become leaves (each checked
    again: a row that does not verify is dropped with an alert). Returns how many rows it took."""
    with database.write_lock:
        with database.transaction() as session:
            rows = list(session.scalars(select(LateSignature).order_by(LateSignature.received_at)))
            if not rows:
                return 0
            log, appender = open_appender(session, SPACE_SIGNER, clock())
            for row in rows:
                try:
                    entry = entry_by_record(session, row.record_id)
                    record = entry.signed["document"]
                    document = leaves.countersignature(
                        record, entry.seq, row.signer, row.signature, format_datetime(row.received_at)
                    )
                    leaves.check_countersignature(
                        document, record, registry.get(session, row.signer).public_key
                    )
                except (ContractError, SpaceError) as exc:  # no such record or signer, or a bad signature
                    reason = exc.detail if isinstance(exc, SpaceError) else str(exc)
                    alert = {"kind": "late-signature-dropped", "record_id": row.record_id}
                    raise_alert(session, {**alert, "submitted_by": row.signer, "detail": {"reason": reason}})
                else:
                    if countersignature_of(session, row.record_id) is None:
                        appender.add(new_signed(document, SPACE_SIGNER, key), "countersignature", record)
                session.delete(row)
            appender.flush(log)
        with database.transaction() as session:
            sign_head(session, key, log_id, clock())
    return len(rows)
