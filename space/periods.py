"""The times a settlement period covers: a calendar month in the space's settlement zone
(``settlement_zone``, UTC unless the operator sets another), joined to the periods settled on
either side of it, so that a change of zone applies only to periods not yet settled and never
bills a use twice or leaves one out (contracts.settlement.window). A settled period keeps the
times its signed summary names."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass

from sqlalchemy.orm import Session

from contracts.errors import ContractError
from contracts.settlement import month_bounds, window
from policies.model import format_datetime
from space.errors import Refused
from space.models import Settlement

PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def bounds(period: str, zone: str = "UTC") -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of the calendar month ``period`` in ``zone``, as UTC times."""
    match = PERIOD.match(period or "")
    if match is None:
        raise Refused(f"period: expected YYYY-MM (e.g. 2026-11), got {period!r}", status=400)
    return month_bounds(int(match[1]), int(match[2]), zone)


@dataclass(frozen=True)
class Span:
    """The times a period covers and the zone whose month it is (space.periods decides them)."""

    start: dt.datetime
    end: dt.datetime
    zone: str = "UTC"

    def plain(self, period: str) -> bool:
        """The UTC month itself: what every period was before the zone could be set."""
        return self.zone == "UTC" and (self.start, self.end) == bounds(period)

    def to_json(self) -> dict[str, str]:
        return {"zone": self.zone, "start": format_datetime(self.start), "end": format_datetime(self.end)}


def _neighbour(period: str, step: int) -> str:
    year, month = int(period[:4]), int(period[5:]) + step
    year, month = (year - 1, 12) if month == 0 else (year + 1, 1) if month == 13 else (year, month)
    return f"{year:04d}-{month:02d}"


def settled_span(row: Settlement) -> Span:
    """The times a settled period covered, as its signed summary says (its UTC month if it says
    nothing: it was settled before the zone could be set)."""
    stored = json.loads(row.summary)["document"].get("window")
    if stored is None:
        return Span(*bounds(row.period))
    times = [dt.datetime.fromisoformat(stored[k].replace("Z", "+00:00")) for k in ("start", "end")]
    return Span(times[0], times[1], str(stored["zone"]))


def period_span(session: Session, period: str, zone: str = "UTC") -> Span:
    """The times ``period`` covers: as settled, or else its month in ``zone`` joined to the
    settled periods on either side (contracts.settlement.window)."""
    month = bounds(period, zone)
    row = session.get(Settlement, period)
    if row is not None:
        return settled_span(row)
    before, after = (session.get(Settlement, _neighbour(period, step)) for step in (-1, 1))
    try:
        start, end = window(
            month,
            settled_span(before).end if before is not None else None,
            settled_span(after).start if after is not None else None,
        )
    except ContractError as exc:
        raise Refused(f"period {period}: {exc}") from exc
    return Span(start, end, zone)
