"""Agreements: recorded by their parties, read by them (or an operator or auditor), and
terminated by a party; both connectors are told of a termination at once."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, jsonify

from node.models import utcnow
from node.web import body_as, json_body
from space import agreements
from space.errors import Refused
from space.requests import Termination
from space.web.common import (
    EXPORT_LIST,
    config,
    db,
    load_export_list,
    signed_caller,
    tell_parties,
    token_or_caller,
)

agreements_api = Blueprint("agreements", __name__)


@agreements_api.post("/agreements")
def record_agreement() -> Any:
    caller = signed_caller()
    with db().transaction() as session:
        exports = load_export_list(config().path)
        agreement, created = agreements.record(session, caller, json_body(), exports)
        view = agreements.view(agreement)
    return jsonify(view), 201 if created else 200


@agreements_api.get("/export-list")
def show_export_list() -> Any:
    """The export list as the operator keeps it, for members' connectors, which check it on
    every job (connectors.guard), and for people with a token."""
    token_or_caller()
    load_export_list(config().path)  # what is served is what the space enforces: it parses
    path = config().path / EXPORT_LIST
    return json.loads(path.read_text("utf-8")) if path.exists() else {"rules": []}


@agreements_api.get("/agreements/<path:agreement_id>")
def show_agreement(agreement_id: str) -> Any:
    kind, who = token_or_caller()
    with db().session() as session:
        agreement = agreements.get(session, agreement_id)
        if kind == "participant" and who not in (agreement.provider_id, agreement.consumer_id):
            raise Refused(f"{who} is not a party to agreement {agreement_id}", status=403)
        return agreements.view(agreement)


@agreements_api.post("/agreements/<path:agreement_id>/termination")
def terminate_agreement(agreement_id: str) -> Any:
    caller = signed_caller()
    reason = body_as(Termination).reason or ""
    with db().transaction() as session:
        view = agreements.view(agreements.terminate(session, agreement_id, caller, reason, utcnow()))
    tell_parties(view)
    return view
