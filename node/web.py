"""Small Flask helpers both node kinds use: JSON bodies, bearer tokens, serving."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask, request
from sqlalchemy import select

from node import problems, tokens
from node.bodies import B, parse
from node.db import Database
from node.problems import Problem

MAX_JSON = 8 << 20  # bytes: largest JSON body accepted


def base_app(
    name: str,
    max_body: int,
    *,
    bulk: Mapping[str, int] | None = None,
    signed: Callable[[str], bool] = lambda path: False,
) -> Flask:
    """A node's Flask app. ``max_body`` is the largest body any route takes (waitress refuses a
    larger Content-Length before reading a byte); each route takes at most ``MAX_JSON`` unless
    ``bulk`` names its endpoint with a larger cap. A request to a path that ``signed`` says must
    be signed is refused without its signature headers — both before the body is read."""
    app = Flask(name)
    app.config["MAX_CONTENT_LENGTH"] = max_body
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    problems.install(app)
    caps = dict(bulk or {})

    @app.before_request
    def refuse_before_reading() -> None:
        cap = min(caps.get(request.endpoint or "", MAX_JSON), max_body)
        length = request.content_length
        if length is not None and length > cap:
            raise Problem(
                413,
                "Body too large",
                f"{request.method} {request.path} takes at most {cap} bytes, got {length}",
            )
        headers = request.headers
        if signed(request.path) and ("Signature" not in headers or "Signature-Input" not in headers):
            raise Problem(
                401,
                "Signature refused",
                "missing Signature and Signature-Input headers (RFC 9421)",
                kind="signature",
            )

    return app


def body_as(model: type[B], optional: bool = False) -> B:
    """The request's JSON body as a ``model`` (node.bodies), or a 400 naming every wrong field;
    with ``optional``, a request without a body gets the model's defaults."""
    if optional and not request.get_data(cache=True):
        return model()
    return parse(model, json_body())


def json_body(required: tuple[str, ...] = ()) -> dict[str, Any]:
    if len(request.get_data(cache=True)) > MAX_JSON:
        raise Problem(413, "Body too large", f"JSON bodies are limited to {MAX_JSON} bytes")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Problem(400, "Bad request", "expected a JSON object body")
    missing = [key for key in required if key not in body]
    if missing:
        raise Problem(400, "Bad request", f"missing fields {missing}")
    return body


def token_of(db: Database, model: Any, roles: tuple[str, ...]) -> Any:
    """The row of the request's bearer token; 401 without a valid one, 403 for a wrong role."""
    token = tokens.bearer(request.headers.get("Authorization"))
    if token is None:
        raise Problem(401, "Unauthorized", "send 'Authorization: Bearer <token>'", kind="token")
    with db.session() as session:
        row = session.scalar(select(model).where(model.token_hash == tokens.token_hash(token)))
    if row is None or row.revoked:
        raise Problem(401, "Unauthorized", "unknown or revoked token", kind="token")
    if row.role not in roles:
        raise Problem(
            403,
            "Forbidden",
            f"{'an' if row.role[0] in 'aeiou' else 'a'} {row.role} token may not do this; "
            f"needs one of {list(roles)}",
            kind="forbidden",
        )
    return row


def require_token(db: Database, model: Any, roles: tuple[str, ...]) -> str:
    """The role of the request's bearer token; 401 without a valid one, 403 for a wrong role."""
    return str(token_of(db, model, roles).role)


def serve(app: Flask, host: str, port: int, threads: int = 8) -> None:
    """Serve with waitress (a production WSGI server) until interrupted."""
    from waitress import serve as waitress_serve

    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    waitress_serve(
        app,
        host=host,
        port=port,
        threads=threads,
        ident="tds",
        channel_timeout=600,
        max_request_body_size=app.config["MAX_CONTENT_LENGTH"],
        # A homomorphic job's request carries megabytes of ciphertexts. Read them from the
        # socket 256 KiB at a time (not 8 KiB: 800 trips through the event loop for 6.6 MB) and
        # keep bodies up to 8 MiB in memory rather than in a temporary file: 14 → 5 ms for
        # 6.6 MB on loopback. Bodies beyond 8 MiB still go to a temporary file.
        recv_bytes=256 * 1024,
        inbuf_overflow=8 * 1024 * 1024,
    )
