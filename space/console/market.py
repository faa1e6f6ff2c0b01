"""Agreements, the catalog and settlement (statements, downloads, the price index)."""

from __future__ import annotations

import json
from typing import Any

from flask import (
    Response,
    abort,
    g,
    render_template,
    request,
)
from flask_babel import gettext as _
from sqlalchemy import select

from contracts.settlement import period_of
from node.models import utcnow
from space import agreements, catalog, preview, settlement
from space.console import queries
from space.console.formatting import yuan
from space.console.usage_log import row_view
from space.console.views import (
    blueprint,
    db,
    int_arg,
    signed_in,
    tds,
)
from space.errors import NotFound
from space.models import CatalogEntry, Settlement


# --- agreements and catalog ------------------------------------------------------------------
def _valid_until(document: dict[str, Any]) -> str | None:
    """The earliest end any permission's dateTime constraint sets, or None (no end)."""
    ends = [
        c["rightOperand"]
        for rule in document.get("permission", [])
        for c in rule.get("constraint", [])
        if c.get("leftOperand") == "dateTime" and c.get("operator") in ("lt", "lteq")
    ]
    return min(ends) if ends else None


def _price_text(price: dict[str, Any]) -> str:
    models = {
        "free": _("free"),
        "per_job": _("per job"),
        "per_row": _("per row"),
        "subscription": _("per month"),
    }
    amount = price.get("amount_fen")
    label = models.get(str(price.get("model")), str(price.get("model")))
    return label if amount is None else f"{yuan(int(amount))} {label}"


@blueprint.get("/agreements")
@signed_in()
def agreements_list() -> Any:
    participant = request.args.get("participant", "").strip()
    if not g.user.reads_all:
        participant = g.user.participant or ""
    state = request.args.get("state", "")
    with db().session() as session:
        rows, following = queries.agreements_page(
            session, participant, request.args.get("dataset", "").strip(), state, request.args.get("after")
        )
        items = [
            {
                "id": a.id,
                "provider": a.provider_id,
                "consumer": a.consumer_id,
                "dataset": a.dataset_id,
                "state": a.state,
                "purpose": a.signed["document"].get("tds:purpose"),
                "operations": a.signed["document"].get("tds:operations", []),
                "price": _price_text(a.signed["document"].get("tds:price", {})),
                "until": _valid_until(a.signed["document"]),
            }
            for a in rows
        ]
    return render_template("agreements.html", items=items, following=following, participant=participant)


@blueprint.get("/agreements/<path:agreement_id>")
@signed_in()
def agreement_page(agreement_id: str) -> Any:
    with db().session() as session:
        found = agreements.get(session, agreement_id)
        if not g.user.sees(found.provider_id, found.consumer_id):
            raise NotFound(_("no agreement %(id)s", id=agreement_id))
        document = found.signed["document"]
        page = queries.log_page(session, queries.LogFilter(agreement=agreement_id), int_arg("before"))
        entry = session.get(CatalogEntry, found.dataset_id)
    return render_template(
        "agreement.html",
        agreement=found,
        document=document,
        price=_price_text(document.get("tds:price", {})),
        until=_valid_until(document),
        shares=document.get("tds:revenueShare", []),
        decisions=[row_view(e) for e in page.rows],
        following=page.following,
        dataset=entry,
    )


@blueprint.get("/catalog")
@signed_in()
def catalog_list() -> Any:
    status = request.args.get("status", "")
    with db().session() as session:
        query = select(CatalogEntry).order_by(CatalogEntry.published_at.desc(), CatalogEntry.id).limit(200)
        if status:
            query = query.where(CatalogEntry.status == status)
        if not g.user.reads_all:
            query = query.where(
                (CatalogEntry.status == "published") | (CatalogEntry.provider_id == g.user.participant)
            )
        entries = []
        for e in session.scalars(query):
            offers = catalog.offers_of(session, e.id)
            entries.append(
                {
                    "entry": e,
                    "offers": [
                        {
                            "id": o.id,
                            "price": _price_text(o.document.get("price", {})),
                            "operations": sorted(
                                {p["action"] for p in o.document.get("policy", {}).get("permission", [])}
                            ),
                        }
                        for o in offers
                    ],
                }
            )
    return render_template("catalog.html", entries=entries, status=status)


# --- settlement ------------------------------------------------------------------------------
@blueprint.get("/settlements")
@signed_in()
def settlements_list() -> Any:
    with db().session() as session:
        periods = [
            {"period": s.period, "settled_at": s.settled_at, "summary": json.loads(s.summary)["document"]}
            for s in session.scalars(select(Settlement).order_by(Settlement.period.desc()))
        ]
        index = settlement.index(session)
    return render_template("settlements.html", periods=periods, index=index)


@blueprint.get("/settlements/preview")
@blueprint.get("/settlements/<period>/preview")
@signed_in()
def preview_page(period: str | None = None) -> Any:
    """The period (by default the current one) as it would settle now: provisional, unsigned
    (space.preview). A participant sees its own statement only."""
    now, settings = utcnow(), tds("settings")
    period = period or period_of(now, settings.settlement_zone)
    own = None if g.user.reads_all else g.user.participant
    with db().session() as session:
        shown = preview.preview(session, period, settings.commission_bp, now, own, settings.settlement_zone)
    return render_template(
        "preview.html", period=period, summary=shown.get("summary"), statements=shown["statements"],
        as_of=now, closes_at=shown["closes_at"],
    )  # fmt: skip


@blueprint.get("/settlements/<period>")
@signed_in()
def settlement_page(period: str) -> Any:
    with db().session() as session:
        row = settlement.get(session, period, utcnow(), tds("settings").settlement_zone)
        summary = json.loads(row.summary)["document"]
        parties = settlement.statements_of(session, period)
    if not g.user.reads_all:
        parties = [p for p in parties if p == g.user.participant]
        summary = {**summary, "agreements": []}
    return render_template("settlement.html", period=period, summary=summary, parties=parties, row=row)


@blueprint.get("/settlements/<period>/<participant>")
@signed_in()
def statement_page(period: str, participant: str) -> Any:
    if not g.user.sees(participant):
        raise NotFound(_("no statement of %(who)s for %(period)s", who=participant, period=period))
    with db().session() as session:
        found = settlement.statement(session, period, participant, utcnow(), tds("settings").settlement_zone)
        document = json.loads(found.signed_json)["document"]
    return render_template("statement.html", period=period, participant=participant, statement=document)


@blueprint.get("/settlements/<period>/<participant>.<fmt>")
@signed_in()
def statement_download(period: str, participant: str, fmt: str) -> Any:
    if fmt not in ("json", "csv"):
        abort(404)
    if not g.user.sees(participant):
        raise NotFound(_("no statement of %(who)s for %(period)s", who=participant, period=period))
    with db().session() as session:
        found = settlement.statement(session, period, participant, utcnow(), tds("settings").settlement_zone)
        body, mimetype = (
            (found.csv, "text/csv; charset=utf-8")
            if fmt == "csv"
            else (found.signed_json, "application/json")
        )
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="statement-{period}-{participant}.{fmt}"'
    return response
