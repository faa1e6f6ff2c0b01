"""A connector's health, as ``tds status`` shows it: its membership and credential as the space
sees them, the peers of its agreements in force, its outbox and its running jobs — and the
problems among them, each said with what to do."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select

from connectors import backlog
from connectors.context import Connector
from connectors.models import Job, JobStatus, Negotiation, OutboxState
from contracts.agreements import State
from node.models import utcnow
from node.signing import RemoteError

RENEW_WITHIN = dt.timedelta(days=30)  # a credential this close to its end is a problem to act on
STALE_OUTBOX_S = 300.0  # a record undelivered this long means the space has not taken it
MOST_PEERS = 50  # peers asked about, the most recently agreed first


def health(ctx: Connector) -> dict[str, Any]:
    now, problems = utcnow(), []
    try:
        me = ctx.space.participant(ctx.id, fresh=True)
    except RemoteError as exc:
        me = None
        problems.append(
            f"the space at {ctx.config.space_url} did not answer: {exc}; nothing can be agreed or recorded"
        )
    membership = _membership(me, now, problems, "this connector") if me is not None else None
    found = backlog.read(ctx.db)
    stuck = found.counts[OutboxState.BAD_RECEIPT] + found.counts[OutboxState.CONFLICT]
    if stuck:
        problems.append(
            f"{stuck} usage records need a person (a bad receipt or a conflict): see GET /api/outbox"
        )
    if found.age_s(now) > STALE_OUTBOX_S:
        problems.append(
            f"the oldest undelivered usage record has waited {found.age_s(now):.0f} s: "
            "is the space taking records?"
        )
    peers = [_peer(ctx, pid, now, problems) for pid in _peer_ids(ctx)] if me is not None else []
    with ctx.db.session() as session:
        running = session.scalar(select(func.count()).select_from(Job).where(Job.status == JobStatus.RUNNING))
    return {
        "id": ctx.id,
        "role": "connector",
        "healthy": not problems,
        "problems": problems,
        "space": {"url": ctx.config.space_url, "reachable": me is not None},
        "membership": membership,
        "outbox": {"records": found.counts, "oldest_undelivered_age_s": round(found.age_s(now), 1)},
        "jobs_running": running or 0,
        "peers": peers,
        "sandbox": ctx.backend.name,
    }


def _membership(info: dict[str, Any], now: dt.datetime, problems: list[str], who: str) -> dict[str, Any]:
    """A participant's status and credential expiry; a problem when either needs action."""
    document = (info.get("credential") or {}).get("document") or {}
    expires = document.get("expires_at")
    left = (
        dt.datetime.fromisoformat(str(expires).replace("Z", "+00:00")) - now if expires is not None else None
    )
    if info.get("status") != "admitted":
        problems.append(f"{who} ({info.get('id')}) is {info.get('status')} at the space, not admitted")
    elif left is None:
        problems.append(f"{who} ({info.get('id')}) holds no membership credential")
    elif left <= dt.timedelta(0):
        problems.append(f"{who}'s ({info.get('id')}) membership credential expired at {expires}")
    elif left <= RENEW_WITHIN:
        problems.append(
            f"{who}'s ({info.get('id')}) membership credential expires at {expires}, in {left.days} days"
        )
    return {
        "id": info.get("id"),
        "status": info.get("status"),
        "credential_expires_at": expires,
        "credential_days_left": left.days if left is not None else None,
    }


def _peer_ids(ctx: Connector) -> list[str]:
    with ctx.db.session() as session:
        rows = session.execute(
            select(Negotiation.peer_id, func.max(Negotiation.updated_at))
            .where(Negotiation.state == State.FINALIZED)
            .group_by(Negotiation.peer_id)
            .order_by(func.max(Negotiation.updated_at).desc())
            .limit(MOST_PEERS)
        ).all()
    return [str(pid) for pid, _ in rows]


def _peer(ctx: Connector, pid: str, now: dt.datetime, problems: list[str]) -> dict[str, Any]:
    try:
        info = ctx.space.participant(pid, fresh=True)  # asked now: a suspension shows at once
    except RemoteError as exc:
        problems.append(f"the space does not say who peer {pid} is: {exc}")
        return {"id": pid, "status": "unknown", "credential_expires_at": None, "credential_days_left": None}
    return _membership(info, now, problems, "peer")
