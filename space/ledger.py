"""The usage ledger as a transparency log (RFC 9162 §2.1 hashing, proofs; signed tree heads).

Appending is two steps, each its own transaction: :func:`add_leaves` commits the records with
the perfect-subtree hashes they complete; only then :func:`sign_head` signs a tree head over
them. A head is therefore never signed over leaves that could still be rolled back, and a crash
between the two leaves committed leaves that the next :func:`sign_head` covers.

Appends are idempotent by record id: the same record again gets the same receipt (its first
head and the proof against it); the same document with its consumer's signature, which the leaf
lacks, appends a countersignature leaf (:mod:`contracts.leaves`); other content under a known id
is a conflict, raised as an alert for the operator and auditors. The operator's decision on a
use its consumer never signed is a leaf too (:func:`decide`).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, insert, or_, select
from sqlalchemy.orm import Session

from contracts import leaves, merkle
from contracts.canonical import canonical_bytes
from contracts.documents import new_signed, verify_document
from contracts.errors import ContractError
from contracts.keys import SigningKey
from contracts.treehead import SPACE_SIGNER, record_leaf, tree_head_document
from contracts.usage import BILLABLE, check_use, validate_record
from node.db import Database
from policies.model import format_datetime
from space import registry
from space.errors import AlertingConflict, Conflict, NotFound, Refused, SpaceError
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
    countersignature_seq: int | None = None


@dataclass
class _Appender:
    """The leaves one transaction adds, with the subtree hashes they complete."""

    session: Session
    caller: str
    now: dt.datetime
    size: int
    frontier: dict[merkle.Node, bytes]
    entries: list[dict[str, Any]] = field(default_factory=list)
    new_nodes: list[dict[str, Any]] = field(default_factory=list)

    def add(self, signed: dict[str, Any], kind: str, subject: dict[str, Any]) -> int:
        """Append ``signed`` (a leaf of ``kind`` about the usage record ``subject``); its index."""
        leaf = record_leaf(signed)
        self.entries.append(
            {
                "seq": self.size,
                "record_id": signed["document"]["id"],
                "kind": kind,
                "subject": None if kind == "usage" else subject["id"],
                "signed": signed,
                "leaf_hash": leaf.hex(),
                "agreement_id": subject["agreement"],
                "dataset_id": subject["dataset"],
                "provider_id": subject["provider"],
                "consumer_id": subject["consumer"],
                "operation": subject["operation"],
                "outcome": subject["outcome"],
                "fee_fen": subject["fee_fen"] if kind == "usage" else 0,
                "appended_at": self.now,
                "submitted_by": self.caller,
            }
        )
        self.new_nodes += [
            {"level": level, "index": index, "hash": value}
            for level, index, value in merkle.append_leaf(self.frontier, self.size, leaf)
        ]
        self.size += 1
        return self.size - 1

    def flush(self, log: LedgerHead) -> None:
        if self.entries:  # bulk inserts: one statement each, not a unit of work per row
            self.session.execute(insert(LedgerEntry), self.entries)
            self.session.execute(insert(MerkleNode), self.new_nodes)
            count_days(self.session, [e["signed"]["document"] for e in self.entries if e["kind"] == "usage"])
        log.size = self.size
        self.session.flush()


def _appender(session: Session, caller: str, now: dt.datetime) -> tuple[LedgerHead, _Appender]:
    log = head(session, lock=True)
    frontier = nodes(session, merkle.decompose(0, log.size) if log.size else [])
    return log, _Appender(session, caller, now, log.size, frontier)


def add_leaves(
    session: Session, key: SigningKey, caller: str, records: list[Any], now: dt.datetime
) -> list[Added]:
    """Checks every record, then appends the new ones (and a countersignature leaf for each
    consumer signature a known record arrives with) and the subtree hashes they complete.
    All or nothing: one bad record refuses the batch. Run inside one transaction."""
    checked = []
    looked_up = LookedUp({}, {})
    for position, signed in enumerate(records):
        try:
            checked.append((signed, _check(session, caller, signed, looked_up, now)))
        except Refused as exc:
            raise Refused(f"records[{position}]: {exc.detail}", status=exc.status) from exc
    ids = [record["id"] for _, record in checked]
    if len(set(ids)) != len(ids):
        raise Refused("the batch names one record id twice")
    existing = {
        e.record_id: e
        for e in session.scalars(
            select(LedgerEntry).where(LedgerEntry.record_id.in_(ids), LedgerEntry.kind == "usage")
        )
    }
    log, appender = _appender(session, caller, now)
    results: list[Added] = []
    for signed, record in checked:
        known = existing.get(record["id"])
        if known is None:
            results.append(Added(appender.add(signed, "usage", record), True))
        else:
            results.append(_again(appender, key, known, signed))
    appender.flush(log)
    return results


def _again(appender: _Appender, key: SigningKey, known: LedgerEntry, signed: dict[str, Any]) -> Added:
    if canonical_bytes(known.signed["document"]) != canonical_bytes(signed["document"]):
        raise AlertingConflict(
            f"usage record {known.record_id} is already in the log (leaf {known.seq}) with other content",
            {
                "kind": "conflicting-record",
                "record_id": known.record_id,
                "submitted_by": appender.caller,
                "detail": {"leaf_index": known.seq, "submitted": signed},
            },
            leaf_index=known.seq,
        )
    record = known.signed["document"]
    late = tuple(sorted(set(signed["signatures"]) - set(known.signed["signatures"])))
    countersigned = None
    for signer in late:  # only the consumer may be missing from a leaf: its provider always signs
        found = countersignature_of(appender.session, record["id"])
        if found is not None:
            countersigned = found.seq
            continue
        document = leaves.countersignature(
            record, known.seq, signer, signed["signatures"][signer], format_datetime(appender.now)
        )
        countersigned = appender.add(new_signed(document, SPACE_SIGNER, key), "countersignature", record)
    return Added(known.seq, False, late, countersigned)


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


def countersignature_of(session: Session, record_id: str) -> LedgerEntry | None:
    return session.scalar(
        select(LedgerEntry).where(LedgerEntry.subject == record_id, LedgerEntry.kind == "countersignature")
    )


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
    """Appends ``records`` (all or none) and returns one receipt per record, in order; a record
    that brought a late countersignature has that leaf's receipt too."""
    with database.write_lock:
        try:
            with database.transaction() as session:
                added = add_leaves(session, key, caller, records, clock())
        except AlertingConflict as exc:
            with database.transaction() as session:  # the refusal leaves a trace
                raise_alert(session, exc.alert)
            raise
        with database.transaction() as session:  # only now, over committed leaves
            sign_head(session, key, log_id, clock())
    with database.session() as session:
        out = []
        for item, found in zip(added, receipts(session, [item.seq for item in added]), strict=True):
            found = {**found, "created": item.created, "late_signatures": list(item.late_signers)}
            if item.countersignature_seq is not None:
                (extra,) = receipts(session, [item.countersignature_seq])
                entry = session.get(LedgerEntry, item.countersignature_seq)
                assert entry is not None
                found["countersignature"] = {"signed": entry.signed, "receipt": extra}
            out.append(found)
        return out


# --- the operator's decisions on disputed uses ------------------------------------------------
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
            log, appender = _appender(session, actor, clock())
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
            log, appender = _appender(session, SPACE_SIGNER, clock())
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


def about(session: Session, record_id: str) -> list[LedgerEntry]:
    """The countersignature and decision leaves about one usage record, in log order."""
    return list(
        session.scalars(select(LedgerEntry).where(LedgerEntry.subject == record_id).order_by(LedgerEntry.seq))
    )


def view(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "record_id": entry.record_id,
        "kind": entry.kind,
        "subject": entry.subject,
        "leaf_hash": entry.leaf_hash,
        "appended_at": entry.appended_at.isoformat(),
        "submitted_by": entry.submitted_by,
        "signed": entry.signed,
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
