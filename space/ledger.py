"""The usage ledger as a transparency log (RFC 9162 §2.1 hashing, proofs; signed tree heads).

Appending is two steps, each its own transaction: :func:`add_leaves` commits the records with
the perfect-subtree hashes they complete; only then :func:`space.tree.sign_head` signs a tree
head over them. A head is therefore never signed over leaves that could still be rolled back, and a crash
between the two leaves committed leaves that the next :func:`sign_head` covers.

Appends are idempotent by record id: the same record again gets the same receipt (its first
head and the proof against it); the same document with its consumer's signature, which the leaf
lacks, appends a countersignature leaf (:mod:`contracts.leaves`); other content under a known id
is a conflict, raised as an alert for the operator and auditors. The operator's decision on a
use its consumer never signed is a leaf too (:func:`space.disputes.decide`).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, or_, select
from sqlalchemy.orm import Session

from contracts import leaves, merkle
from contracts.canonical import canonical_bytes
from contracts.documents import new_signed, verify_document
from contracts.errors import ContractError
from contracts.keys import SigningKey
from contracts.treehead import SPACE_SIGNER, record_leaf
from contracts.usage import check_use, validate_record
from node.db import Database
from policies.model import format_datetime
from space import registry, steps
from space.errors import AlertingConflict, NotFound, Refused
from space.models import (
    Agreement,
    DailyUsage,
    LedgerAlert,
    LedgerEntry,
    LedgerHead,
    MerkleNode,
    Participant,
    TreeHead,
)
from space.tree import MAX_PAGE, head, nodes, receipts, sign_head

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


# --- appending -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Added:
    seq: int
    created: bool
    late_signers: tuple[str, ...] = ()
    countersignature_seq: int | None = None


@dataclass
class Appender:
    """The leaves one transaction adds, with the subtree hashes they complete."""

    session: Session
    caller: str
    now: dt.datetime
    size: int
    frontier: dict[merkle.Node, bytes]
    zone: str = "UTC"  # whose days the uses per day are counted in (the settlement zone)
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
            usage = [e["signed"]["document"] for e in self.entries if e["kind"] == "usage"]
            count_days(self.session, usage, self.zone)
        log.size = self.size
        self.session.flush()


def open_appender(
    session: Session, caller: str, now: dt.datetime, zone: str = "UTC"
) -> tuple[LedgerHead, Appender]:
    log = head(session, lock=True)
    frontier = nodes(session, merkle.decompose(0, log.size) if log.size else [])
    return log, Appender(session, caller, now, log.size, frontier, zone)


def add_leaves(
    session: Session, key: SigningKey, caller: str, records: list[Any], now: dt.datetime, zone: str = "UTC"
) -> list[Added]:
    """Checks every record, then appends the new ones (and a countersignature leaf for each
    consumer signature a known record arrives with) and the subtree hashes they complete.
    All or nothing: one bad record refuses the batch. Run inside one transaction."""
    checked = []
    looked_up = LookedUp({}, {})
    for position, signed in enumerate(records):
        try:
            if leaves.kind_of(signed) == "script-step":
                checked.append((signed, steps.check(session, caller, signed, looked_up.agreements)))
            else:
                checked.append((signed, _check(session, caller, signed, looked_up, now)))
        except Refused as exc:
            raise Refused(f"records[{position}]: {exc.detail}", status=exc.status) from exc
    ids = [record["id"] for _, record in checked]
    if len(set(ids)) != len(ids):
        raise Refused("the batch names one record id twice")
    existing = {
        e.record_id: e
        for e in session.scalars(
            select(LedgerEntry).where(
                LedgerEntry.record_id.in_(ids), LedgerEntry.kind.in_(("usage", "script-step"))
            )
        )
    }
    log, appender = open_appender(session, caller, now, zone)
    results: list[Added] = []
    for signed, record in checked:
        known = existing.get(record["id"])
        step = record.get("@type") == leaves.STEP_TYPE
        if known is None and step:
            results.append(Added(appender.add(signed, "script-step", steps.subject(record)), True))
        elif known is None:
            results.append(Added(appender.add(signed, "usage", record), True))
        else:
            results.append(_again(appender, key, known, signed))
    appender.flush(log)
    return results


def _again(appender: Appender, key: SigningKey, known: LedgerEntry, signed: dict[str, Any]) -> Added:
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
    if known.kind == "script-step":
        return Added(known.seq, False)  # a step is its provider's alone: nothing comes later
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


def count_days(session: Session, records: Iterable[dict[str, Any]], zone: str = "UTC") -> None:
    """Add records to the uses per day (the day their record finished, in ``zone``: the
    settlement zone in force at the append) and outcome; appends hold the log's lock, so no race."""
    counts: dict[tuple[str, str], int] = defaultdict(int)
    tz = ZoneInfo(zone)
    for record in records:
        day = str(record["finished_at"])[:10]
        if zone != "UTC":  # the record's time is checked at the log's door: a UTC timestamp
            day = (
                dt.datetime.fromisoformat(str(record["finished_at"]).replace("Z", "+00:00"))
                .astimezone(tz)
                .date()
                .isoformat()
            )
        counts[(day, record["outcome"])] += 1
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
    zone: str = "UTC",
) -> list[dict[str, Any]]:
    """Appends ``records`` (all or none) and returns one receipt per record, in order; a record
    that brought a late countersignature has that leaf's receipt too. ``zone``: whose days the
    console's uses per day count them in."""
    with database.write_lock:
        try:
            with database.transaction() as session:
                added = add_leaves(session, key, caller, records, clock(), zone)
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
