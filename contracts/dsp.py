"""Dataspace Protocol 2025-1 contract-negotiation messages (pure builders).

Field names and types follow the DSP 2025-1 JSON schemas; every builder's output validates
against its schema (tests/contracts/test_dsp_messages.py). TDS's own terms travel under the
``tds:`` prefix of the TDS context, which DSP's open schemas allow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from contracts.agreements import DSP_CONTEXT, TDS_CONTEXT

CONTEXT = [DSP_CONTEXT, TDS_CONTEXT]


def _message(kind: str, **fields: Any) -> dict[str, Any]:
    return {"@context": CONTEXT, "@type": kind, **fields}


def contract_request(
    *,
    consumer_pid: str,
    offer_id: str,
    target: str,
    operations: Sequence[str],
    callback: str,
    purpose: str,
    price: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """ContractRequestMessage: the consumer asks for ``operations`` of an offer, for a purpose,
    at ``price`` (``tds:price``) when it proposes one other than the listed."""
    offer = {
        "@type": "Offer",
        "@id": offer_id,
        "target": target,
        "permission": [{"action": op} for op in operations],
    }
    return _message(
        "ContractRequestMessage",
        consumerPid=consumer_pid,
        offer=offer,
        callbackAddress=callback,
        **{"tds:purpose": purpose},
        **({"tds:price": dict(price)} if price is not None else {}),
    )


def contract_negotiation(*, consumer_pid: str, provider_pid: str, state: str) -> dict[str, Any]:
    return _message("ContractNegotiation", consumerPid=consumer_pid, providerPid=provider_pid, state=state)


def negotiation_error(
    *, consumer_pid: str, provider_pid: str, code: str, reasons: Sequence[str]
) -> dict[str, Any]:
    return _message(
        "ContractNegotiationError",
        consumerPid=consumer_pid,
        providerPid=provider_pid,
        code=code,
        reason=list(reasons),
    )


def agreement_message(
    *,
    provider_pid: str,
    consumer_pid: str,
    agreement: Mapping[str, Any],
    callback: str,
    signatures: Mapping[str, str],
) -> dict[str, Any]:
    """ContractAgreementMessage carrying the provider-signed agreement and its signature."""
    return _message(
        "ContractAgreementMessage",
        providerPid=provider_pid,
        consumerPid=consumer_pid,
        agreement=dict(agreement),
        callbackAddress=callback,
        **{"tds:signatures": dict(signatures)},
    )


def verification_message(*, provider_pid: str, consumer_pid: str, signature: str) -> dict[str, Any]:
    """ContractAgreementVerificationMessage carrying the consumer's countersignature."""
    return _message(
        "ContractAgreementVerificationMessage",
        providerPid=provider_pid,
        consumerPid=consumer_pid,
        **{"tds:signature": signature},
    )


def event_message(*, provider_pid: str, consumer_pid: str, event_type: str) -> dict[str, Any]:
    return _message(
        "ContractNegotiationEventMessage",
        providerPid=provider_pid,
        consumerPid=consumer_pid,
        eventType=event_type,
    )


def termination_message(
    *, provider_pid: str, consumer_pid: str, code: str, reasons: Sequence[str]
) -> dict[str, Any]:
    return _message(
        "ContractNegotiationTerminationMessage",
        providerPid=provider_pid,
        consumerPid=consumer_pid,
        code=code,
        reason=list(reasons),
    )
