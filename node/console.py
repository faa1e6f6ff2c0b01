"""What both web consoles share — the space's (space/console) and the connectors' review console
(connectors/console): session cookies that are Secure over TLS, a session secret derived from
the node's key, the reader's language, redirects that stay inside the console, and the security
headers of every page."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, redirect, request
from flask.sessions import SecureCookieSessionInterface

from contracts.keys import SigningKey

LANGUAGES = ["zh", "en"]
YEAR_S = 365 * 86400


class SessionCookies(SecureCookieSessionInterface):
    """Secure cookies whenever the request came over TLS (directly or via a proxy that says so)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(request.is_secure)


def session_secret(key: SigningKey, label: bytes) -> bytes:
    """A secret only the node can compute and that survives restarts without a file of its own:
    Ed25519 signatures are deterministic (RFC 8032 §5.1.6), so the signature of a fixed label is."""
    return hashlib.sha256(key.sign(label)).digest()


def locale() -> str:
    """The language the reader chose (a cookie), else the browser's best match, else English."""
    chosen = request.cookies.get("lang")
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(LANGUAGES) or "en"


def safe_next(target: str | None, prefix: str, default: str) -> str:
    """Only a path of this console: never a redirect to another site."""
    if target and target.startswith(prefix) and not urlsplit(target).netloc and "\\" not in target:
        return target
    return default


def language(code: str, target: str, prefix: str) -> Any:
    """Remember the reader's language in a cookie (a preference of this browser only)."""
    response = redirect(target)
    response.set_cookie(
        "lang", code, max_age=YEAR_S, path=prefix, httponly=True, samesite="Strict", secure=request.is_secure
    )
    return response


def secure_pages(app: Flask, prefix: str, policy: Callable[[Any], str]) -> None:
    """Every response under ``prefix`` gets its Content-Security-Policy and no caching, sniffing or
    cross-site referrer."""

    @app.after_request
    def headers(response: Any) -> Any:
        if request.path.startswith(prefix):
            response.headers["Content-Security-Policy"] = policy(response)
            response.headers["X-Content-Type-Options"] = "nosniff"
            response.headers["Referrer-Policy"] = "same-origin"
            response.headers.setdefault("Cache-Control", "no-store")
        return response
