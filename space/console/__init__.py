"""The web console: the operator's work queues and the auditors' view of the log, settlement and
agreements, in Simplified Chinese and English, served by the space itself.

Server-rendered Jinja pages (progressive enhancement; the one script re-checks inclusion proofs
in the browser), a session cookie from signing in with a token the operator issued, CSRF tokens
on every form, and a Content-Security-Policy that allows nothing from elsewhere and no inline
script. Everything a page loads comes from the space.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask_babel import Babel
from flask_wtf.csrf import CSRFProtect

from contracts.keys import SigningKey
from node import console as shared
from node.config import NodeConfig
from node.db import Database
from space.console import formatting, market, overview, usage_log, work  # noqa: F401  (their routes)
from space.console.views import blueprint
from space.console.work import action_view
from space.settings import SpaceSettings

__all__ = ["action_view", "install"]

PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# charts are SVG files shown through <img>: pygal styles them with an inline <style>, and an
# image runs no script whatever it contains
CHART_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"


def session_secret(key: SigningKey) -> bytes:
    return shared.session_secret(key, b"tds console session cookies v1")


def install(
    app: Flask, database: Database, settings: SpaceSettings, key: SigningKey, config: NodeConfig
) -> None:
    app.secret_key = session_secret(key)
    app.session_interface = shared.SessionCookies()
    app.config.update(
        SESSION_COOKIE_NAME="tds_console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_PATH="/console",
        WTF_CSRF_CHECK_DEFAULT=False,  # only the console's forms; the API is signed or uses bearer tokens
        WTF_CSRF_TIME_LIMIT=None,  # valid as long as the session: a form left open still works
        BABEL_DEFAULT_TIMEZONE=settings.console_timezone,
        BABEL_TRANSLATION_DIRECTORIES=str(Path(__file__).parent / "translations"),
    )
    Babel(app, locale_selector=shared.locale)
    CSRFProtect(app)
    app.extensions["tds"].update(settings=settings, key=key)
    app.register_blueprint(blueprint, url_prefix="/console")

    # charts are SVG images, styled by pygal's inline <style>
    shared.secure_pages(
        app,
        "/console",
        lambda response: CHART_POLICY if response.mimetype == "image/svg+xml" else PAGE_POLICY,
    )
