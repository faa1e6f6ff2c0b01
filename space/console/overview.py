"""The overview and its charts."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Response,
    g,
    render_template,
)
from flask_babel import format_currency
from flask_babel import gettext as _

from node.models import utcnow
from space import ledger, settlement
from space.console import charts, queries
from space.console.usage_log import row_view
from space.console.views import (
    OUTCOMES,
    blueprint,
    db,
    signed_in,
    tds,
)


# --- overview --------------------------------------------------------------------------------
@blueprint.get("/")
@signed_in()
def overview() -> Any:
    with db().session() as session:
        figures = queries.overview(session)
        head = figures["head"]
        head_view = ledger.head_view(head) if head is not None else None
        own = None
        # an empty chart is a sentence, not a drawing: the page says so in its own type
        settled_any = g.user.reads_all and bool(queries.settled_fees_by_sector(session))
        if not g.user.reads_all:
            latest = queries.log_page(session, queries.LogFilter(participant=g.user.participant), None, 10)
            own = [row_view(e) for e in latest.rows]
    return render_template(
        "overview.html",
        figures=figures,
        head=head_view,
        head_time=head.signed["document"]["timestamp"] if head is not None else None,
        own=own,
        settled_any=settled_any,
    )


def _svg(body: bytes) -> Response:
    """A chart; its URL names the page's language (?lang=) so a cached one is never in the other."""
    response = Response(body, mimetype="image/svg+xml")
    response.headers["Cache-Control"] = "private, max-age=60"
    response.headers["Vary"] = "Cookie, Accept-Language"
    return response


@blueprint.get("/charts/usage.svg")
@signed_in("operator", "auditor")
def chart_usage() -> Any:
    zone = tds("settings").settlement_zone  # days in the zone whose months settlement uses
    with db().session() as session:
        days, per_day = queries.usage_per_day(session, utcnow().astimezone(ZoneInfo(zone)).date())
    labels = {k: str(v) for k, v in OUTCOMES.items()}
    title = _("Uses per day (%(zone)s), by outcome", zone=zone)
    today = _("%(day)s (today)", day=days[-1][5:])
    return _svg(charts.usage_per_day(title, _("No uses yet"), days, per_day, labels, today))


@blueprint.get("/charts/fees.svg")
@signed_in("operator", "auditor")
def chart_fees() -> Any:
    with db().session() as session:
        fees = queries.settled_fees_by_sector(session)
    in_yuan = {sector: float(Decimal(fen) / 100) for sector, fen in fees.items()}
    money = lambda yuan_: str(format_currency(Decimal(str(yuan_)), "CNY"))  # noqa: E731
    return _svg(charts.fees_by_sector(_("Settled fees per sector"), _("Nothing settled yet"), in_yuan, money))


@blueprint.get("/charts/index.svg")
@signed_in()
def chart_index() -> Any:
    with db().session() as session:
        points = settlement.index(session)
    return _svg(
        charts.price_index(_("Price index per sector (first period = 100)"), _("Nothing settled yet"), points)
    )
