"""Template filters and globals: amounts, dates and numbers per locale, labels, links."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from flask import (
    current_app,
    g,
    request,
    url_for,
)
from flask_babel import format_currency, format_datetime, format_decimal, format_percent, get_locale
from markupsafe import Markup, escape
from sqlalchemy import select

from policies import reasons
from space.console.views import (
    GRADES,
    LANGUAGES,
    OUTCOMES,
    PI_LEVELS,
    REASON_TEMPLATES,
    ROLES,
    SHARE_ROLES,
    STATUSES,
    blueprint,
    db,
)
from space.models import CatalogEntry


# --- formatting ------------------------------------------------------------------------------
@blueprint.app_template_filter("yuan")
def yuan(fen: int | None) -> str:
    """Integer fen as yuan in the page's locale (¥1,234.56)."""
    if fen is None:
        return "—"
    return str(format_currency(Decimal(fen) / 100, "CNY"))


@blueprint.app_template_filter("when")
def when(value: dt.datetime | str | None) -> str:
    """A time in the page's zone and locale; a value in the log that is not a time is shown as
    it is (the log keeps what was appended, however it came there)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return str(value)
    if not isinstance(value, dt.datetime):
        return str(value)
    return str(format_datetime(value, "medium"))


# ODRL's operators as people read them in a rule (the policy's own words stay in --json and the
# log); isPartOf is hierarchical (CN-HA is part of CN), hence ⊑ rather than ⊆
OPERATOR_SIGNS = {"eq": "=", "neq": "≠", "lt": "<", "lteq": "≤", "gt": ">", "gteq": "≥",
                  "isAnyOf": "∈", "isNoneOf": "∉", "isPartOf": "⊑"}  # fmt: skip


@blueprint.app_template_filter("constraint")
def constraint_text(constraint: dict[str, Any]) -> str:
    """``count ≤ 10``, ``purpose ∈ {risk-control}``, a time in the console's zone: one ODRL
    constraint of an agreement (typed literals as {"@value", "@type"} are shown by value)."""
    left, operator = str(constraint.get("leftOperand")), str(constraint.get("operator"))
    return f"{left} {OPERATOR_SIGNS.get(operator, operator)} {_operand(left, constraint.get('rightOperand'))}"


POLICY_WORDS = re.compile(r"(?<=\w )(" + "|".join(OPERATOR_SIGNS) + r")(?= )")


@blueprint.app_template_filter("reason")
def reason_text(reason: str | None) -> str:
    """A record's reason for people, in the page's language: from its template (policies.reasons)
    with its operators as signs (``count lteq 1: count is 2`` → ``count ≤ 1: count is 2``)."""
    if not reason:
        return "—"
    return _worded(reason)


def _signs(text: str) -> str:
    return POLICY_WORDS.sub(lambda m: OPERATOR_SIGNS[m[1]], text)


# the fields of a reason that hold a list of constraint reasons, by template (policies.reasons)
NESTED = {"not-permitted": "failed", "prohibited": "matched", "withheld": "unmet"}


def _worded(text: str) -> str:
    """A policy's reason in the page's language (its template's id and fields, policies.reasons),
    its operators as signs; a reason from no template keeps its words, with signs."""
    found = reasons.parse(text)
    if found is None:
        return _signs(text)
    name, fields = found
    if name in NESTED:
        parts = fields[NESTED[name]].split(reasons.SEPARATOR)
        fields[NESTED[name]] = reasons.SEPARATOR.join(_worded(part) for part in parts)
    if "constraint" in fields:
        fields["constraint"] = _signs(fields["constraint"])
    return str(REASON_TEMPLATES[name] % fields)


def _operand(left: str, right: Any) -> str:
    if isinstance(right, dict) and "@value" in right:
        right = right["@value"]
    if isinstance(right, list):
        return "{" + ", ".join(_operand(left, item) for item in right) + "}"
    if left == "dateTime" and isinstance(right, str):
        return when(right)
    if isinstance(right, bool):
        return "true" if right else "false"
    return number(right) if isinstance(right, int | float) else str(right)


@blueprint.app_template_filter("number")
def number(value: int | float | str | None) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "—" if value is None else str(value)
    return str(format_decimal(value))


@blueprint.app_template_filter("share")
def share(bp: int | None) -> str:
    return "—" if bp is None else str(format_percent(Decimal(bp) / 10000, "#,##0.##%"))


# the filters that name a stored value in the page's language, each by its table (views)
LABELS = {
    "outcome": OUTCOMES,
    "status": STATUSES,
    "share_role": SHARE_ROLES,
    "grade": GRADES,
    "pi_level": PI_LEVELS,
}


def _labeller(table: dict[str, Any]) -> Any:
    def label(value: str) -> str:
        return str(table.get(value, value))

    return label


for _name, _table in LABELS.items():
    blueprint.add_app_template_filter(_labeller(_table), _name)


@blueprint.app_template_global()
def role_label(value: str) -> str:
    return str(ROLES.get(value, value))


@blueprint.app_template_global()
def settlement_zone() -> str:
    """Whose calendar months the settlement periods are (space.periods)."""
    return str(current_app.extensions["tds"]["settings"].settlement_zone)


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


@blueprint.app_template_global()
def dataset_label(dataset_id: str | None) -> Markup:
    """A dataset as people know it, by its catalog title, with its id on hover and a link to its
    entry in the catalog; the titles of one page are read in one query per new id."""
    if not dataset_id:
        return Markup("—")
    titles: dict[str, str | None] = g.setdefault("dataset_titles", {})
    if dataset_id not in titles:
        with db().session() as session:
            titles[dataset_id] = session.scalar(
                select(CatalogEntry.title).where(CatalogEntry.id == dataset_id)
            )
    title = titles[dataset_id]
    link = url_for("console.catalog_list") + "#" + dataset_id
    shown = escape(title) if title else escape(dataset_id)
    return Markup(f'<a class="dataset" href="{escape(link)}" title="{escape(dataset_id)}">{shown}</a>')
