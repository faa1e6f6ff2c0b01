"""Contract negotiation between connectors, in Dataspace Protocol 2025-1 messages.

Consumer                                  Provider
  ContractRequestMessage  ───────────────▶  policy evaluated for purpose, recipient,
                                           jurisdiction, date (job-time operands deferred)
                          ◀─── 201 ContractNegotiation {state: REQUESTED}
                                           auto-approve, or `tds contract approve`
  checks it, countersigns ◀── ContractAgreementMessage (signed by the provider)
  ContractAgreementVerificationMessage ──▶ checks both signatures, records it at the space
  FINALIZED               ◀── ContractNegotiationEventMessage {eventType: FINALIZED}

Either side may send ContractNegotiationTerminationMessage at any time; a finalized
agreement terminated this way is also terminated at the space. Follow-up messages are sent
in the background, so every handler answers at once (DSP's asynchronous callbacks). This
module holds the states, the consumer's side and termination; the provider's side is
:mod:`connectors.negotiation_provider`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select

from connectors.context import Connector, log
from connectors.errors import Conflict, NotFound, Refused
from connectors.models import Negotiation
from connectors.requests import ContractAgreementMessage, EventMessage, TerminationMessage
from contracts import dsp
from contracts.agreements import (
    State,
    advance,
    check_agreement_matches,
    new_pid,
)
from contracts.documents import sign_document, verify_document
from contracts.errors import ContractError
from contracts.offers import parse_price
from node.problems import Problem
from node.signing import RemoteError


def dsp_error(status: int, consumer_pid: str, provider_pid: str, code: str, reasons: list[str]) -> Problem:
    """A refusal whose body is a DSP ContractNegotiationError (and readable as a problem)."""
    return Problem(
        status,
        "Contract negotiation refused",
        "; ".join(reasons),
        kind="negotiation",
        **dsp.negotiation_error(
            consumer_pid=consumer_pid, provider_pid=provider_pid, code=code, reasons=reasons
        ),
    )


def find(ctx: Connector, ref: str, role: str | None = None) -> Negotiation:
    """A negotiation by our pid or by its agreement id."""
    with ctx.db.session() as session:
        query = select(Negotiation).where(or_(Negotiation.id == ref, Negotiation.agreement_id == ref))
        if role:
            query = query.where(Negotiation.role == role)
        found = session.scalar(query)
    if found is None:
        raise NotFound(f"no contract negotiation or agreement {ref!r} at this connector")
    return found


def move(ctx: Connector, neg_id: str, target: State, **changes: Any) -> Negotiation:
    """Advance a negotiation's state (checked by the DSP state machine) and apply changes."""
    with ctx.db.write_lock, ctx.db.transaction() as session:
        neg = session.get(Negotiation, neg_id, with_for_update=True)
        assert neg is not None
        try:
            neg.state = advance(State(neg.state), target)
        except ContractError as exc:
            raise Conflict(str(exc)) from exc
        for key, value in changes.items():
            setattr(neg, key, value)
        return neg


def view(neg: Negotiation) -> dict[str, Any]:
    return {
        "id": neg.id,
        "role": neg.role,
        "state": neg.state,
        "agreement_id": neg.agreement_id,
        "consumer_pid": neg.consumer_pid,
        "provider_pid": neg.provider_pid,
        "peer": neg.peer_id,
        "offer": neg.offer_id,
        "dataset": neg.dataset_id,
        "purpose": neg.purpose,
        "operations": neg.operations,
        "uses": neg.uses,
        "epsilon_spent": neg.epsilon_spent,
        "price": neg.price,
        "reason": neg.reason,
        "decision": neg.decision,
        "approval": neg.approval,
        "agreement": neg.agreement,
        "updated_at": neg.updated_at.isoformat(),
    }


def list_all(ctx: Connector) -> list[Negotiation]:
    with ctx.db.session() as session:
        return list(session.scalars(select(Negotiation).order_by(Negotiation.created_at)))


# --- consumer side ----------------------------------------------------------------------------
def request(
    ctx: Connector, offer_id: str, purpose: str, operations: list[str], price: Any = None
) -> Negotiation:
    """Ask for an agreement; ``price`` proposes another price than the listed one (the provider
    must then approve by hand). The agreement is countersigned only at the price accepted."""
    if not purpose.strip():
        raise Refused("purpose: state the purpose of use (--purpose)")
    if not operations:
        raise Refused("operations: name at least one operation (--op)")
    try:
        info = ctx.space.offer(offer_id)
    except RemoteError as exc:
        raise Refused(
            f"offer {offer_id}: {exc.problem.get('detail', exc)}", status=404 if exc.status == 404 else 502
        ) from exc
    offer, entry = info["offer"], info["entry"]
    missing = [op for op in operations if op not in offer["operations"]]
    if missing:
        raise Refused(f"offer {offer_id} does not include {missing}; it offers {offer['operations']}")
    if entry["provider"] == ctx.id:
        raise Refused("this connector is the provider of that offer; request it from another one")
    try:
        accepted = parse_price(price if price is not None else offer["price"]).to_json()
    except ContractError as exc:
        raise Refused(f"price: {exc}") from exc
    neg = Negotiation(
        id=new_pid(),
        role="consumer",
        peer_id=entry["provider"],
        peer_endpoint=entry["endpoint"] + "/dsp",
        offer_id=offer_id,
        dataset_id=entry["id"],
        purpose=purpose.strip(),
        operations=list(dict.fromkeys(operations)),
        state=State.REQUESTED,
        price=accepted,
    )
    neg.consumer_pid = neg.id
    with ctx.db.transaction() as session:
        session.add(neg)
    body = dsp.contract_request(
        consumer_pid=neg.id,
        offer_id=offer_id,
        target=entry["id"],
        operations=neg.operations,
        callback=ctx.dsp_url,
        purpose=neg.purpose,
        price=accepted if price is not None else None,
    )
    try:
        answer = ctx.client.send("POST", f"{neg.peer_endpoint}/negotiations/request", json=body).json()
    except RemoteError as exc:
        reasons = exc.problem.get("reason") or [exc.problem.get("detail") or str(exc)]
        return move(
            ctx,
            neg.id,
            State.TERMINATED,
            reason="; ".join(map(str, reasons)),
            provider_pid=exc.problem.get("providerPid"),
        )
    with ctx.db.transaction() as session:
        stored = session.get(Negotiation, neg.id)
        assert stored is not None
        if stored.provider_pid is None:
            stored.provider_pid = answer.get("providerPid")
        return stored


def on_agreement(ctx: Connector, caller: str, consumer_pid: str, message: ContractAgreementMessage) -> None:
    """Handle ContractAgreementMessage: check, countersign, then send the verification."""
    neg = find(ctx, consumer_pid, role="consumer")
    if caller != neg.peer_id:
        raise Refused(f"{caller} is not the provider of negotiation {consumer_pid}", status=403)
    document = message.agreement
    signed = {"document": document, "signatures": dict(message.signatures)}
    try:
        check_agreement_matches(
            document,
            offer_id=neg.offer_id,
            dataset_id=neg.dataset_id,
            provider=neg.peer_id,
            consumer=ctx.id,
            purpose=neg.purpose,
            operations=neg.operations,
            price=neg.price,
        )
        provider_key = ctx.space.member(neg.peer_id)["public_key"]
        verify_document(signed, {neg.peer_id}, lambda _: provider_key)
    except ContractError as exc:
        raise Refused(f"agreement refused: {exc}") from exc
    countersigned = sign_document(signed, ctx.id, ctx.key)
    move(
        ctx,
        neg.id,
        State.AGREED,
        agreement=countersigned,
        agreement_id=document["@id"],
        provider_pid=message.provider_pid,
    )
    ctx.background(_send_verification, ctx, neg.id)


def _send_verification(ctx: Connector, neg_id: str) -> None:
    neg = find(ctx, neg_id)
    assert neg.agreement is not None
    assert neg.provider_pid is not None
    body = dsp.verification_message(
        provider_pid=neg.provider_pid,
        consumer_pid=neg.id,
        signature=neg.agreement["signatures"][ctx.id],
    )
    ctx.client.send(
        "POST", f"{neg.peer_endpoint}/negotiations/{neg.provider_pid}/agreement/verification", json=body
    )
    with ctx.db.write_lock, ctx.db.transaction() as session:
        stored = session.get(Negotiation, neg_id)
        if stored is not None and stored.state == State.AGREED:
            stored.state = State.VERIFIED


def on_event(ctx: Connector, caller: str, consumer_pid: str, message: EventMessage) -> None:
    neg = find(ctx, consumer_pid, role="consumer")
    if caller != neg.peer_id:
        raise Refused(f"{caller} is not the provider of negotiation {consumer_pid}", status=403)
    if message.event_type != "FINALIZED":
        raise Refused(f"eventType {message.event_type!r}: a consumer accepts FINALIZED", status=400)
    if neg.state == State.AGREED:
        move(ctx, neg.id, State.VERIFIED)
    move(ctx, neg.id, State.FINALIZED)


# --- either side ------------------------------------------------------------------------------
def terminate(ctx: Connector, ref: str, reason: str) -> Negotiation:
    """End a negotiation or agreement here, at the peer and (if recorded) at the space."""
    neg = find(ctx, ref)
    was_finalized = neg.state == State.FINALIZED
    neg = move(ctx, neg.id, State.TERMINATED, reason=reason or "terminated")
    peer_pid = neg.provider_pid if neg.role == "consumer" else neg.consumer_pid
    try:
        if neg.provider_pid:  # a request the provider never answered is unknown to it
            body = dsp.termination_message(
                provider_pid=neg.provider_pid,
                consumer_pid=neg.consumer_pid,
                code="terminated",
                reasons=[neg.reason or "terminated"],
            )
            ctx.client.send("POST", f"{neg.peer_endpoint}/negotiations/{peer_pid}/termination", json=body)
        if was_finalized and neg.agreement_id:
            ctx.space.terminate_agreement(neg.agreement_id, neg.reason or "")
    except RemoteError as exc:
        log.warning("termination of %s not delivered everywhere: %s", neg.id, exc)
    return neg


def terminated_at_the_space(ctx: Connector, neg: Negotiation, reason: str) -> None:
    """The space says the agreement is terminated (by the operator, or by a party whose message
    never reached us): so it is here too."""
    if neg.state != State.TERMINATED:
        move(ctx, neg.id, State.TERMINATED, reason=reason)


def termination_reason(agreement_id: str, recorded: dict[str, Any]) -> str:
    """How a termination the space recorded (agreements.view, or its notice) is told."""
    return (
        f"agreement {agreement_id} was terminated by {recorded.get('terminated_by')} at "
        f"{recorded.get('terminated_at')}: {recorded.get('termination_reason') or 'no reason given'}"
    )


def on_space_termination(ctx: Connector, agreement_id: str, body: dict[str, Any]) -> None:
    """The space's signed notice that it terminated an agreement (space/notify.py)."""
    terminated_at_the_space(ctx, find(ctx, agreement_id), termination_reason(agreement_id, body))


def on_termination(ctx: Connector, caller: str, pid: str, message: TerminationMessage) -> None:
    neg = find(ctx, pid)
    if caller != neg.peer_id:
        raise Refused(f"{caller} is not a party to negotiation {pid}", status=403)
    if neg.state == State.TERMINATED:
        return
    reasons = message.reason or ["terminated by the peer"]
    move(ctx, neg.id, State.TERMINATED, reason="; ".join(map(str, reasons)))
