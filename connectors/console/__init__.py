"""The review console: a provider's reviewers read consumers' scripts and decide on them in a
browser, served by the connector at ``/review/`` (issue 14, step 4).

The space console's stack and security (space/console): server-rendered Jinja pages in
Simplified Chinese and English (Flask-Babel), a session cookie from signing in with one of this
connector's admin or reviewer tokens (``tds connector token --role reviewer``), looked up again
on every request; CSRF tokens on every form; a Content-Security-Policy that allows nothing from
elsewhere and no script at all. Code and diffs are highlighted on the server with Pygments.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask_babel import Babel
from flask_wtf.csrf import CSRFProtect

from connectors.console.views import blueprint
from connectors.context import Connector
from node import console as shared

PAGE_POLICY = (
    "default-src 'none'; script-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def install(app: Flask, ctx: Connector) -> None:
    app.secret_key = shared.session_secret(ctx.key, b"tds review console session cookies v1")
    app.session_interface = shared.SessionCookies()
    app.config.update(
        SESSION_COOKIE_NAME="tds_review",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_PATH="/review",
        WTF_CSRF_CHECK_DEFAULT=False,  # only the console's forms; the API uses tokens or signatures
        WTF_CSRF_TIME_LIMIT=None,
        BABEL_DEFAULT_TIMEZONE="Asia/Shanghai",
        BABEL_TRANSLATION_DIRECTORIES=str(Path(__file__).parent / "translations"),
    )
    Babel(app, locale_selector=shared.locale)
    CSRFProtect(app)
    app.register_blueprint(blueprint, url_prefix="/review")

    shared.secure_pages(app, "/review", lambda _response: PAGE_POLICY)
