"""The console's pages (a Flask blueprint under /console): the blueprint, its labels, who is
signed in and what they may do, error pages, signing in and out, the language switch.

Reading pages answer GET; everything that changes state is a POST from a form carrying a CSRF
token, taken by the operator only (403 for anyone else, before anything is looked at), and
shown once more for confirmation before it is done and written to the log of operator actions.
The pages themselves: overview.py, usage_log.py, market.py (agreements, catalog, settlement),
work.py (the operator's queues and actions); formatting.py has the template filters.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from node.console import LANGUAGES, safe_next
from node.console import language as set_language
from node.problems import Problem
from policies import operations
from space.console.auth import User, current, sign_in
from space.errors import Refused

blueprint = Blueprint("console", __name__, template_folder="templates", static_folder="static")

OUTCOMES = {
    "succeeded": _l("succeeded"),
    "withheld": _l("withheld"),
    "denied": _l("denied"),
    "failed": _l("failed"),
}
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
SHARE_ROLES = {  # a statement line's role: the beneficiaries (contracts.settlement) and the payers
    "provider": _l("provider"),
    "co-contributor": _l("co-contributor"),
    "service-provider": _l("service provider"),
    "consumer": _l("consumer"),
    "operator": _l("operator"),
}
GRADES = {  # GB/T 43697-2024 (space.catalog.CLASSIFICATIONS)
    "general": _l("general data"),
    "important": _l("important data"),
    "core": _l("core data"),
}
PI_LEVELS = {  # PIPL art. 28 (space.catalog.PI_LEVELS)
    "none": _l("no personal information"),
    "general": _l("personal information"),
    "sensitive": _l("sensitive personal information"),
}
ACTIONS = {
    "admit": _l("admitted a participant"),
    "suspend": _l("suspended a participant"),
    "approve": _l("approved a catalog entry"),
    "reject": _l("refused a catalog entry"),
    "settle": _l("settled a period"),
    "terminate": _l("terminated an agreement"),
    "issue-token": _l("issued a token"),
    "revoke-token": _l("revoked a token"),
    "renew": _l("renewed a membership credential"),
}
# policies.reasons' templates by id, as the console words them: a reason in a record is the
# English its parties signed; the page shows it in the reader's language with the same fields
REASON_TEMPLATES = {
    "completed": _l("completed"),
    "interrupted-provider": _l("the provider's connector stopped during the job; the use is given back"),
    "withheld-by-consumer": _l(
        "result withheld by the consumer's connector: the agreement's minimum result size is not met"
    ),
    "unknown-agreement": _l("unknown agreement %(agreement)s"),
    "not-consumer": _l("%(caller)s is not the consumer of agreement %(agreement)s"),
    "terminated": _l("agreement %(agreement)s was terminated: %(reason)s"),
    "unsigned": _l("agreement %(agreement)s is in force but the provider holds no signed agreement for it"),
    "not-finalized": _l("agreement %(agreement)s is %(state)s, not in force"),
    "not-recorded": _l("agreement %(agreement)s is not recorded at the space"),
    "unconfirmed": _l(
        "the space could not confirm that agreement %(agreement)s is in force (%(detail)s); "
        "jobs under it are refused until the space answers"
    ),
    "operation-outside": _l("operation %(operation)s is not in the agreement (it permits %(operations)s)"),
    "dataset-gone": _l("dataset %(dataset)s is no longer held by its provider"),
    "not-permitted": _l("%(action)s not permitted: %(failed)s"),
    "no-permission": _l("no permission for %(action)s; the policy permits %(actions)s"),
    "prohibited": _l("%(action)s prohibited by %(label)s: %(matched)s"),
    "permitted": _l("%(action)s permitted by %(label)s"),
    "violated": _l("%(constraint)s: %(left)s is %(value)s"),
    "unstated": _l("%(constraint)s: the request does not state %(left)s"),
    "on-result": _l("%(constraint)s: checked on the result"),
    "withheld": _l("result withheld: %(unmet)s not met (the result is not told)"),
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
OPERATIONS = operations.names("psi", "he", "script")  # the filter's choices: what connectors run


# --- plumbing --------------------------------------------------------------------------------
def db() -> Any:
    return current_app.extensions["tds"]["db"]


def tds(name: str) -> Any:
    return current_app.extensions["tds"][name]


@blueprint.before_request
def load_user() -> None:
    g.user = current(db())
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
    return safe_next(target, "/console", url_for("console.overview"))


@blueprint.errorhandler(Problem)
def problem_page(exc: Problem) -> Any:
    return render_template("error.html", status=exc.status, title=_("Refused"), detail=exc.detail), exc.status


@blueprint.errorhandler(CSRFError)
def csrf_page(exc: CSRFError) -> Any:
    detail = _("The form was not sent from this console or has expired. Reload the page and try again.")
    return render_template("error.html", status=400, title=_("Form expired"), detail=detail), 400


def _forbidden_detail() -> str:
    """Why the signed-in role may not do this, in that role's own terms."""
    signed = g.get("user")
    role = getattr(signed, "role", None)
    if role == "auditor":
        return _("Your role may not do this. Auditors read everything and change nothing.")
    if role == "participant":
        return _(
            "Your role may not do this. A participant reads its own records, agreements and statements; "
            "only the operator changes the space."
        )
    return _("Your role may not do this.")


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
        403: _forbidden_detail(),
        404: _("There is no such page or record."),
    }
    status = exc.code or 500
    title = titles.get(status, exc.name)
    return render_template("error.html", status=status, title=title, detail=details.get(status, "")), status


def int_arg(name: str) -> int | None:
    text = request.args.get(name, "").strip()
    if not text:
        return None
    if not text.isdigit():
        raise Refused(_("%(name)s: expected a whole number, got %(text)s", name=name, text=text), status=400)
    return int(text)


# --- signing in ------------------------------------------------------------------------------
@blueprint.route("/login", methods=["GET", "POST"])
def login() -> Any:
    target = _safe_next(request.values.get("next"))
    if request.method == "POST":
        found = sign_in(db(), request.form.get("token", ""))
        if found is not None:
            return redirect(target)
        error = _("Unknown or revoked token. Ask the operator for a token (tds space token).")
        return render_template("login.html", error=error, next=target), 401
    return render_template("login.html", error=None, next=target)


@blueprint.post("/logout")
def logout() -> Any:
    session.clear()
    return redirect(url_for("console.login"))


@blueprint.get("/lang/<code>")
def language(code: str) -> Any:
    if code not in LANGUAGES:
        abort(404)
    return set_language(code, _safe_next(request.args.get("next")), "/console")
