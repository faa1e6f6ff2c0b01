"""The review console's pages (a blueprint under /review): sign in and out, the language switch,
the list of script jobs waiting for a reviewer, one job's review page, and the four decisions,
each a POST from a form with a CSRF token that calls connectors.script_review as the API does."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import DiffLexer, PythonLexer
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from connectors import script_review
from connectors.context import Connector
from connectors.models import Token
from node.console import LANGUAGES, safe_next
from node.console import language as set_language
from node.problems import Problem
from node.tokens import token_hash

ROLES = ("admin", "reviewer")
blueprint = Blueprint("review", __name__, template_folder="templates", static_folder="static")
STATES = {
    "mock_run": _l("running on the mock sample"),
    "review": _l("code waits for review"),
    "running": _l("running on the data"),
    "release": _l("output waits for release"),
    "released": _l("released"),
    "withheld": _l("withheld"),
    "rejected": _l("rejected"),
    "failed": _l("failed"),
    "denied": _l("denied"),
}
FORMATTER = HtmlFormatter(cssclass="code", nowrap=False)


def ctx() -> Connector:
    connector: Connector = current_app.extensions["tds"]
    return connector


@blueprint.before_request
def load_user() -> None:
    g.user = None
    hashed = session.get("token")
    if isinstance(hashed, str):
        with ctx().db.session() as db:
            row = db.get(Token, hashed)
        if row is None or row.revoked or row.role not in ROLES:
            session.clear()
        else:
            g.user = row.label or row.role
    if request.method == "POST":
        current_app.extensions["csrf"].protect()  # 400 without the form's token


@blueprint.app_template_global()
def reviewer() -> str | None:
    return g.get("user")


@blueprint.app_template_global()
def locale_code() -> str:
    return str(get_locale())


@blueprint.app_template_global()
def state_label(state: str) -> str:
    return str(STATES.get(state, state))


@blueprint.app_template_global()
def lang_links() -> list[tuple[str, str, bool]]:
    here = request.full_path.rstrip("?")
    chosen = request.cookies.get("lang") or request.accept_languages.best_match(LANGUAGES) or "en"
    return [(code, url_for("review.language", code=code, next=here), code == chosen) for code in LANGUAGES]


def signed_in(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        if g.user is None:
            if request.method == "GET":
                return redirect(url_for("review.login", next=request.full_path.rstrip("?")))
            abort(401)
        return view(*args, **kwargs)

    return checked


def _safe_next(target: str | None) -> str:
    return safe_next(target, "/review", url_for("review.queue"))


@blueprint.errorhandler(CSRFError)
def csrf_page(exc: CSRFError) -> Any:
    detail = _("The form was not sent from this console or has expired. Reload the page and try again.")
    return render_template("review/error.html", status=400, title=_("Form expired"), detail=detail), 400


@blueprint.errorhandler(HTTPException)
def http_page(exc: HTTPException) -> Any:
    titles = {401: _("Sign in first"), 404: _("Not found"), 405: _("Not allowed")}
    status = exc.code or 500
    return render_template(
        "review/error.html", status=status, title=titles.get(status, exc.name), detail=""
    ), status


@blueprint.errorhandler(Problem)
def problem_page(exc: Problem) -> Any:
    return render_template(
        "review/error.html", status=exc.status, title=_("Refused"), detail=exc.detail
    ), exc.status


# --- signing in ------------------------------------------------------------------------------
@blueprint.route("/login", methods=["GET", "POST"])
def login() -> Any:
    target = _safe_next(request.values.get("next"))
    if request.method == "POST":
        with ctx().db.session() as db:
            row = db.scalar(
                select(Token).where(Token.token_hash == token_hash(request.form.get("token", "").strip()))
            )
        if row is not None and not row.revoked and row.role in ROLES:
            session.clear()  # nothing from before signing in carries over
            session["token"] = row.token_hash
            return redirect(target)
        error = _("Unknown or revoked token. Ask this connector's administrator for a reviewer token.")
        return render_template("review/login.html", error=error, next=target), 401
    return render_template("review/login.html", error=None, next=target)


@blueprint.post("/logout")
def logout() -> Any:
    session.clear()
    return redirect(url_for("review.login"))


@blueprint.get("/lang/<code>")
def language(code: str) -> Any:
    if code not in LANGUAGES:
        abort(404)
    return set_language(code, _safe_next(request.args.get("next")), "/review")


@blueprint.get("/code.css")
def code_css() -> Response:
    """Pygments' colours for highlighted code and diffs (a style sheet, as the CSP wants)."""
    return Response(FORMATTER.get_style_defs(".code"), mimetype="text/css")


# --- the reviews -----------------------------------------------------------------------------
@blueprint.get("/")
@signed_in
def queue() -> Any:
    state = request.args.get("state") or None
    if state is not None and state not in STATES:
        abort(404)
    return render_template("review/queue.html", reviews=script_review.reviews(ctx(), state), state=state)


@blueprint.get("/<path:job_id>")
@signed_in
def show(job_id: str) -> Any:
    found = script_review.show(ctx(), job_id)
    code = Markup(highlight(found["code"], PythonLexer(), FORMATTER))
    diff = Markup(highlight(found["diff"], DiffLexer(), FORMATTER)) if found["diff"] else None
    return render_template("review/show.html", job=found, code=code, diff=diff)


DECISIONS: dict[str, Callable[..., Any]] = {
    "approve": lambda job, who, form: script_review.approve(
        ctx(), job, reviewer=who, runs=_runs(form.get("runs", "1")), note=form.get("note", "")
    ),
    "reject": lambda job, who, form: script_review.reject(
        ctx(), job, reviewer=who, note=form.get("note", "")
    ),
    "release": lambda job, who, form: script_review.release(
        ctx(), job, reviewer=who, note=form.get("note", "")
    ),
    "withhold": lambda job, who, form: script_review.withhold(
        ctx(), job, reviewer=who, note=form.get("note", "")
    ),
}


def _runs(text: str) -> int:
    if not text.strip().isdigit():
        from connectors.errors import Refused

        raise Refused(_("runs: expected a whole number, got %(text)s", text=text), status=400)
    return int(text)


@blueprint.post("/<path:job_id>/<decision>")
@signed_in
def decide(job_id: str, decision: str) -> Any:
    act = DECISIONS.get(decision)
    if act is None:
        abort(404)
    act(job_id, g.user, request.form)
    return redirect(url_for("review.show", job_id=job_id))
