"""Agreements: recorded by their parties, read by them (or an operator or auditor), and
terminated by a party; both connectors are told of a termination at once."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from node.models import utcnow
from node.web import body_as, json_body
from space import agreements
from space.errors import Refused
from space.requests import Termination
from space.web.common import (
    db,
    signed_caller,
    tell_parties,
    token_or_caller,
)

agreements_api = Blueprint("agreements", __name__)


@agreements_api.post("/agreements")
def record_agreement() -> Any:
    caller = signed_caller()
    with db().transaction() as session:
        agreement, created = agreements.record(session, caller, json_body())
        view = agreements.view(agreement)
    return jsonify(view), 201 if created else 200


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
