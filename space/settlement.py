"""Settlement of a closed period from the usage log, statements signed by the space, and the
price index per sector.

Only billable uses count, taken from the log (a use belongs to the period its record says it
finished in), and only those both parties signed — in the record's leaf or by a countersignature
leaf — or that the operator's decision leaf bills. Each agreement's fee follows its own price
terms (the negotiated price in the contract, not the listed one); the operator's commission
comes off the top and the rest is split among the agreement's beneficiaries, all in integer
fen by largest remainder (:mod:`contracts.settlement`). A settled period is immutable: settling
it again recomputes it over the log as it was then and returns the stored bytes — or, if uses
for that period arrived later, refuses and raises an alert instead of changing what was issued.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contracts import leaves
from contracts.canonical import canonical_bytes
from contracts.documents import new_signed
from contracts.errors import ContractError, UsageRecordError
from contracts.keys import SigningKey
from contracts.settlement import (
    Share,
    Use,
    agreement_fee,
    chained_index,
    median,
    parse_shares,
    split_fee,
    unit_price,
)
from contracts.usage import BILLABLE, check_use, timestamp, validate_record
from policies.model import format_datetime
from space import registry, tree
from space.errors import AlertingConflict, NotFound, Refused
from space.models import (
    Agreement,
    CatalogEntry,
    LedgerEntry,
    Participant,
    PricePoint,
    Settlement,
    Statement,
)
from space.periods import Span, bounds, period_span, settled_span

CSV_FIELDS = ("period", "participant", "agreement", "role", "uses", "fee_fen", "share_bp", "amount_fen")
OPERATOR = registry.SPACE_ID


@dataclass
class PeriodUses:
    """A period's uses as the log holds them: billed (both parties signed — in the leaf or by a
    countersignature leaf — or the operator decided to bill it; checked against the agreement),
    disputed (the provider alone signed: shown, not billed), voided (the operator decided not to
    bill it) and excluded (a leaf that fails the space's checks — only a rewritten database or an
    older version lets one in: shown with the reason, never billed, never fatal)."""

    billed: dict[str, list[Use]] = field(default_factory=lambda: defaultdict(list))
    disputed: list[dict[str, Any]] = field(default_factory=list)
    voided: list[dict[str, Any]] = field(default_factory=list)
    excluded: list[dict[str, Any]] = field(default_factory=list)

    def count(self) -> int:
        return sum(len(uses) for uses in self.billed.values()) + len(self.disputed) + len(self.voided)


def _finished(entry: LedgerEntry) -> dt.datetime | None:
    try:
        return timestamp(entry.signed["document"], "finished_at")
    except (ContractError, KeyError, TypeError):
        return None


def _uses(session: Session, span: Span, tree_size: int) -> PeriodUses:
    """The period's billable uses among the first ``tree_size`` leaves, each with the
    countersignature or decision leaves about it among those leaves."""
    start, end = span.start, span.end
    found = PeriodUses()
    query = (
        select(LedgerEntry)
        .where(LedgerEntry.kind == "usage", LedgerEntry.outcome.in_(BILLABLE), LedgerEntry.seq < tree_size)
        .order_by(LedgerEntry.seq)
    )
    agreements: dict[str, Agreement | None] = {}
    candidates: list[tuple[LedgerEntry, dict[str, Any]]] = []
    for entry in session.scalars(query):
        finished = _finished(entry)
        if finished is None:
            found.excluded.append({"record": entry.record_id, "reason": "finished_at is not a time"})
            continue
        if not start <= finished < end:
            continue
        if entry.agreement_id not in agreements:
            agreements[entry.agreement_id] = session.get(Agreement, entry.agreement_id)
        agreement = agreements[entry.agreement_id]
        doc = entry.signed.get("document") if isinstance(entry.signed, dict) else None
        try:
            if agreement is None:
                raise UsageRecordError(f"agreement {entry.agreement_id} was never recorded at the space")
            if not isinstance(doc, dict):
                raise UsageRecordError("the leaf holds no record document")
            validate_record(doc)
            # judged against its own finish time: settlement never drops a leaf for being late
            check_use(doc, agreement.signed["document"], agreement.terminated_at, finished)
        except ContractError as exc:
            found.excluded.append({"record": entry.record_id, "reason": str(exc)})
            continue
        candidates.append((entry, doc))
    later = _later_leaves(session, [entry.record_id for entry, _ in candidates], tree_size)
    for entry, doc in candidates:
        line = {"record": entry.record_id, "agreement": entry.agreement_id, "fee_fen": doc["fee_fen"]}
        status = _status(session, entry, doc, later.get(entry.record_id, []))
        if status == "disputed":
            found.disputed.append({**line, "provider": doc["provider"], "consumer": doc["consumer"]})
        elif status == "voided":
            found.voided.append({**line, "provider": doc["provider"], "consumer": doc["consumer"]})
        else:
            found.billed[entry.agreement_id].append(
                Use(entry.record_id, entry.agreement_id, doc["fee_fen"], doc["consumer_set_size"] or 0)
            )
    return found


def _later_leaves(session: Session, record_ids: list[str], tree_size: int) -> dict[str, list[LedgerEntry]]:
    found: dict[str, list[LedgerEntry]] = defaultdict(list)
    for start in range(0, len(record_ids), 500):  # IN lists of a bounded length
        query = select(LedgerEntry).where(
            LedgerEntry.subject.in_(record_ids[start : start + 500]), LedgerEntry.seq < tree_size
        )
        for entry in session.scalars(query.order_by(LedgerEntry.seq)):
            found[str(entry.subject)].append(entry)
    return found


def _status(session: Session, entry: LedgerEntry, doc: dict[str, Any], later: list[LedgerEntry]) -> str:
    """billed, disputed or voided: the consumer's signature (in the leaf, or a countersignature
    leaf that verifies) bills a use; without it, the operator's first decision leaf decides."""
    if doc["consumer"] in (entry.signed.get("signatures") or {}):
        return "billed"
    decision = None
    for leaf in later:
        other = leaf.signed.get("document") if isinstance(leaf.signed, dict) else None
        if not isinstance(other, dict):
            continue
        if leaf.kind == "countersignature":
            consumer = session.get(Participant, doc["consumer"])
            try:
                if consumer is None:
                    raise UsageRecordError(f"no participant {doc['consumer']}")
                leaves.check_countersignature(other, doc, consumer.public_key)
            except ContractError:
                continue  # not a countersignature of this record's consumer: it bills nothing
            return "billed"
        if leaf.kind == "decision" and decision is None and other.get("decision") in leaves.DECISIONS:
            decision = other["decision"]
    return {"bill": "billed", "void": "voided"}.get(decision or "", "disputed")


def compute(
    session: Session,
    period: str,
    covered: tuple[int, str],
    commission_bp: int,
    settled_at: dt.datetime,
    span: Span | None = None,
) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, tuple[int, float]]]:
    """(summary, statements by participant, (uses, median unit price) by sector) of a period
    (over ``span``, by default its UTC month), over the first ``covered[0]`` leaves of the log
    (whose root is ``covered[1]``)."""
    span = span or Span(*bounds(period))
    lines: dict[str, list[dict[str, Any]]] = defaultdict(list)
    agreements_out = []
    prices: dict[str, list[int]] = defaultdict(list)
    period_uses = _uses(session, span, covered[0])
    for agreement_id, uses in sorted(period_uses.billed.items()):
        agreement = session.get(Agreement, agreement_id)
        assert agreement is not None  # _uses bills only uses of agreements the space recorded
        terms = agreement.signed["document"]
        price = terms["tds:price"]
        try:
            fee = agreement_fee(price, uses)
            shares: tuple[Share, ...] = parse_shares(terms.get("tds:revenueShare"), agreement.provider_id)
        except ContractError as exc:
            raise Refused(f"period {period}: {exc}") from exc
        commission, parts = split_fee(fee, commission_bp, shares)
        entry = session.get(CatalogEntry, agreement.dataset_id)
        sector = entry.sector if entry is not None else "unknown"
        prices[sector] += [unit_price(price)] * len(uses)
        common = {"agreement": agreement_id, "uses": len(uses), "fee_fen": fee}
        lines[agreement.consumer_id].append(
            {**common, "role": "consumer", "share_bp": None, "amount_fen": -fee}
        )
        lines[OPERATOR].append(
            {**common, "role": "operator", "share_bp": commission_bp, "amount_fen": commission}
        )
        for share, part in zip(shares, parts, strict=True):
            lines[share.party].append(
                {**common, "role": share.role, "share_bp": share.bp, "amount_fen": part}
            )
        agreements_out.append(
            {
                **common,
                "price": price,
                "sector": sector,
                "commission_fen": commission,
                "split": [{**s.to_json(), "amount_fen": p} for s, p in zip(shares, parts, strict=True)],
            }
        )
    log = {"tree_size": covered[0], "root_hash": covered[1]}
    when = format_datetime(settled_at)
    statements = _statements(period, log, when, lines, period_uses)
    summary = {
        "@type": "tds:Settlement",
        "period": period,
        "currency": "CNY",
        "log": log,
        "settled_at": when,
        # the times the period covers, when they are not its UTC month (a settlement zone, or a
        # neighbour settled under another): absent otherwise, so earlier periods keep their bytes
        **({} if span.plain(period) else {"window": span.to_json()}),
        "commission_bp": commission_bp,
        "agreements": agreements_out,
        "fees_fen": sum(a["fee_fen"] for a in agreements_out),
        "commission_fen": sum(a["commission_fen"] for a in agreements_out),
        "disputed": period_uses.disputed,
        "disputed_fen": sum(line["fee_fen"] for line in period_uses.disputed),
        **({"voided": period_uses.voided} if period_uses.voided else {}),
        "excluded": period_uses.excluded,
    }
    sectors = {sector: (len(values), median(values)) for sector, values in prices.items()}
    return summary, statements, sectors


def _statements(
    period: str,
    log: dict[str, Any],
    when: str,
    lines: dict[str, list[dict[str, Any]]],
    period_uses: PeriodUses,
) -> dict[str, dict[str, Any]]:
    """Each party's statement: its lines, what it receives and pays, and the uses disputed or voided
    that name it (as provider or consumer)."""
    disputed: dict[str, list[dict[str, Any]]] = defaultdict(list)
    voided: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for lines_of, found in ((disputed, period_uses.disputed), (voided, period_uses.voided)):
        for line in found:
            for party in (line["provider"], line["consumer"]):
                lines_of[party].append(line)
    statements = {}
    for participant in sorted(set(lines) | set(disputed) | set(voided)):
        own = lines.get(participant, [])
        receivable = sum(line["amount_fen"] for line in own if line["amount_fen"] > 0)
        payable = -sum(line["amount_fen"] for line in own if line["amount_fen"] < 0)
        statements[participant] = {
            "@type": "tds:Statement",
            "period": period,
            "participant": participant,
            "currency": "CNY",
            "log": log,
            "settled_at": when,
            "lines": own,
            "receivable_fen": receivable,
            "payable_fen": payable,
            "net_fen": receivable - payable,
            # uses its provider alone signed: listed with their fee, not billed (DESIGN: trust model)
            "disputed": disputed.get(participant, []),
            "disputed_fen": sum(line["fee_fen"] for line in disputed.get(participant, [])),
            # uses the operator decided not to bill (a decision leaf in the log); the key only when
            # there are some, so that periods settled before decisions existed keep their bytes
            **({"voided": voided[participant]} if voided.get(participant) else {}),
        }
    return statements


def statement_csv(document: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for line in document["lines"]:
        writer.writerow({"period": document["period"], "participant": document["participant"], **line})
    writer.writerow(
        {
            "period": document["period"],
            "participant": document["participant"],
            "role": "net",
            "amount_fen": document["net_fen"],
        }
    )
    return out.getvalue()


def settle(
    session: Session, period: str, key: SigningKey, commission_bp: int, now: dt.datetime, zone: str = "UTC"
) -> tuple[Settlement, bool]:
    """Settles a closed ``period`` (a calendar month in ``zone``; or returns it as it was
    settled); (row, created)."""
    span = period_span(session, period, zone)
    if span.end > now:
        raise Refused(
            f"period {period} is not over until {format_datetime(span.end)}; settle closed periods only"
        )
    existing = session.get(Settlement, period)
    if existing is not None:
        _check_unchanged(session, existing, key, commission_bp)
        return existing, False
    head = tree.latest_head(session)
    covered = (head.size, head.root_hash) if head is not None else (0, "")
    summary, statements, sectors = compute(session, period, covered, commission_bp, now, span)
    row = Settlement(
        period=period,
        settled_at=now,
        tree_size=covered[0],
        summary=canonical_bytes(new_signed(summary, registry.SPACE_ID, key)).decode(),
    )
    session.add(row)
    session.flush()
    for participant, document in statements.items():
        signed = new_signed(document, registry.SPACE_ID, key)
        session.add(
            Statement(
                period=period,
                participant=participant,
                signed_json=canonical_bytes(signed).decode(),
                csv=statement_csv(document),
            )
        )
    _index(session, period, sectors)
    return row, True


def _check_unchanged(session: Session, existing: Settlement, key: SigningKey, commission_bp: int) -> None:
    stored = _loads(existing.summary)
    covered = (stored["document"]["log"]["tree_size"], stored["document"]["log"]["root_hash"])
    span = settled_span(existing)
    summary, _, _ = compute(
        session, existing.period, covered, stored["document"]["commission_bp"], existing.settled_at, span
    )
    later = _uses(session, span, 1 << 62)
    counted = (
        sum(a["uses"] for a in summary["agreements"])
        + len(summary["disputed"])
        + len(summary.get("voided", []))
    )
    arrived = later.count()
    if (
        canonical_bytes(new_signed(summary, registry.SPACE_ID, key)).decode() != existing.summary
        or arrived != counted
    ):
        raise AlertingConflict(
            f"period {existing.period} was settled over {counted} uses; the log now holds {arrived} for it. "
            "A settled period does not change: carry the difference into an open period",
            {
                "kind": "settled-period-changed",
                "record_id": existing.period,
                "submitted_by": OPERATOR,
                "detail": {"counted_uses": counted, "uses_now": arrived},
            },
        )


def _index(session: Session, period: str, sectors: dict[str, tuple[int, float]]) -> None:
    for sector, (uses, value) in sorted(sectors.items()):
        earlier = session.scalars(
            select(PricePoint)
            .where(PricePoint.sector == sector, PricePoint.period < period)
            .order_by(PricePoint.period)
        ).all()
        series = chained_index([*((p.period, p.median_unit_fen) for p in earlier), (period, value)])
        session.add(
            PricePoint(
                period=period, sector=sector, uses=uses, median_unit_fen=value, chained_index=series[-1][1]
            )
        )


def _loads(text: str) -> dict[str, Any]:
    return dict(json.loads(text))


def get(session: Session, period: str, now: dt.datetime | None = None, zone: str = "UTC") -> Settlement:
    """The settled ``period``; if it is not, NotFound says why (with ``now``: open or forgotten)."""
    found = session.get(Settlement, period)
    if found is None:
        end = period_span(session, period, zone).end
        if now is not None and end > now:  # an open month: say when it can be settled, and what shows it now
            raise NotFound(
                f"period {period} is still open: it can be settled from {format_datetime(end)}; "
                f"until then `tds settle --preview --period {period}` shows it so far (provisional)"
            )
        raise NotFound(f"period {period} is not settled; settle it with `tds settle --period {period}`")
    return found


def statement(
    session: Session, period: str, participant: str, now: dt.datetime | None = None, zone: str = "UTC"
) -> Statement:
    get(session, period, now, zone)
    found = session.get(Statement, (period, participant))
    if found is None:
        raise NotFound(f"{participant} has no statement for {period}: no settled use involves it")
    return found


def statements_of(session: Session, period: str) -> list[str]:
    return list(
        session.scalars(
            select(Statement.participant).where(Statement.period == period).order_by(Statement.participant)
        )
    )


def index(session: Session, sector: str | None = None) -> list[dict[str, Any]]:
    query = select(PricePoint).order_by(PricePoint.sector, PricePoint.period)
    if sector:
        query = query.where(PricePoint.sector == sector)
    return [
        {
            "sector": p.sector,
            "period": p.period,
            "uses": p.uses,
            "median_unit_fen": p.median_unit_fen,
            "chained_index": p.chained_index,
        }
        for p in session.scalars(query)
    ]
