"""A provisional settlement: the period's summary and statements as they would be if it closed
now, over the log as it stands. Read-only and unsigned — nothing is stored, no price point is
indexed, nothing is billed — and marked provisional, so that no one mistakes it for a
statement: until the period closes, later uses, countersignatures and the operator's
decisions still change it. Settlement itself (space.settlement.settle) is the only act that
issues statements.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from policies.model import format_datetime
from space import settlement, tree
from space.errors import Refused
from space.models import Settlement
from space.periods import period_span


def preview(
    session: Session,
    period: str,
    commission_bp: int,
    now: dt.datetime,
    participant: str | None = None,
    zone: str = "UTC",
) -> dict[str, Any]:
    """The provisional settlement of ``period`` (a month in ``zone``) at ``now``: everything for
    an operator or an auditor (``participant`` None), else that participant's own statement only."""
    span = period_span(session, period, zone)
    start, end = span.start, span.end
    if start > now:
        raise Refused(f"period {period} has not begun (it opens {format_datetime(start)})", status=409)
    if session.get(Settlement, period) is not None:
        raise Refused(f"period {period} is settled: read /settlements/{period}, not a preview", status=409)
    head = tree.latest_head(session)
    covered = (head.size, head.root_hash) if head is not None else (0, "")
    summary, statements, _ = settlement.compute(session, period, covered, commission_bp, now, span)
    marks = {"provisional": True, "as_of": format_datetime(now), "closes_at": format_datetime(end)}
    for document in (summary, *statements.values()):
        del document["settled_at"]  # not settled: its time is "as of"
        document.update(marks)
    if participant is not None:
        own = statements.get(participant)
        return {"@type": "tds:SettlementPreview", "period": period, **marks,
                "statements": {participant: own} if own else {}}  # fmt: skip
    return {"@type": "tds:SettlementPreview", "period": period, **marks, "summary": summary,
            "statements": statements}  # fmt: skip
