"""The one clock every service reads, so that a test or a demo can run whole node processes at
any date.

A node's "now" is the system's UTC time plus an offset in seconds taken from the environment
variable ``TDS_CLOCK_OFFSET`` (default 0). An environment variable, not a config file, because
it must reach every process of one run alike — the space, each connector, the CLI, the
sandbox's supervisor — so that signed requests stay inside each other's freshness window while
the dates they carry are in 2035. Time still advances: an offset moves the calendar, not the
rate of the clock, so request windows, nonce expiry and waits keep working.

Tests set it with :func:`offset_to` (``monkeypatch.setenv(ENV, offset_to(when))``) or pass it
to the processes they start; nothing in package code reads ``datetime.now`` itself.
"""

from __future__ import annotations

import datetime as dt
import os

ENV = "TDS_CLOCK_OFFSET"


class ClockError(ValueError):
    pass


def offset() -> float:
    """Seconds the node's clock runs ahead of the system's (negative: behind)."""
    raw = os.environ.get(ENV, "")
    if not raw:
        return 0.0
    try:
        return float(raw)
    except ValueError as exc:
        raise ClockError(f"{ENV}: expected a number of seconds such as 86400 or -3600, got {raw!r}") from exc


def now() -> dt.datetime:
    """The current time in UTC, as this node's clock tells it."""
    current = dt.datetime.now(dt.UTC)
    shift = offset()
    return current + dt.timedelta(seconds=shift) if shift else current


def offset_to(when: dt.datetime) -> str:
    """The value of ``TDS_CLOCK_OFFSET`` that makes the clock read ``when`` now."""
    if when.tzinfo is None:
        raise ClockError(f"offset_to needs an aware datetime, got naive {when.isoformat()}")
    return repr((when - dt.datetime.now(dt.UTC)).total_seconds())
