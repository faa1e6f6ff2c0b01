"""The console's pages (a Flask blueprint under /console).

Reading pages answer GET; everything that changes state is a POST from a form carrying a CSRF
token, taken by the operator only (403 for anyone else, before anything is looked at), and
shown once more for confirmation before it is done and written to the log of operator actions.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable
from decimal import Decimal
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import format_currency, format_datetime, format_decimal, format_percent, get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from contracts.canonical import canonical_bytes
from contracts.documents import verify_document
from contracts.errors import SignatureError
from contracts.treehead import SPACE_SIGNER
from node.models import utcnow
from node.problems import Problem
from space import agreements, catalog, ledger, operator, registry, settlement
from space.console import charts, queries
from space.console.auth import User, current, sign_in
from space.errors import AlertingConflict, NotFound, Refused
from space.models import CatalogEntry, LateSignature, LedgerEntry, OperatorAction, Participant, Settlement

LANGUAGES = ["zh", "en"]
blueprint = Blueprint("console", __name__, template_folder="templates", static_folder="static")

OUTCOMES = {"succeeded": _l("succeeded"), "denied": _l("denied"), "failed": _l("failed")}
STATUSES = {
    "pending": _l("pending"),
    "admitted": _l("admitted"),
    "suspended": _l("suspended"),
    "published": _l("published"),
    "pending_review": _l("waiting for review"),
    "rejected": _l("rejected"),
    "FINALIZED": _l("in force"),
    "TERMINATED": _l("terminated"),
}
ROLES = {"operator": _l("operator"), "auditor": _l("auditor"), "participant": _l("participant")}
ACTIONS = {
    "admit": _l("admitted a participant"),
    "suspend": _l("suspended a participant"),
    "approve": _l("approved a catalog entry"),
    "reject": _l("refused a catalog entry"),
    "settle": _l("settled a period"),
    "terminate": _l("terminated an agreement"),
    "issue-token": _l("issued a token"),
}
FIELDS = {  # a usage record's fields (contracts/usage.py) as the record page names them
    "@type": _l("Type"),
    "currency": _l("Currency"),
    "id": _l("Record id"),
    "job": _l("Job"),
    "agreement": _l("Agreement"),
    "dataset": _l("Dataset"),
    "provider": _l("Provider"),
    "consumer": _l("Consumer"),
    "operation": _l("Operation"),
    "purpose": _l("Purpose"),
    "outcome": _l("Outcome"),
    "reason": _l("Reason"),
    "consumer_set_size": _l("Consumer's set size"),
    "provider_set_size": _l("Provider's set size"),
    "fee_fen": _l("Fee"),
    "started_at": _l("Started"),
    "finished_at": _l("Finished"),
}
OPERATIONS = (
    "psi.cardinality",
    "psi.intersection",
    "he.aggregate",
    "he.score",
)


# --- plumbing --------------------------------------------------------------------------------
def _db() -> Any:
    return current_app.extensions["tds"]["db"]


def _tds(name: str) -> Any:
    return current_app.extensions["tds"][name]


@blueprint.before_request
def load_user() -> None:
    g.user = current(_db())
    if request.method == "POST":
        current_app.extensions["csrf"].protect()  # 400 without the form's token


@blueprint.app_template_global()
def user() -> User | None:
    return g.get("user")


def signed_in(*roles: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The view needs a session; with ``roles``, one of them (403 for the others)."""

    def wrap(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            if g.user is None:
                if request.method == "GET":
                    return redirect(url_for("console.login", next=request.full_path.rstrip("?")))
                abort(401)
            if roles and g.user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return checked

    return wrap


def operator_only(view: Callable[..., Any]) -> Callable[..., Any]:
    return signed_in("operator")(view)


def _safe_next(target: str | None) -> str:
    """Only a path of this console: never a redirect to another site."""
    if target and target.startswith("/console") and not urlsplit(target).netloc and "\\" not in target:
        return target
    return url_for("console.overview")


@blueprint.errorhandler(Problem)
def problem_page(exc: Problem) -> Any:
    return render_template("error.html", status=exc.status, title=_("Refused"), detail=exc.detail), exc.status


@blueprint.errorhandler(CSRFError)
def csrf_page(exc: CSRFError) -> Any:
    detail = _("The form was not sent from this console or has expired. Reload the page and try again.")
    return render_template("error.html", status=400, title=_("Form expired"), detail=detail), 400


@blueprint.errorhandler(HTTPException)
def http_page(exc: HTTPException) -> Any:
    titles = {
        401: _("Sign in first"),
        403: _("Not allowed"),
        404: _("Not found"),
        405: _("Not allowed"),
    }
    details = {
        401: _("This needs a signed-in session."),
        403: _("Your role may not do this. Auditors read everything and change nothing."),
        404: _("There is no such page or record."),
    }
    status = exc.code or 500
    title = titles.get(status, exc.name)
    return render_template("error.html", status=status, title=title, detail=details.get(status, "")), status


# --- formatting ------------------------------------------------------------------------------
@blueprint.app_template_filter("yuan")
def yuan(fen: int | None) -> str:
    """Integer fen as yuan in the page's locale (¥1,234.56)."""
    if fen is None:
        return "—"
    return str(format_currency(Decimal(fen) / 100, "CNY"))


@blueprint.app_template_filter("when")
def when(value: dt.datetime | str | None) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return str(format_datetime(value, "medium"))


@blueprint.app_template_filter("number")
def number(value: int | float) -> str:
    return str(format_decimal(value))


@blueprint.app_template_filter("share")
def share(bp: int | None) -> str:
    return "—" if bp is None else str(format_percent(Decimal(bp) / 10000, "#,##0.##%"))


@blueprint.app_template_filter("outcome")
def outcome_label(value: str) -> str:
    return str(OUTCOMES.get(value, value))


@blueprint.app_template_filter("status")
def status_label(value: str) -> str:
    return str(STATUSES.get(value, value))


@blueprint.app_template_global()
def role_label(value: str) -> str:
    return str(ROLES.get(value, value))


@blueprint.app_template_global()
def locale_code() -> str:
    return str(get_locale())[:2]


@blueprint.app_template_global()
def lang_links() -> list[tuple[str, str, bool]]:
    here = request.full_path.rstrip("?")
    chosen = str(get_locale())
    return [
        (code, url_for("console.language", code=code, next=here), code == chosen[:2]) for code in LANGUAGES
    ]


@blueprint.app_template_global()
def page_url(**changes: Any) -> str:
    """This page's URL with some query arguments changed (None drops one)."""
    args: dict[str, Any] = {**(request.view_args or {}), **request.args.to_dict()}
    for key, value in changes.items():
        if value is None:
            args.pop(key, None)
        else:
            args[key] = str(value)
    return url_for(str(request.endpoint), **args)


# --- signing in ------------------------------------------------------------------------------
@blueprint.route("/login", methods=["GET", "POST"])
def login() -> Any:
    target = _safe_next(request.values.get("next"))
    if request.method == "POST":
        found = sign_in(_db(), request.form.get("token", ""))
        if found is not None:
            return redirect(target)
        error = _("Unknown or revoked token. Ask the operator for a token (tds space token).")
        return render_template("login.html", error=error, next=target), 401
    return render_template("login.html", error=None, next=target)


@blueprint.post("/logout")
def logout() -> Any:
    from flask import session

    session.clear()
    return redirect(url_for("console.login"))


@blueprint.get("/lang/<code>")
def language(code: str) -> Any:
    """Remember the reader's language in a cookie (a preference of this browser only)."""
    if code not in LANGUAGES:
        abort(404)
    response = redirect(_safe_next(request.args.get("next")))
    response.set_cookie(
        "lang",
        code,
        max_age=365 * 86400,
        path="/console",
        httponly=True,
        samesite="Strict",
        secure=request.is_secure,
    )
    return response


# --- overview --------------------------------------------------------------------------------
@blueprint.get("/")
@signed_in()
def overview() -> Any:
    with _db().session() as session:
        figures = queries.overview(session)
        head = figures["head"]
        head_view = ledger.head_view(head) if head is not None else None
        own = None
        if not g.user.reads_all:
            latest = queries.log_page(session, queries.LogFilter(participant=g.user.participant), None, 10)
            own = [_row(e) for e in latest.rows]
    return render_template(
        "overview.html",
        figures=figures,
        head=head_view,
        head_time=head.signed["document"]["timestamp"] if head is not None else None,
        own=own,
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
    with _db().session() as session:
        days, per_day = queries.usage_per_day(session, utcnow().date())
    labels = {k: str(v) for k, v in OUTCOMES.items()}
    title = _("Uses per day (UTC), by outcome")
    return _svg(charts.usage_per_day(title, _("No uses yet"), days, per_day, labels))


@blueprint.get("/charts/fees.svg")
@signed_in("operator", "auditor")
def chart_fees() -> Any:
    with _db().session() as session:
        fees = queries.settled_fees_by_sector(session)
    in_yuan = {sector: float(Decimal(fen) / 100) for sector, fen in fees.items()}
    money = lambda yuan_: str(format_currency(Decimal(str(yuan_)), "CNY"))  # noqa: E731
    return _svg(charts.fees_by_sector(_("Settled fees per sector"), _("Nothing settled yet"), in_yuan, money))


@blueprint.get("/charts/index.svg")
@signed_in()
def chart_index() -> Any:
    with _db().session() as session:
        points = settlement.index(session)
    return _svg(
        charts.price_index(_("Price index per sector (first period = 100)"), _("Nothing settled yet"), points)
    )


# --- the usage log ---------------------------------------------------------------------------
def _moment(name: str) -> dt.datetime | None:
    text = request.args.get(name, "").strip()
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise Refused(
            _("%(name)s: expected a date and time like 2026-11-27T08:00, got %(text)s", name=name, text=text),
            status=400,
        ) from None
    if moment.tzinfo is None:  # a time typed into the form is in the console's time zone
        from zoneinfo import ZoneInfo

        moment = moment.replace(tzinfo=ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"]))
    return moment.astimezone(dt.UTC)


def _int_arg(name: str) -> int | None:
    text = request.args.get(name, "").strip()
    if not text:
        return None
    if not text.isdigit():
        raise Refused(_("%(name)s: expected a whole number, got %(text)s", name=name, text=text), status=400)
    return int(text)


def _row(entry: LedgerEntry) -> dict[str, Any]:
    record = entry.signed["document"]
    return {
        "seq": entry.seq,
        "record_id": entry.record_id,
        "appended_at": entry.appended_at,
        "finished_at": record.get("finished_at"),
        "provider": entry.provider_id,
        "consumer": entry.consumer_id,
        "dataset": entry.dataset_id,
        "agreement": entry.agreement_id,
        "operation": entry.operation,
        "outcome": entry.outcome,
        "reason": record.get("reason", ""),
        "fee_fen": entry.fee_fen,
    }


@blueprint.get("/log")
@signed_in()
def log() -> Any:
    outcome = request.args.get("outcome", "")
    if outcome and outcome not in OUTCOMES:
        raise Refused(
            _("outcome: expected one of %(allowed)s, got %(got)s", allowed=", ".join(OUTCOMES), got=outcome),
            status=400,
        )
    participant = request.args.get("participant", "").strip()
    if not g.user.reads_all:
        participant = g.user.participant or ""
    chosen = queries.LogFilter(
        participant=participant,
        dataset=request.args.get("dataset", "").strip(),
        agreement=request.args.get("agreement", "").strip(),
        operation=request.args.get("operation", "").strip(),
        outcome=outcome,
        since=_moment("since"),
        until=_moment("until"),
    )
    before = _int_arg("before")
    with _db().session() as session:
        page = queries.log_page(session, chosen, before)
        size = ledger.head(session).size
    return render_template(
        "log.html",
        rows=[_row(e) for e in page.rows],
        following=page.following,
        searched_to=page.searched_to,
        before=before,
        chosen=chosen,
        size=size,
        outcomes=OUTCOMES,
        operations=OPERATIONS,
        since=request.args.get("since", ""),
        until=request.args.get("until", ""),
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@blueprint.get("/log/<int:seq>")
@signed_in()
def record(seq: int) -> Any:
    with _db().session() as session:
        entry = session.get(LedgerEntry, seq)
        if entry is None or not g.user.sees(entry.provider_id, entry.consumer_id):
            raise NotFound(_("no record at index %(seq)s of the log", seq=seq))
        signed = entry.signed
        keys = {
            p.id: p.public_key
            for p in session.scalars(
                select(Participant).where(Participant.id.in_(list(signed["signatures"])))
            )
        }
        late = {
            row.signer: row.signature
            for row in session.scalars(
                select(LateSignature).where(LateSignature.record_id == entry.record_id)
            )
        }
        head = ledger.latest_head(session)
        proof = None
        if head is not None and head.size > seq:
            proof = {
                "record_id": entry.record_id,
                "leaf": _b64(canonical_bytes(signed)),
                "leaf_hash": entry.leaf_hash,
                "index": seq,
                "proof": ledger.inclusion_proof(session, seq, head.size),
                "head": _b64(canonical_bytes(head.signed["document"])),
                "head_signature": head.signed["signatures"][SPACE_SIGNER],
                "space_key": _tds("key").public_key,
            }
        head_doc = head.signed["document"] if head is not None else None
    signatures = []
    for signer, value in [*signed["signatures"].items(), *late.items()]:
        one = {"document": signed["document"], "signatures": {signer: value}}
        try:
            verify_document(one, [signer], lambda s: keys.get(s) or "")
            ok = True
        except SignatureError:
            ok = False
        signatures.append(
            {"signer": signer, "value": value, "key": keys.get(signer, ""), "ok": ok, "late": signer in late}
        )
    return render_template(
        "record.html",
        entry=_row(entry),
        record=signed["document"],
        labels={k: str(v) for k, v in FIELDS.items()},
        signatures=signatures,
        proof=proof,
        head=head_doc,
    )


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
    with _db().session() as session:
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
    with _db().session() as session:
        found = agreements.get(session, agreement_id)
        if not g.user.sees(found.provider_id, found.consumer_id):
            raise NotFound(_("no agreement %(id)s", id=agreement_id))
        document = found.signed["document"]
        page = queries.log_page(session, queries.LogFilter(agreement=agreement_id), _int_arg("before"))
        entry = session.get(CatalogEntry, found.dataset_id)
    return render_template(
        "agreement.html",
        agreement=found,
        document=document,
        price=_price_text(document.get("tds:price", {})),
        until=_valid_until(document),
        shares=document.get("tds:revenueShare", []),
        decisions=[_row(e) for e in page.rows],
        following=page.following,
        dataset=entry,
    )


@blueprint.get("/catalog")
@signed_in()
def catalog_list() -> Any:
    status = request.args.get("status", "")
    with _db().session() as session:
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
    with _db().session() as session:
        periods = [
            {"period": s.period, "settled_at": s.settled_at, "summary": json.loads(s.summary)["document"]}
            for s in session.scalars(select(Settlement).order_by(Settlement.period.desc()))
        ]
        index = settlement.index(session)
    return render_template("settlements.html", periods=periods, index=index)


@blueprint.get("/settlements/<period>")
@signed_in()
def settlement_page(period: str) -> Any:
    with _db().session() as session:
        row = settlement.get(session, period)
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
    with _db().session() as session:
        found = settlement.statement(session, period, participant)
        document = json.loads(found.signed_json)["document"]
    return render_template("statement.html", period=period, participant=participant, statement=document)


@blueprint.get("/settlements/<period>/<participant>.<fmt>")
@signed_in()
def statement_download(period: str, participant: str, fmt: str) -> Any:
    if fmt not in ("json", "csv"):
        abort(404)
    if not g.user.sees(participant):
        raise NotFound(_("no statement of %(who)s for %(period)s", who=participant, period=period))
    with _db().session() as session:
        found = settlement.statement(session, period, participant)
        body, mimetype = (
            (found.csv, "text/csv; charset=utf-8")
            if fmt == "csv"
            else (found.signed_json, "application/json")
        )
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="statement-{period}-{participant}.{fmt}"'
    return response


# --- the operator's work queues --------------------------------------------------------------
def _closed_unsettled(session: Any, now: dt.datetime) -> list[str]:
    """The last twelve closed months that are not settled yet, newest first."""
    settled = set(session.scalars(select(Settlement.period)))
    months, year, month = [], now.year, now.month
    for _i in range(12):
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
        period = f"{year:04d}-{month:02d}"
        if period not in settled:
            months.append(period)
    return months


@blueprint.get("/queues")
@signed_in("operator", "auditor")
def queues() -> Any:
    with _db().session() as session:
        people = list(session.scalars(select(Participant).order_by(Participant.registered_at)))
        reviews = [catalog.entry_view(session, e) for e in catalog.pending_reviews(session)]
        periods = _closed_unsettled(session, utcnow())
    return render_template(
        "queues.html",
        pending=[p for p in people if p.status != "admitted"],
        admitted=[p for p in people if p.status == "admitted"],
        reviews=reviews,
        periods=periods,
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
    with _db().session() as session:
        found = registry.get(session, pid)
        name = found.legal_name
    if request.form.get("confirmed") != "yes":
        question = (
            _("Admit %(name)s (%(id)s) and issue its membership credential?", name=name, id=pid)
            if decision == "admit"
            else _("Suspend %(name)s (%(id)s)? Its signed requests will be refused.", name=name, id=pid)
        )
        return _confirm(question, {})
    settings = _tds("settings")
    with _db().transaction() as session:
        if decision == "admit":
            operator.admit(session, g.user.actor, pid, _tds("key"), utcnow(), settings.credential_days)
        else:
            operator.suspend(session, g.user.actor, pid, utcnow())
    return _done(_("%(id)s admitted.", id=pid) if decision == "admit" else _("%(id)s suspended.", id=pid))


@blueprint.post("/reviews/<path:entry_id>/<decision>")
@operator_only
def review_decision(entry_id: str, decision: str) -> Any:
    if decision not in ("approve", "reject"):
        abort(404)
    text = request.form.get("note", "").strip()[:2000]
    with _db().session() as session:
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
    with _db().transaction() as session:
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
    settings = _tds("settings")
    database = _db()
    try:
        with database.write_lock, database.transaction() as session:
            operator.settle(session, g.user.actor, period, _tds("key"), settings.commission_bp, utcnow())
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
    with _db().session() as session:
        rows, following = queries.actions_page(session, _int_arg("before"))
        items = [{**action_view(a), "at": a.at, "what": str(ACTIONS.get(a.action, a.action))} for a in rows]
    return render_template("actions.html", items=items, following=following)
