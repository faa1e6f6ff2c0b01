"""The usage ledger: signed usage records appended to a hash chain, idempotently by record id."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from contracts.chain import GENESIS, entry_hash, record_hash
from contracts.documents import verify_document
from contracts.errors import ContractError
from contracts.usage import validate_record
from space import registry
from space.errors import Conflict, Refused
from space.models import LedgerEntry, LedgerHead

MAX_PAGE = 1000


def _check(session: Session, caller: str, signed: Any) -> dict[str, Any]:
    if not isinstance(signed, dict) or not isinstance(signed.get("document"), dict):
        raise Refused('expected a signed usage record {"document": {...}, "signatures": {...}}')
    record = signed["document"]
    try:
        validate_record(record)
    except ContractError as exc:
        raise Refused(str(exc)) from exc
    provider, consumer = record["provider"], record["consumer"]
    if caller not in (provider, consumer):
        raise Refused(f"{caller} is not a party to usage record {record['id']}", status=403)
    signatures = signed.get("signatures")
    if not isinstance(signatures, dict):
        raise Refused("usage record carries no signatures")
    # The provider decides a use's outcome and always signs; the consumer countersigns.
    required = {provider} | ({consumer} if consumer in signatures else set())
    parties = {pid: registry.get(session, pid) for pid in required}
    try:
        verify_document(signed, required, lambda pid: parties[pid].public_key)
    except ContractError as exc:
        raise Refused(f"usage record {record['id']}: {exc}") from exc
    return record


def head(session: Session, lock: bool = False) -> LedgerHead:
    row = session.get(LedgerHead, 1, with_for_update=lock)
    if row is None:
        row = LedgerHead(id=1, size=0, head_hash=GENESIS)
        session.add(row)
        session.flush()
    return row


def append(session: Session, caller: str, signed: Any) -> tuple[LedgerEntry, bool]:
    """Append a record; the same id and content again returns the stored entry (no append);
    the same id with other content is a 409 conflict. Run inside one transaction."""
    record = _check(session, caller, signed)
    rec_hash = record_hash(signed)
    existing = session.scalar(select(LedgerEntry).where(LedgerEntry.record_id == record["id"]))
    if existing is not None:
        if existing.record_hash != rec_hash:
            raise Conflict(
                f"usage record {record['id']} is already in the ledger with different content",
                seq=existing.seq,
            )
        return existing, False
    chain = head(session, lock=True)
    entry = LedgerEntry(
        seq=chain.size,
        record_id=record["id"],
        signed=signed,
        record_hash=rec_hash,
        prev_hash=chain.head_hash,
        entry_hash=entry_hash(chain.head_hash, rec_hash),
        agreement_id=record["agreement"],
        dataset_id=record["dataset"],
        provider_id=record["provider"],
        consumer_id=record["consumer"],
        operation=record["operation"],
        outcome=record["outcome"],
        fee_fen=record["fee_fen"],
        submitted_by=caller,
    )
    session.add(entry)
    session.flush()
    chain.size += 1
    chain.head_hash = entry.entry_hash
    return entry, True


def receipt(entry: LedgerEntry, chain: LedgerHead) -> dict[str, Any]:
    return {
        "record_id": entry.record_id,
        "seq": entry.seq,
        "entry_hash": entry.entry_hash,
        "head": {"size": chain.size, "hash": chain.head_hash},
    }


def entries(
    session: Session,
    *,
    dataset: str | None = None,
    participant: str | None = None,
    agreement: str | None = None,
    outcome: str | None = None,
    after: int = -1,
    limit: int = 100,
) -> list[LedgerEntry]:
    query = select(LedgerEntry).where(LedgerEntry.seq > after)
    if dataset:
        query = query.where(LedgerEntry.dataset_id == dataset)
    if participant:
        query = query.where(
            or_(LedgerEntry.provider_id == participant, LedgerEntry.consumer_id == participant)
        )
    if agreement:
        query = query.where(LedgerEntry.agreement_id == agreement)
    if outcome:
        query = query.where(LedgerEntry.outcome == outcome)
    return list(session.scalars(query.order_by(LedgerEntry.seq).limit(max(1, min(limit, MAX_PAGE)))))


def view(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "record_id": entry.record_id,
        "prev_hash": entry.prev_hash,
        "entry_hash": entry.entry_hash,
        "appended_at": entry.appended_at.isoformat(),
        "signed": entry.signed,
    }
