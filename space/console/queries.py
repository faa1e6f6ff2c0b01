"""What the console's pages read: filtered, keyset-paginated pages of the log and of agreements,
and the overview's figures. Every list is "newest first, the next page starts below the last
row shown", answered from an index in O(page) at any log size; nothing counts the whole log."""

from __future__ import annotations

import datetime as dt
import heapq
import json
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from space import tree
from space.models import (
    Agreement,
    CatalogEntry,
    DailyUsage,
    LedgerEntry,
    OperatorAction,
    Participant,
    Settlement,
)

PAGE = 50
WINDOW = 50_000  # log indexes one page of a filtered log looks through at most


@dataclass(frozen=True)
class LogFilter:
    """The log page's filters; empty strings are "any". Times bound the append time, which
    rises with the log index, so they become a range of indexes."""

    participant: str = ""
    dataset: str = ""
    agreement: str = ""
    operation: str = ""
    outcome: str = ""
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def as_args(self) -> dict[str, str]:
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, dt.datetime):
                out[f.name] = value.strftime("%Y-%m-%dT%H:%M")
            elif value:
                out[f.name] = value
        return out


def _seq_bound(session: Session, moment: dt.datetime) -> int:
    """The index of the first record appended at or after ``moment`` (the log's size if none)."""
    found = session.scalar(
        select(LedgerEntry.seq)
        .where(LedgerEntry.appended_at >= moment)
        .order_by(LedgerEntry.appended_at)
        .limit(1)
    )
    return tree.head(session).size if found is None else int(found)


@dataclass(frozen=True)
class LogPage:
    rows: list[LedgerEntry]
    following: int | None  # where the next (older) page starts, if anything is left to search
    searched_to: int | None  # set when this page stopped at its search window, not at a full page


def log_page(session: Session, chosen: LogFilter, before: int | None, limit: int = PAGE) -> LogPage:
    """Up to ``limit`` records below index ``before``, newest first.

    Each page looks at most :data:`WINDOW` log indexes below where it starts, through one index
    chosen here — the rarest kind of filter given (agreement, dataset, participant, operation,
    outcome); the other filters are checked on the rows that index yields. A filter whose
    matches are rare or absent therefore costs a bounded scan per page ("no more matches down to
    record N; search older"), never a walk through the whole log."""
    top = tree.head(session).size
    low = 0
    if chosen.until is not None:
        top = min(top, _seq_bound(session, chosen.until))
    if chosen.since is not None:
        low = _seq_bound(session, chosen.since)
    if before is not None:
        top = min(top, before)
    floor = max(low, top - WINDOW)
    exact = [
        (column, value)
        for column, value in (
            (LedgerEntry.agreement_id, chosen.agreement),
            (LedgerEntry.dataset_id, chosen.dataset),
            (LedgerEntry.operation, chosen.operation),
            (LedgerEntry.outcome, chosen.outcome),
        )
        if value
    ]
    drivers: list[list[tuple[Any, str]]]
    if chosen.participant:
        # provider = p OR consumer = p: two walks merged here (an OR would defeat the indexes)
        drivers = [
            [(LedgerEntry.provider_id, chosen.participant), *exact],
            [(LedgerEntry.consumer_id, chosen.participant), *exact],
        ]
        if exact and exact[0][0] is LedgerEntry.agreement_id:  # an agreement is rarer still
            drivers = [
                [*exact, (side, chosen.participant)]
                for side in (LedgerEntry.provider_id, LedgerEntry.consumer_id)
            ]
    else:
        drivers = [exact]
    walks = []
    for conditions in drivers:
        query = select(LedgerEntry).where(LedgerEntry.seq >= floor, LedgerEntry.seq < top)
        for position, (column, value) in enumerate(conditions):
            # only the first condition may drive the index: wrapping the others in an
            # expression keeps the planner (SQLite's in particular) from walking a commoner one
            query = query.where((column if position == 0 else func.coalesce(column, "")) == value)
        walks.append(session.scalars(query.order_by(LedgerEntry.seq.desc()).limit(limit + 1)))
    rows: list[LedgerEntry] = []
    for entry in heapq.merge(*walks, key=lambda e: -e.seq):
        if not rows or rows[-1].seq != entry.seq:  # a participant's record with itself: once
            rows.append(entry)
        if len(rows) > limit:
            break
    if len(rows) > limit:
        return LogPage(rows[:limit], rows[limit - 1].seq, None)
    return LogPage(rows, floor if floor > low else None, floor if floor > low else None)


def agreements_page(
    session: Session, participant: str, dataset: str, state: str, before: str | None, limit: int = PAGE
) -> tuple[list[Agreement], str | None]:
    """Agreements by id (newest pids are random, so the order is only stable, not by time)."""
    query = select(Agreement).order_by(Agreement.id).limit(limit + 1)
    if participant:
        query = query.where((Agreement.provider_id == participant) | (Agreement.consumer_id == participant))
    if dataset:
        query = query.where(Agreement.dataset_id == dataset)
    if state:
        query = query.where(Agreement.state == state)
    if before:
        query = query.where(Agreement.id > before)
    rows = list(session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)


def counts(session: Session, column: Any) -> dict[str, int]:
    return {str(k): int(n) for k, n in session.execute(select(column, func.count()).group_by(column))}


def usage_per_day(
    session: Session, today: dt.date, days: int = 30
) -> tuple[list[str], dict[str, dict[str, int]]]:
    """The last ``days`` days up to ``today`` (in the settlement zone, as the daily counts are
    kept) and the uses on each by outcome."""
    first = today - dt.timedelta(days=days - 1)
    per_day: dict[str, dict[str, int]] = {}
    for row in session.scalars(select(DailyUsage).where(DailyUsage.day >= first.isoformat())):
        if row.day <= today.isoformat():
            per_day.setdefault(row.day, {})[row.outcome] = row.uses
    return [(first + dt.timedelta(days=i)).isoformat() for i in range(days)], per_day


def overview(session: Session) -> dict[str, Any]:
    return {
        "participants": counts(session, Participant.status),
        "datasets": counts(session, CatalogEntry.status),
        "agreements": counts(session, Agreement.state),
        "log_size": tree.head(session).size,
        "head": tree.latest_head(session),
    }


def settled_fees_by_sector(session: Session) -> dict[str, int]:
    """Fees of every settled period, by the sector of the dataset used (from signed summaries)."""
    totals: dict[str, int] = {}
    for text in session.scalars(select(Settlement.summary)):
        for line in json.loads(text)["document"]["agreements"]:
            totals[line["sector"]] = totals.get(line["sector"], 0) + line["fee_fen"]
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


def actions_page(
    session: Session, before: int | None, limit: int = PAGE
) -> tuple[list[OperatorAction], int | None]:
    query = select(OperatorAction).order_by(OperatorAction.id.desc()).limit(limit + 1)
    if before is not None:
        query = query.where(OperatorAction.id < before)
    rows = list(session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)
