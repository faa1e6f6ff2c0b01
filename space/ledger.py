"""The usage ledger as a transparency log (RFC 9162 §2.1 hashing, proofs; signed tree heads).

Appending is two steps, each its own transaction: :func:`add_leaves` commits the records with
the perfect-subtree hashes they complete; only then :func:`sign_head` signs a tree head over
them. A head is therefore never signed over leaves that could still be rolled back, and a crash
between the two leaves committed leaves that the next :func:`sign_head` covers.

Appends are idempotent by record id: the same record again gets the same receipt (its first
head and the proof against it); the same document with more signatures keeps the extra ones
beside the leaf (:class:`LateSignature`); other content under a known id is a conflict, raised
as an alert for the operator and auditors.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, insert, or_, select
from sqlalchemy.orm import Session

from contracts import merkle
from contracts.canonical import canonical_bytes
from contracts.documents import new_signed, verify_document
from contracts.errors import ContractError
from contracts.keys import SigningKey
from contracts.treehead import SPACE_SIGNER, record_leaf, tree_head_document
from contracts.usage import check_use, validate_record
from node.db import Database
from node.models import utcnow
from policies.model import format_datetime
from space import registry
from space.errors import AlertingConflict, NotFound, Refused
from space.models import (
    Agreement,
    DailyUsage,
    LateSignature,
    LedgerAlert,
    LedgerEntry,
    LedgerHead,
    MerkleNode,
    Participant,
    TreeHead,
)

MAX_PAGE = 1000
MAX_BATCH = 1000


# --- checks ---------------------------------------------------------------------------------
@dataclass
class LookedUp:
    """What one batch's checks looked up, each once."""

    participants: dict[str, Participant]
    agreements: dict[str, Agreement | None]


def _check(session: Session, caller: str, signed: Any, known: LookedUp, now: dt.datetime) -> dict[str, Any]:
    """A record the space may append: well-formed, signed by its provider (and by its consumer if
    it names a consumer signature), and a use its agreement allows at its price. The provider
    writes the record, so nothing in it is believed before these checks (DESIGN: trust model)."""
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
    if not isinstance(signatures, dict) or set(signatures) - {provider, consumer}:
        raise Refused(
            f"usage record {record['id']}: expected signatures of {provider} and optionally {consumer}, "
            f"got {sorted(signatures) if isinstance(signatures, dict) else signatures!r}"
        )
    # The provider decides a use's outcome and always signs; the consumer countersigns.
    required = {provider} | ({consumer} if consumer in signatures else set())
    for pid in required - set(known.participants):
        known.participants[pid] = registry.get(session, pid)
    try:
        verify_document(signed, required, lambda pid: known.participants[pid].public_key)
    except ContractError as exc:
        raise Refused(f"usage record {record['id']}: {exc}") from exc
    agreement_id = record["agreement"]
    if agreement_id not in known.agreements:
        known.agreements[agreement_id] = session.get(Agreement, agreement_id)
    agreement = known.agreements[agreement_id]
    if agreement is None:
        if record["outcome"] == "denied" and record["fee_fen"] == 0:
            return record  # asked under an agreement nobody recorded: worth logging, bills nothing
        raise Refused(
            f"usage record {record['id']}: agreement {agreement_id} is not recorded at the space; "
            "only a denial may name an unknown agreement",
            status=409,
        )
    try:
        check_use(record, agreement.signed["document"], agreement.terminated_at, now)
    except ContractError as exc:
        raise Refused(f"usage record {record['id']}: {exc}", status=409) from exc
    return record


def head(session: Session, lock: bool = False) -> LedgerHead:
    row = session.get(LedgerHead, 1, with_for_update=lock)
    if row is None:
        row = LedgerHead(id=1, size=0)
        session.add(row)
        session.flush()
    return row


# --- the subtree store ---------------------------------------------------------------------
def nodes(session: Session, wanted: Iterable[merkle.Node]) -> dict[merkle.Node, bytes]:
    """Stored perfect-subtree hashes, in one query."""
    keys = sorted(set(wanted))
    if not keys:
        return {}
    by_level: dict[int, list[int]] = defaultdict(list)
    for level, index in keys:
        by_level[level].append(index)
    # one IN list per level: both databases then walk the primary key (a row-value IN over
    # (level, idx) makes SQLite scan the table)
    condition = or_(
        *(and_(MerkleNode.level == level, MerkleNode.index.in_(ids)) for level, ids in by_level.items())
    )
    rows = session.execute(select(MerkleNode.level, MerkleNode.index, MerkleNode.hash).where(condition))
    found = {(level, index): bytes(value) for level, index, value in rows}
    missing = set(keys) - set(found)
    if missing:
        raise RuntimeError(f"the log's subtree store lacks {sorted(missing)[:3]}: it is damaged")
    return found


def root_at(session: Session, size: int) -> bytes:
    table = nodes(session, merkle.decompose(0, size) if size else [])
    return merkle.subtree_hash(0, size, table.__getitem__)


# --- appending -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Added:
    seq: int
    created: bool
    late_signers: tuple[str, ...] = ()


def add_leaves(session: Session, caller: str, records: list[Any]) -> list[Added]:
    """Checks every record, then appends the new ones and the subtree hashes they complete.
    All or nothing: one bad record refuses the batch. Run inside one transaction."""
    checked = []
    looked_up = LookedUp({}, {})
    now = utcnow()
    for position, signed in enumerate(records):
        try:
            checked.append((signed, _check(session, caller, signed, looked_up, now)))
        except Refused as exc:
            raise Refused(f"records[{position}]: {exc.detail}", status=exc.status) from exc
    ids = [record["id"] for _, record in checked]
    if len(set(ids)) != len(ids):
        raise Refused("the batch names one record id twice")
    existing = {
        e.record_id: e for e in session.scalars(select(LedgerEntry).where(LedgerEntry.record_id.in_(ids)))
    }
    log = head(session, lock=True)
    size = log.size
    frontier = nodes(session, merkle.decompose(0, size) if size else [])
    results: list[Added] = []
    entries: list[dict[str, Any]] = []
    new_nodes: list[dict[str, Any]] = []
    for signed, record in checked:
        known = existing.get(record["id"])
        if known is not None:
            results.append(_again(session, caller, known, signed))
            continue
        leaf = record_leaf(signed)
        entries.append(
            {
                "seq": size,
                "record_id": record["id"],
                "signed": signed,
                "leaf_hash": leaf.hex(),
                "agreement_id": record["agreement"],
                "dataset_id": record["dataset"],
                "provider_id": record["provider"],
                "consumer_id": record["consumer"],
                "operation": record["operation"],
                "outcome": record["outcome"],
                "fee_fen": record["fee_fen"],
                "appended_at": now,
                "submitted_by": caller,
            }
        )
        new_nodes += [
            {"level": level, "index": index, "hash": value}
            for level, index, value in merkle.append_leaf(frontier, size, leaf)
        ]
        results.append(Added(size, True))
        size += 1
    if entries:  # bulk inserts: one statement each, not a unit of work per row
        session.execute(insert(LedgerEntry), entries)
        session.execute(insert(MerkleNode), new_nodes)
        count_days(session, [e["signed"]["document"] for e in entries])
    log.size = size
    session.flush()
    return results


def count_days(session: Session, records: Iterable[dict[str, Any]]) -> None:
    """Add records to the uses per day and outcome (appends hold the log's lock, so no race)."""
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for record in records:
        counts[(str(record["finished_at"])[:10], record["outcome"])] += 1
    for (day, outcome), uses in counts.items():
        row = session.get(DailyUsage, (day, outcome))
        if row is None:
            session.add(DailyUsage(day=day, outcome=outcome, uses=uses))
        else:
            row.uses += uses


def _again(session: Session, caller: str, known: LedgerEntry, signed: dict[str, Any]) -> Added:
    if canonical_bytes(known.signed["document"]) != canonical_bytes(signed["document"]):
        raise AlertingConflict(
            f"usage record {known.record_id} is already in the log (leaf {known.seq}) with other content",
            {
                "kind": "conflicting-record",
                "record_id": known.record_id,
                "submitted_by": caller,
                "detail": {"leaf_index": known.seq, "submitted": signed},
            },
            leaf_index=known.seq,
        )
    late = []
    for signer, signature in signed["signatures"].items():
        if signer in known.signed["signatures"]:
            continue  # checked above against the signer's key; the leaf already has one
        if session.get(LateSignature, (known.record_id, signer)) is None:
            session.add(LateSignature(record_id=known.record_id, signer=signer, signature=signature))
        late.append(signer)
    return Added(known.seq, False, tuple(sorted(late)))


def raise_alert(session: Session, alert: dict[str, Any]) -> None:
    session.add(LedgerAlert(**alert))


def append(
    database: Database,
    key: SigningKey,
    log_id: str,
    caller: str,
    records: list[Any],
    clock: Callable[[], dt.datetime],
) -> list[dict[str, Any]]:
    """Appends ``records`` (all or none) and returns one receipt per record, in order."""
    with database.write_lock:
        try:
            with database.transaction() as session:
                added = add_leaves(session, caller, records)
        except AlertingConflict as exc:
            with database.transaction() as session:  # the refusal leaves a trace
                raise_alert(session, exc.alert)
            raise
        with database.transaction() as session:  # only now, over committed leaves
            sign_head(session, key, log_id, clock())
    with database.session() as session:
        return [
            {**found, "created": item.created, "late_signatures": list(item.late_signers)}
            for item, found in zip(added, receipts(session, [item.seq for item in added]), strict=True)
        ]


# --- tree heads ------------------------------------------------------------------------------
def sign_head(session: Session, key: SigningKey, log_id: str, now: dt.datetime) -> TreeHead:
    """The signed head for the log's committed size, signing one if there is none yet."""
    size = head(session).size
    latest = latest_head(session)
    if latest is not None and latest.size == size:
        return latest
    root = root_at(session, size)
    document = tree_head_document(log_id, size, root, format_datetime(now))
    signed = new_signed(document, SPACE_SIGNER, key)
    row = TreeHead(size=size, root_hash=root.hex(), signed=signed, issued_at=now)
    session.add(row)
    session.flush()
    return row


def latest_head(session: Session) -> TreeHead | None:
    return session.scalar(select(TreeHead).order_by(TreeHead.size.desc()).limit(1))


def heads(session: Session, after: int = -1, limit: int = 100) -> list[TreeHead]:
    query = select(TreeHead).where(TreeHead.size > after).order_by(TreeHead.size)
    return list(session.scalars(query.limit(max(1, min(limit, MAX_PAGE)))))


def head_of_size(session: Session, size: int) -> TreeHead:
    found = session.get(TreeHead, size)
    if found is None:
        raise NotFound(f"no signed tree head of size {size}; list them at /ledger/heads")
    return found


# --- proofs and receipts ---------------------------------------------------------------------
def inclusion_proof(session: Session, index: int, size: int) -> list[str]:
    try:
        ranges = merkle.inclusion_ranges(index, size)
    except merkle.ProofError as exc:
        raise Refused(str(exc), status=400) from exc
    table = nodes(session, merkle.needed_nodes(ranges))
    return [h.hex() for h in merkle.hashes_for(ranges, table.__getitem__)]


def consistency_proof(session: Session, old: int, new: int) -> list[str]:
    current = head(session).size
    if not 0 < old <= new <= current:
        raise Refused(
            f"consistency proof: expected 0 < from ≤ to ≤ {current}, got {old} and {new}", status=400
        )
    ranges = merkle.consistency_ranges(old, new)
    table = nodes(session, merkle.needed_nodes(ranges))
    return [h.hex() for h in merkle.hashes_for(ranges, table.__getitem__)]


def receipt(session: Session, entry: LedgerEntry) -> dict[str, Any]:
    """The leaf, the first signed head that includes it, and the inclusion proof against it:
    the same bytes every time it is asked for."""
    return receipts(session, [entry.seq])[0]


def receipts(session: Session, seqs: list[int]) -> list[dict[str, Any]]:
    """Receipts for several leaves, with the subtree hashes of all their proofs in one query."""
    if not seqs:
        return []
    rows = {e.seq: e for e in session.scalars(select(LedgerEntry).where(LedgerEntry.seq.in_(seqs)))}
    firsts: dict[int, TreeHead] = {}
    candidates: list[TreeHead] = []
    for seq in sorted(set(seqs)):
        first = next((h for h in candidates if h.size > seq), None)
        if first is None:
            first = session.scalar(
                select(TreeHead).where(TreeHead.size > seq).order_by(TreeHead.size).limit(1)
            )
            if first is None:
                raise RuntimeError(f"leaf {seq} has no signed head yet; sign_head must run first")
            candidates = [first]  # seqs ascend: a later leaf's first head is this one or later
        firsts[seq] = first
    ranges = {seq: merkle.inclusion_ranges(seq, firsts[seq].size) for seq in seqs}
    table = nodes(session, merkle.needed_nodes(r for rs in ranges.values() for r in rs))
    return [
        {
            "record_id": rows[seq].record_id,
            "leaf_index": seq,
            "leaf_hash": rows[seq].leaf_hash,
            "tree_head": firsts[seq].signed,
            "inclusion_proof": [h.hex() for h in merkle.hashes_for(ranges[seq], table.__getitem__)],
        }
        for seq in seqs
    ]


def entry_by_record(session: Session, record_id: str) -> LedgerEntry:
    found = session.scalar(select(LedgerEntry).where(LedgerEntry.record_id == record_id))
    if found is None:
        raise NotFound(f"no usage record {record_id} in the log")
    return found


# --- reading ----------------------------------------------------------------------------------
def entries(
    session: Session,
    *,
    dataset: str | None = None,
    participant: str | None = None,
    agreement: str | None = None,
    outcome: str | None = None,
    operation: str | None = None,
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
    if operation:
        query = query.where(LedgerEntry.operation == operation)
    return list(session.scalars(query.order_by(LedgerEntry.seq).limit(max(1, min(limit, MAX_PAGE)))))


def late_signatures(session: Session, record_ids: list[str]) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    if record_ids:
        for row in session.scalars(select(LateSignature).where(LateSignature.record_id.in_(record_ids))):
            found.setdefault(row.record_id, {})[row.signer] = row.signature
    return found


def view(entry: LedgerEntry, late: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "record_id": entry.record_id,
        "leaf_hash": entry.leaf_hash,
        "appended_at": entry.appended_at.isoformat(),
        "submitted_by": entry.submitted_by,
        "signed": entry.signed,
        "late_signatures": late or {},
    }


def head_view(row: TreeHead) -> dict[str, Any]:
    return {"tree_size": row.size, "root_hash": row.root_hash, "signed": row.signed}


def alerts(session: Session, after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
    query = select(LedgerAlert).where(LedgerAlert.id > after).order_by(LedgerAlert.id)
    return [
        {
            "id": a.id,
            "kind": a.kind,
            "record_id": a.record_id,
            "submitted_by": a.submitted_by,
            "detail": a.detail,
            "raised_at": a.raised_at.isoformat(),
        }
        for a in session.scalars(query.limit(max(1, min(limit, MAX_PAGE))))
    ]
