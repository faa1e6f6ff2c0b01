"""The operator's work queues (admit, suspend, review, settle) and the log of operator actions."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from sqlalchemy import func, select

from node import tokens
from node.models import utcnow
from space import catalog, ledger, operator, registry, settlement
from space.console import queries
from space.console.views import (
    ACTIONS,
    blueprint,
    db,
    int_arg,
    operator_only,
    signed_in,
    tds,
)
from space.errors import AlertingConflict, Refused
from space.models import DailyUsage, OperatorAction, Participant, Settlement, Token


# --- the operator's work queues --------------------------------------------------------------
def _closed_unsettled(session: Any, now: dt.datetime, zone: str) -> list[str]:
    """The last twelve closed months that are not settled yet, newest first — none that ended
    before the space began: its first registration or its first recorded use, if earlier."""
    settled = set(session.scalars(select(Settlement.period)))
    began = [
        t.date() if isinstance(t, dt.datetime) else dt.date.fromisoformat(t)
        for t in (
            session.scalar(select(func.min(Participant.registered_at))),
            session.scalar(select(func.min(DailyUsage.day))),
        )
        if t is not None
    ]
    local = now.astimezone(ZoneInfo(zone))  # the months are the settlement zone's
    months, year, month = [], local.year, local.month
    for _i in range(12):
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
        if not began or dt.date(year, month, 1) < min(began).replace(day=1):
            break
        period = f"{year:04d}-{month:02d}"
        if period not in settled:
            months.append(period)
    return months


@blueprint.get("/queues")
@signed_in("operator", "auditor")
def queues() -> Any:
    with db().session() as session:
        people = list(session.scalars(select(Participant).order_by(Participant.registered_at)))
        reviews = [catalog.entry_view(session, e) for e in catalog.pending_reviews(session)]
        periods = _closed_unsettled(session, utcnow(), tds("settings").settlement_zone)
        issued = [
            {**tokens.view(row), "created": row.created_at}
            for row in session.scalars(select(Token).order_by(Token.created_at, Token.token_hash))
        ]
    return render_template(
        "queues.html",
        pending=[p for p in people if p.status != "admitted"],
        admitted=[p for p in people if p.status == "admitted"],
        reviews=reviews,
        periods=periods,
        tokens=issued,
    )


def _confirm(question: str, fields: dict[str, str]) -> Any:
    """The same form again, with confirmed=yes: nothing is done by the first click."""
    return render_template("confirm.html", question=question, action=request.path, fields=fields)


def _done(message: str) -> Any:
    flash(message, "done")
    return redirect(url_for("console.queues"))


@blueprint.post("/participants/<pid>/<decision>")
@operator_only
def participant_decision(pid: str, decision: str) -> Any:
    if decision not in ("admit", "suspend"):
        abort(404)
    with db().session() as session:
        found = registry.get(session, pid)
        name = found.legal_name
    if request.form.get("confirmed") != "yes":
        question = (
            _("Admit %(name)s (%(id)s) and issue its membership credential?", name=name, id=pid)
            if decision == "admit"
            else _("Suspend %(name)s (%(id)s)? Its signed requests will be refused.", name=name, id=pid)
        )
        return _confirm(question, {})
    settings = tds("settings")
    with db().transaction() as session:
        if decision == "admit":
            operator.admit(session, g.user.actor, pid, tds("key"), utcnow(), settings.credential_days)
        else:
            operator.suspend(session, g.user.actor, pid, utcnow())
    return _done(_("%(id)s admitted.", id=pid) if decision == "admit" else _("%(id)s suspended.", id=pid))


@blueprint.post("/tokens/<token_id>/revoke")
@operator_only
def token_revoke(token_id: str) -> Any:
    """Revoke a person's token (as tds space token revoke): an operator act, logged."""
    if request.form.get("confirmed") != "yes":
        question = _(
            "Revoke token %(id)s? Whoever holds it can no longer sign in or call the API.", id=token_id
        )
        return _confirm(question, {})
    with db().transaction() as session:
        row = tokens.revoke(session, Token, token_id, "operator")
        operator.note(session, g.user.actor, "revoke-token", row.participant_id or row.role, utcnow(),
                      id=token_id, role=row.role, label=row.label)  # fmt: skip
    return _done(_("Token %(id)s revoked.", id=token_id))


@blueprint.post("/reviews/<path:entry_id>/<decision>")
@operator_only
def review_decision(entry_id: str, decision: str) -> Any:
    if decision not in ("approve", "reject"):
        abort(404)
    text = request.form.get("note", "").strip()[:2000]
    with db().session() as session:
        entry = catalog.get_entry(session, entry_id, include_unpublished=True)
        title = entry.title
    if decision == "reject" and not text:
        raise Refused(_("note: say why the entry is refused; the provider reads it"), status=400)
    if request.form.get("confirmed") != "yes":
        question = (
            _("Publish %(title)s (%(id)s) in the catalog?", title=title, id=entry_id)
            if decision == "approve"
            else _("Refuse %(title)s (%(id)s)?", title=title, id=entry_id)
        )
        return _confirm(question, {"note": text})
    with db().transaction() as session:
        operator.review(session, g.user.actor, entry_id, decision == "approve", text, utcnow())
    return _done(
        _("%(id)s published.", id=entry_id) if decision == "approve" else _("%(id)s refused.", id=entry_id)
    )


@blueprint.post("/settlements")
@operator_only
def settle() -> Any:
    period = request.form.get("period", "").strip()
    settlement.bounds(period)  # a malformed period is refused before the confirmation
    if request.form.get("confirmed") != "yes":
        question = _(
            "Settle %(period)s? Its statements are signed and can never change afterwards.", period=period
        )
        return _confirm(question, {"period": period})
    settings = tds("settings")
    database = db()
    try:
        with database.write_lock, database.transaction() as session:
            operator.settle(session, g.user.actor, period, tds("key"), settings.commission_bp, utcnow(),
                            settings.settlement_zone)  # fmt: skip
    except AlertingConflict as exc:  # as for POST /admin/settlements: the alert outlives the refusal
        with database.transaction() as session:
            ledger.raise_alert(session, exc.alert)
        raise
    flash(_("%(period)s settled.", period=period), "done")
    return redirect(url_for("console.settlement_page", period=period))


# --- the log of operator actions -------------------------------------------------------------
def action_view(action: OperatorAction) -> dict[str, Any]:
    return {
        "id": action.id,
        "at": action.at.isoformat(),
        "actor": action.actor,
        "action": action.action,
        "target": action.target,
        "detail": action.detail,
    }


@blueprint.get("/actions")
@signed_in("operator", "auditor")
def actions() -> Any:
    with db().session() as session:
        rows, following = queries.actions_page(session, int_arg("before"))
        items = [{**action_view(a), "at": a.at, "what": str(ACTIONS.get(a.action, a.action))} for a in rows]
    return render_template("actions.html", items=items, following=following)
