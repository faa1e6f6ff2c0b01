"""The web console: the operator's work queues and the auditors' view of the log, settlement and
agreements, in Simplified Chinese and English, served by the space itself.

Server-rendered Jinja pages (progressive enhancement; the one script re-checks inclusion proofs
in the browser), a session cookie from signing in with a token the operator issued, CSRF tokens
on every form, and a Content-Security-Policy that allows nothing from elsewhere and no inline
script. Everything a page loads comes from the space.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface
from flask_babel import Babel
from flask_wtf.csrf import CSRFProtect

from contracts.keys import SigningKey
from node.config import NodeConfig
from node.db import Database
from space.console import formatting, market, overview, usage_log, work  # noqa: F401  (their routes)
from space.console.views import LANGUAGES, blueprint
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


class SessionCookies(SecureCookieSessionInterface):
    """Secure cookies whenever the request came over TLS (directly or via a proxy that says so)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(request.is_secure)


def session_secret(key: SigningKey) -> bytes:
    """A secret only the space can compute and that survives restarts without a file of its own:
    Ed25519 signatures are deterministic (RFC 8032 §5.1.6), so the signature of a fixed label is."""
    return hashlib.sha256(key.sign(b"tds console session cookies v1")).digest()


def locale() -> str:
    chosen = request.cookies.get("lang")
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(LANGUAGES) or "en"


def install(
    app: Flask, database: Database, settings: SpaceSettings, key: SigningKey, config: NodeConfig
) -> None:
    app.secret_key = session_secret(key)
    app.session_interface = SessionCookies()
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
    Babel(app, locale_selector=locale)
    CSRFProtect(app)
    app.extensions["tds"].update(settings=settings, key=key)
    app.register_blueprint(blueprint, url_prefix="/console")

    @app.after_request
    def headers(response: Any) -> Any:
        if request.path.startswith("/console"):
            chart = response.mimetype == "image/svg+xml"
            response.headers["Content-Security-Policy"] = CHART_POLICY if chart else PAGE_POLICY
            response.headers["X-Content-Type-Options"] = "nosniff"
            response.headers["Referrer-Policy"] = "same-origin"
            response.headers.setdefault("Cache-Control", "no-store")
        return response
