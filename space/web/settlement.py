"""Settlement: the operator settles a closed period; operators and auditors read the summary,
a participant its own statements; the market index."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, request

from contracts.settlement import period_of
from node.models import utcnow
from node.web import body_as
from space import ledger, operator, preview, settlement
from space.errors import AlertingConflict, NotFound, Refused
from space.requests import Settle
from space.web.common import (
    db,
    operator_actor,
    reader,
    settings,
    space_key,
)

settlement_api = Blueprint("settlement", __name__)


@settlement_api.post("/admin/settlements")
def admin_settle() -> Any:
    actor = operator_actor()
    period = body_as(Settle).period
    try:
        with db().write_lock, db().transaction() as session:
            row, created = operator.settle(
                session, actor, period, space_key(), settings().commission_bp, utcnow(),
                settings().settlement_zone,
            )  # fmt: skip
            body = row.summary
    except AlertingConflict as exc:
        with db().transaction() as session:
            ledger.raise_alert(session, exc.alert)
        raise
    return Response(body, status=201 if created else 200, mimetype="application/json")


@settlement_api.get("/settlements/<period>")
def show_settlement(period: str) -> Any:
    own = reader()
    with db().session() as session:
        row = settlement.get(session, period, utcnow(), settings().settlement_zone)
        if own is not None:
            raise Refused(
                "a participant reads its own statement: /settlements/<period>/statements/<id>", status=403
            )
        summary = json.loads(row.summary)
        return {**summary, "statements": settlement.statements_of(session, period)}


@settlement_api.get("/settlements/<period>/statements/<participant>.<fmt>")
def show_statement(period: str, participant: str, fmt: str) -> Any:
    own = reader()
    if own is not None and own != participant:
        raise Refused("a participant may read only its own statements", status=403)
    if fmt not in ("json", "csv"):
        raise NotFound(f"statements come as .json or .csv, not .{fmt}")
    with db().session() as session:
        found = settlement.statement(session, period, participant, utcnow(), settings().settlement_zone)
        if fmt == "csv":
            return Response(found.csv, mimetype="text/csv; charset=utf-8")
        return Response(found.signed_json, mimetype="application/json")


@settlement_api.get("/market/index")
def market_index() -> Any:
    reader()
    with db().session() as session:
        return {"index": settlement.index(session, request.args.get("sector") or None)}


@settlement_api.get("/settlements/<period>/preview")
def show_preview(period: str) -> Any:
    """The period (``current``: the one now open, in the space's settlement zone) as it would
    settle now (space.preview): unsigned, marked provisional. An operator or auditor sees
    everything, a participant its own statement."""
    own = reader()
    now, zone = utcnow(), settings().settlement_zone
    with db().session() as session:
        return preview.preview(
            session, period_of(now, zone) if period == "current" else period, settings().commission_bp,
            now, own, zone,
        )  # fmt: skip
