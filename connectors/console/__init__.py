"""The review console: a provider's reviewers read consumers' scripts and decide on them in a
browser, served by the connector at ``/review/`` (issue 14, step 4).

The space console's stack and security (space/console): server-rendered Jinja pages in
Simplified Chinese and English (Flask-Babel), a session cookie from signing in with one of this
connector's admin or reviewer tokens (``tds connector token --role reviewer``), looked up again
on every request; CSRF tokens on every form; a Content-Security-Policy that allows nothing from
elsewhere and no script at all. Code and diffs are highlighted on the server with Pygments.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface
from flask_babel import Babel
from flask_wtf.csrf import CSRFProtect

from connectors.console.views import LANGUAGES, blueprint
from connectors.context import Connector

PAGE_POLICY = (
    "default-src 'none'; script-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


class SessionCookies(SecureCookieSessionInterface):
    """Secure cookies whenever the request came over TLS (directly or via a proxy that says so)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(request.is_secure)


def locale() -> str:
    chosen = request.cookies.get("lang")
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(LANGUAGES) or "en"


def install(app: Flask, ctx: Connector) -> None:
    # Ed25519 signatures are deterministic (RFC 8032 §5.1.6): a secret only this connector can
    # compute, which survives restarts without a file of its own
    app.secret_key = hashlib.sha256(ctx.key.sign(b"tds review console session cookies v1")).digest()
    app.session_interface = SessionCookies()
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
    Babel(app, locale_selector=locale)
    CSRFProtect(app)
    app.register_blueprint(blueprint, url_prefix="/review")

    @app.after_request
    def headers(response: Any) -> Any:
        if request.path.startswith("/review"):
            response.headers["Content-Security-Policy"] = PAGE_POLICY
            response.headers["X-Content-Type-Options"] = "nosniff"
            response.headers["Referrer-Policy"] = "same-origin"
            response.headers.setdefault("Cache-Control", "no-store")
        return response
