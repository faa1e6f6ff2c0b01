"""The provider's side of a contract negotiation (DSP 2025-1 §3): the request is evaluated
against the offer's policy before anything is stored, approved automatically or by a person
(`tds contract approve`), and the agreement both parties signed is recorded at the space before
the consumer is told it is FINALIZED. The messages and the states are in
:mod:`connectors.negotiation`."""

from __future__ import annotations

import time

from connectors import datasets
from connectors.context import Connector, log
from connectors.errors import Conflict, NotFound, Refused
from connectors.models import Negotiation
from connectors.negotiation import dsp_error, find, move, terminate
from connectors.requests import ContractRequestMessage, VerificationMessage
from contracts import dsp
from contracts.agreements import State, build_agreement, new_pid
from contracts.documents import new_signed, verify_document
from contracts.errors import ContractError
from contracts.offers import parse_offer, parse_price
from node.models import utcnow
from node.signing import RemoteError
from policies.evaluate import NEGOTIATION_DEFERRABLE, evaluate


def on_request(ctx: Connector, caller: str, message: ContractRequestMessage) -> Negotiation:
    """Handle ContractRequestMessage: evaluate the offer's policy before anything is stored."""
    consumer_pid, offer = message.consumer_pid, message.offer
    provider_pid = new_pid()
    found = datasets.by_offer(ctx, offer.id)
    if found is None:
        raise dsp_error(404, consumer_pid, provider_pid, "unknown-offer", [f"no offer {offer.id!r} here"])
    dataset, offer_doc = found
    parsed = parse_offer(offer_doc)
    operations = [p.action for p in offer.permission]
    purpose = message.purpose
    if not operations or not purpose:
        raise dsp_error(
            400,
            consumer_pid,
            provider_pid,
            "bad-request",
            ["name the operations as offer.permission[].action and the purpose as tds:purpose"],
        )
    proposed = None
    if message.price is not None:
        try:
            proposed = parse_price(message.price).to_json()
        except ContractError as exc:
            raise dsp_error(400, consumer_pid, provider_pid, "bad-price", [f"tds:price: {exc}"]) from exc
    member = ctx.space.member(caller)
    if message.callback_address != member["endpoint"] + "/dsp":
        raise dsp_error(
            400,
            consumer_pid,
            provider_pid,
            "bad-callback",
            [f"callbackAddress must be the consumer's registered endpoint {member['endpoint']}/dsp"],
        )
    context = {
        "purpose": purpose,
        "recipient": caller,
        "jurisdiction": member["jurisdiction"],
        "dateTime": utcnow(),
    }
    decisions = {op: evaluate(parsed.policy, str(op), context, NEGOTIATION_DEFERRABLE) for op in operations}
    denied = [d.summary for d in decisions.values() if not d.permitted]
    neg = Negotiation(
        id=provider_pid,
        role="provider",
        consumer_pid=consumer_pid,
        provider_pid=provider_pid,
        peer_id=caller,
        peer_endpoint=message.callback_address,
        offer_id=offer.id,
        dataset_id=str(dataset.catalog_id),
        purpose=purpose,
        operations=list(dict.fromkeys(operations)),
        state=State.TERMINATED if denied else State.REQUESTED,
        decision={op: d.to_json() for op, d in decisions.items()},
        reason="; ".join(denied) or None,
        price=proposed,
        # a price other than the listed one is for a person to accept
        approval="automatic"
        if parsed.auto_approve and proposed in (None, parsed.price.to_json())
        else "manual",
    )
    with ctx.db.transaction() as session:
        session.add(neg)
    if denied:
        raise dsp_error(403, consumer_pid, provider_pid, "policy", denied)
    if neg.approval == "automatic":
        ctx.background(approve, ctx, neg.id)
    return neg


def approve(ctx: Connector, ref: str) -> Negotiation:
    """Agree: build and sign the agreement, then send it to the consumer."""
    neg = find(ctx, ref, role="provider")
    if neg.state != State.REQUESTED:
        raise Conflict(f"negotiation {neg.id} is {neg.state}; only a REQUESTED one can be approved")
    found = datasets.by_offer(ctx, neg.offer_id)
    if found is None:
        raise NotFound(f"offer {neg.offer_id} is no longer published here")
    document = build_agreement(
        offer_id=neg.offer_id,
        offer=parse_offer(found[1]),
        dataset_id=neg.dataset_id,
        provider=ctx.id,
        consumer=neg.peer_id,
        purpose=neg.purpose,
        operations=neg.operations,
        consumer_pid=neg.consumer_pid,
        provider_pid=neg.id,
        now=utcnow(),
    )
    if neg.price is not None:
        document["tds:price"] = neg.price  # the price the consumer proposed, now agreed
    signed = new_signed(document, ctx.id, ctx.key)
    neg = move(ctx, neg.id, State.AGREED, agreement=signed, agreement_id=document["@id"])
    ctx.background(_send_agreement, ctx, neg.id)
    return neg


def _send_agreement(ctx: Connector, neg_id: str) -> None:
    neg = find(ctx, neg_id)
    assert neg.agreement is not None
    body = dsp.agreement_message(
        provider_pid=neg.id,
        consumer_pid=neg.consumer_pid,
        agreement=neg.agreement["document"],
        callback=ctx.dsp_url,
        signatures=neg.agreement["signatures"],
    )
    try:
        ctx.client.send("POST", f"{neg.peer_endpoint}/negotiations/{neg.consumer_pid}/agreement", json=body)
    except RemoteError as exc:
        log.warning("consumer refused agreement %s: %s", neg.agreement_id, exc)
        move(ctx, neg.id, State.TERMINATED, reason=f"consumer refused the agreement: {exc}")


def on_verification(ctx: Connector, caller: str, provider_pid: str, message: VerificationMessage) -> None:
    neg = find(ctx, provider_pid, role="provider")
    if caller != neg.peer_id:
        raise Refused(f"{caller} is not the consumer of negotiation {provider_pid}", status=403)
    if neg.agreement is None or neg.state != State.AGREED:
        raise Conflict(f"negotiation {provider_pid} is {neg.state}; nothing to verify")
    signature = message.signature
    signed = {
        "document": neg.agreement["document"],
        "signatures": {**neg.agreement["signatures"], caller: signature},
    }
    keys = {ctx.id: ctx.key.public_key, caller: ctx.space.member(caller)["public_key"]}
    try:
        verify_document(signed, keys, keys.__getitem__)
    except ContractError as exc:
        raise Refused(f"agreement verification refused: {exc}") from exc
    move(ctx, neg.id, State.VERIFIED, agreement=signed)
    ctx.background(_finalize, ctx, neg.id)


RECORD_ATTEMPTS = (0.0, 1.0, 4.0, 15.0)  # seconds to wait before each try to record at the space


def _finalize(ctx: Connector, neg_id: str) -> None:
    """Record the agreement at the space (retrying a space that is briefly away), then finalize."""
    neg = find(ctx, neg_id)
    assert neg.agreement is not None
    for attempt, pause in enumerate(RECORD_ATTEMPTS, 1):
        time.sleep(pause)
        try:
            ctx.space.record_agreement(neg.agreement)
            break
        except RemoteError as exc:
            if exc.status not in (0, 502, 503, 504) or attempt == len(RECORD_ATTEMPTS):
                terminate(ctx, neg.id, f"the space did not record the agreement: {exc}")
                raise
    move(ctx, neg.id, State.FINALIZED)
    ctx.client.send(
        "POST",
        f"{neg.peer_endpoint}/negotiations/{neg.consumer_pid}/events",
        json=dsp.event_message(provider_pid=neg.id, consumer_pid=neg.consumer_pid, event_type="FINALIZED"),
    )
