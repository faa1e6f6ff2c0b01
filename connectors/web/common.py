"""What every connector blueprint uses: the node's context, the two kinds of caller (the
participant's own people with a bearer token; other members with RFC 9421 signatures), and the
shapes of answers."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, request

from connectors.context import Connector
from connectors.errors import Refused
from connectors.models import Token
from connectors.provider import Answer
from node import signing
from node.signing import RemoteError
from node.web import require_token
from sandbox import framing


def ctx() -> Connector:
    connector: Connector = current_app.extensions["tds"]
    return connector


def admin() -> None:
    """Refuse the request unless it carries one of this connector's admin tokens."""
    require_token(ctx().db, Token, ("admin",))


def peer() -> str:
    """The member that signed the request (RFC 9421), checked against the space's registry."""
    nonces: signing.NonceStore = current_app.extensions["tds.nonces"]
    return signing.verify_incoming(nonces, ctx().config.url, ctx().space.public_key_of).key_id


def int_arg(name: str, default: int) -> int:
    try:
        return int(request.args.get(name, default))
    except ValueError as exc:
        raise Refused(f"{name}: expected a whole number, got {request.args.get(name)!r}", status=400) from exc


def space_call(func: Any, *args: Any, **kwargs: Any) -> Any:
    """A call to the space on the user's behalf; the space's refusal is passed on as it said it."""
    try:
        return func(*args, **kwargs)
    except RemoteError as exc:
        raise Refused(str(exc.problem.get("detail") or exc), status=exc.status or 502, kind="space") from exc


def framed(answer: Answer) -> Response:
    """A job service's answer (reply header, blobs) as the framed HTTP body."""
    header, blobs = answer
    return Response(framing.encode(header, blobs), mimetype=framing.MEDIA_TYPE)
