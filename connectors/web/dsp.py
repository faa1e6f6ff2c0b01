"""The Dataspace Protocol side (``/dsp/negotiations/...``, RFC 9421-signed requests from admitted
members), and the space's own termination of an agreement. Job messages are in
connectors.web.jobs."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify

from connectors import negotiation, negotiation_provider, uses
from connectors.errors import Refused
from connectors.requests import (
    ContractAgreementMessage,
    ContractRequestMessage,
    EventMessage,
    TerminationMessage,
    VerificationMessage,
)
from connectors.web.common import ctx, peer
from contracts import dsp as messages
from node import signing
from node.web import body_as, json_body

dsp = Blueprint("dsp", __name__)


@dsp.post("/dsp/negotiations/request")
def dsp_request() -> Any:
    caller = peer()
    neg = negotiation_provider.on_request(ctx(), caller, body_as(ContractRequestMessage))
    body = messages.contract_negotiation(consumer_pid=neg.consumer_pid, provider_pid=neg.id, state=neg.state)
    return jsonify(body), 201


@dsp.get("/dsp/negotiations/<path:pid>")
def dsp_show(pid: str) -> Any:
    caller = peer()
    neg = negotiation.find(ctx(), pid)
    if caller != neg.peer_id:
        raise Refused(f"{caller} is not a party to negotiation {pid}", status=403)
    return messages.contract_negotiation(
        consumer_pid=neg.consumer_pid, provider_pid=neg.provider_pid or "", state=neg.state
    )


@dsp.get("/dsp/agreements/<path:agreement_id>/uses")
def dsp_uses(agreement_id: str) -> Any:
    return uses.answer(ctx(), peer(), agreement_id)


@dsp.post("/dsp/negotiations/<path:pid>/agreement/verification")
def dsp_verification(pid: str) -> Any:
    negotiation_provider.on_verification(ctx(), peer(), pid, body_as(VerificationMessage))
    return {}


@dsp.post("/dsp/negotiations/<path:pid>/agreement")
def dsp_agreement(pid: str) -> Any:
    negotiation.on_agreement(ctx(), peer(), pid, body_as(ContractAgreementMessage))
    return {}


@dsp.post("/dsp/negotiations/<path:pid>/events")
def dsp_events(pid: str) -> Any:
    negotiation.on_event(ctx(), peer(), pid, body_as(EventMessage))
    return {}


@dsp.post("/dsp/negotiations/<path:pid>/termination")
def dsp_termination(pid: str) -> Any:
    negotiation.on_termination(ctx(), peer(), pid, body_as(TerminationMessage))
    return {}


@dsp.post("/dsp/agreements/<path:agreement_id>/termination")
def space_termination(agreement_id: str) -> Any:
    # signed by the space's key, pinned when this connector registered
    pinned = ctx().settings.space_public_key
    signing.verify_incoming(
        current_app.extensions["tds.nonces"], ctx().config.url, lambda kid: pinned if kid == "space" else None
    )
    negotiation.on_space_termination(ctx(), agreement_id, json_body())
    return {}
