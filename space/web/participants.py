"""Membership: the space's self-description (``/.well-known/tds``, with the endpoint policy
connectors check every connection against), registration with proof of possession, and a
participant's registration as others may read it."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from node import signing
from node.models import utcnow
from node.problems import Problem
from node.web import json_body, require_token
from space import operator, registry
from space.models import Token
from space.web.common import (
    config,
    db,
    part,
    settings,
    signed_caller,
    space_key,
)

participants_api = Blueprint("participants", __name__)


@participants_api.get("/.well-known/tds")
def well_known() -> Any:
    return {
        "id": registry.SPACE_ID,
        "role": "space",
        "url": config().url,
        "public_key": space_key().public_key,
        # the endpoint policy its members' connectors check every connection against
        "endpoints": {"denied": list(settings().endpoint_denied_ranges), "loopback": settings().dev_mode},
    }


@participants_api.post("/participants")
def register() -> Any:
    body = json_body()
    fields = registry.validate_registration(body)
    # proof of possession: the registration is signed by the key it registers
    signing.verify_incoming(
        part("nonces"), config().url, lambda kid: fields["public_key"] if kid == fields["id"] else None
    )
    registry.check_endpoint(fields["endpoint"], settings())  # resolved only for a signed request
    with db().transaction() as session:
        participant, created = registry.register(session, fields)
        if created and settings().auto_admit:
            registry.admit(session, participant.id, space_key(), utcnow(), settings().credential_days)
        view = registry.public_view(participant)
    return jsonify(view), 201 if created else 200


@participants_api.post("/participants/<pid>/renewal")
def renew(pid: str) -> Any:
    """An admitted member's new credential, asked for by the member itself (signed) within the
    last ``renew_within_days`` of its credential; the space notes it among operator actions."""
    if signed_caller() != pid:
        raise Problem(403, "Forbidden", f"only {pid} renews its own credential", kind="forbidden")
    now = utcnow()
    with db().transaction() as session:
        found = registry.renew(
            session, pid, space_key(), now, settings().credential_days, settings().renew_within_days
        )
        view = registry.public_view(found)
        operator.note(
            session, "space", "renew", pid, now, expires_at=view["credential"]["document"]["expires_at"]
        )
        return view


@participants_api.get("/participants/<pid>")
def participant(pid: str) -> Any:
    if request.headers.get("Authorization"):
        kind, who = "token", require_token(db(), Token, ("operator", "auditor"))
    else:  # a pending participant may read its own registration, to learn when it is admitted
        kind, who = "participant", signed_caller(self_id=pid)
    with db().session() as session:
        found = registry.get(session, pid)
        if kind == "participant" and who != pid and found.status == "pending":
            raise Problem(404, "Not found", f"no participant {pid!r}", kind="not-found")
        return registry.public_view(found)
