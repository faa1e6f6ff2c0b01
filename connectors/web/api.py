"""The participant's own API (``/api/...``, bearer tokens): status, datasets and their offers,
the space's catalog, contracts, the outbox of usage records. Jobs are in connectors.web.jobs."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from connectors import datasets, membership, negotiation, negotiation_provider, outbox, uses
from connectors import status as status_service
from connectors.errors import Refused
from connectors.models import Token
from connectors.requests import ContractRequest, NewDataset, NewToken, Publication, Reason
from connectors.web.common import admin, ctx, space_call
from contracts.agreements import State
from node import tokens
from node.tokens import new_token, token_hash
from node.web import body_as

api = Blueprint("api", __name__)


@api.get("/api/status")
def status() -> Any:
    admin()
    return {
        "id": ctx().id,
        "url": ctx().config.url,
        "space": ctx().config.space_url,
        "sandbox": ctx().backend.name,
        "membership": ctx().space.participant(ctx().id, fresh=True),
    }


@api.post("/api/membership/renewal")
def renew_membership() -> Any:
    """A new membership credential from the space now (tds connector renew); the space agrees
    in the last days of the old one only, and its refusal says from when."""
    admin()
    return space_call(membership.renew, ctx())


@api.get("/api/health")
def health() -> Any:
    """This connector's health for ``tds status``: membership, peers, outbox, running jobs."""
    admin()
    return status_service.health(ctx())


@api.post("/api/datasets")
def add_dataset() -> Any:
    admin()
    return jsonify(datasets.view(datasets.add(ctx(), body_as(NewDataset)))), 201


@api.get("/api/datasets")
def list_datasets() -> Any:
    admin()
    return {"datasets": [datasets.view(d) for d in datasets.list_all(ctx())]}


@api.get("/api/datasets/<name>")
def show_dataset(name: str) -> Any:
    admin()
    return datasets.view(datasets.get(ctx(), name))


@api.post("/api/datasets/<name>/publish")
def publish_dataset(name: str) -> Any:
    admin()
    entry = datasets.publish(ctx(), name, body_as(Publication).offers)
    ctx().background(datasets.warm_up, ctx())
    return jsonify(entry), 201 if entry["status"] == "published" else 202


@api.get("/api/catalog")
def search_catalog() -> Any:
    admin()
    args = request.args
    return space_call(
        ctx().space.search,
        q=args.get("q"),
        sector=args.get("sector"),
        op=args.get("op"),
        limit=args.get("limit"),
    )


@api.get("/api/catalog/<path:entry_id>/mock.csv")
def catalog_mock(entry_id: str) -> Any:
    admin()
    return Response(space_call(ctx().space.mock, entry_id), mimetype="text/csv")


@api.get("/api/catalog/<path:entry_id>")
def show_catalog_entry(entry_id: str) -> Any:
    admin()
    return space_call(ctx().space.entry, entry_id)


@api.post("/api/contracts")
def request_contract() -> Any:
    admin()
    asked = body_as(ContractRequest)
    neg = negotiation.request(ctx(), asked.offer, asked.purpose, asked.operations, asked.price)
    return jsonify(negotiation.view(neg)), 201


@api.get("/api/contracts")
def list_contracts() -> Any:
    admin()
    return {"contracts": [negotiation.view(n) for n in negotiation.list_all(ctx())]}


@api.get("/api/contracts/<path:ref>")
def show_contract(ref: str) -> Any:
    admin()
    neg = negotiation.find(ctx(), ref)
    return {**negotiation.view(neg), "use": uses.view(ctx(), neg)}


@api.post("/api/contracts/<path:ref>/approve")
def approve_contract(ref: str) -> Any:
    admin()
    return negotiation.view(negotiation_provider.approve(ctx(), ref))


@api.post("/api/contracts/<path:ref>/reject")
def reject_contract(ref: str) -> Any:
    admin()
    neg = negotiation.find(ctx(), ref, role="provider")
    if neg.state != State.REQUESTED:
        raise Refused(
            f"negotiation {neg.id} is {neg.state}; only a REQUESTED one can be rejected", status=409
        )
    reason = body_as(Reason, optional=True).reason or "rejected by the provider"
    return negotiation.view(negotiation.terminate(ctx(), ref, reason))


@api.post("/api/contracts/<path:ref>/terminate")
def terminate_contract(ref: str) -> Any:
    admin()
    reason = body_as(Reason, optional=True).reason or "terminated"
    return negotiation.view(negotiation.terminate(ctx(), ref, reason))


@api.get("/api/outbox")
def show_outbox() -> Any:
    admin()
    return {"pending": [outbox.view(r) for r in outbox.pending(ctx())]}


@api.get("/api/outbox/receipts")
def outbox_receipts() -> Any:
    admin()
    return {"receipts": outbox.receipts(ctx())}


@api.post("/api/outbox/flush")
def flush_outbox() -> Any:
    admin()
    return outbox.deliver_due(ctx())


@api.post("/api/tokens")
def issue_token() -> Any:
    """A bearer token for a person (shown once; stored as its hash): a reviewer reads and decides
    on consumers' scripts (connectors.web.reviews) and nothing else."""
    admin()
    asked = body_as(NewToken)
    token = new_token()
    with ctx().db.transaction() as session:
        session.add(Token(token_hash=token_hash(token), role=asked.role, label=asked.label))
    return jsonify({"token": token, "role": asked.role, "label": asked.label}), 201


@api.get("/api/tokens")
def list_tokens() -> Any:
    """Every token of this connector, by id, role, label and whether it is revoked; never a token."""
    admin()
    with ctx().db.session() as session:
        return {"tokens": tokens.listing(session, Token)}


@api.post("/api/tokens/<token_id>/revoke")
def revoke_token(token_id: str) -> Any:
    admin()
    with ctx().db.transaction() as session:
        return tokens.view(tokens.revoke(session, Token, token_id, "admin"))
