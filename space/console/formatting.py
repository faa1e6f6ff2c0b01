"""Template filters and globals: amounts, dates and numbers per locale, labels, links."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from flask import (
    request,
    url_for,
)
from flask_babel import format_currency, format_datetime, format_decimal, format_percent, get_locale

from space.console.views import (
    LANGUAGES,
    OUTCOMES,
    ROLES,
    STATUSES,
    blueprint,
)


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


@blueprint.app_template_filter("number")
def number(value: int | float | str | None) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "—" if value is None else str(value)
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
