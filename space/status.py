"""The space's health, as ``tds status`` shows it: the log (leaves left without a signed head for
longer than an append takes), its alerts, participants by status, the credentials that end soon
or have, and its operator's rule files (negative list, export list) if one cannot be used."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from space.models import LedgerAlert, LedgerEntry, Participant, TreeHead

RENEW_WITHIN = dt.timedelta(days=30)  # as the connectors say of their own (connectors.status)
# An append commits its leaves, then signs a head over them in a second transaction
# (space.ledger.append): leaves newer than this are an append in progress, not a problem.
SIGNING_GRACE = dt.timedelta(seconds=60)


def health(session: Session, now: dt.datetime, unusable_rules: list[str] | None = None) -> dict[str, Any]:
    """``unusable_rules``: why a rule file of the operator's cannot be used (space.web.common)."""
    problems: list[str] = list(unusable_rules or [])
    leaves = session.scalar(select(func.count()).select_from(LedgerEntry)) or 0
    signed = session.scalar(select(func.max(TreeHead.size))) or 0
    alerts = session.scalar(select(func.count()).select_from(LedgerAlert)) or 0
    oldest_unsigned = session.scalar(
        select(func.min(LedgerEntry.appended_at)).where(LedgerEntry.seq >= signed)
    )
    if oldest_unsigned is not None and now - oldest_unsigned > SIGNING_GRACE:
        problems.append(
            f"{leaves - signed} leaves of the log await a signed tree head (restart the space to sign)"
        )
    statuses: dict[str, int] = {}
    ending = []
    for member in session.scalars(select(Participant).order_by(Participant.id)):
        statuses[member.status] = statuses.get(member.status, 0) + 1
        expires = ((member.credential or {}).get("document") or {}).get("expires_at")
        if member.status != "admitted" or expires is None:
            continue
        left = dt.datetime.fromisoformat(str(expires).replace("Z", "+00:00")) - now
        if left <= RENEW_WITHIN:
            ending.append(
                {"id": member.id, "credential_expires_at": expires, "credential_days_left": left.days}
            )
            problems.append(
                f"{member.id}'s membership credential "
                + (
                    f"expired at {expires}"
                    if left <= dt.timedelta(0)
                    else f"expires at {expires}, in {left.days} days"
                )
            )
    return {
        "role": "space",
        "healthy": not problems,
        "problems": problems,
        "ledger": {"leaves": leaves, "signed_size": signed, "alerts": alerts},
        "participants": dict(sorted(statuses.items())),
        "credentials_ending": ending,
    }
