"""Contract negotiation states and agreement documents.

States and transitions follow the Dataspace Protocol 2025-1 contract negotiation state
machine (REQUESTED → OFFERED / AGREED → VERIFIED → FINALIZED, or TERMINATED from any
non-terminal state). TDS adds one edge the protocol leaves to the application: a FINALIZED
agreement can later be TERMINATED by either party or the operator, which ends its use.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from contracts.errors import AgreementError, StateTransitionError
from contracts.offers import Offer, parse_price
from contracts.settlement import parse_shares
from policies.errors import PolicyError
from policies.model import Constraint, Policy, Rule, format_datetime, parse_policy

DSP_CONTEXT = "https://w3id.org/dspace/2025/1/context.jsonld"
TDS_CONTEXT = "https://w3id.org/tds/2026/1/context.jsonld"  # TDS terms, prefix "tds:"


class State(StrEnum):
    """A contract negotiation's state (Dataspace Protocol §8), stored and sent by value."""

    REQUESTED = "REQUESTED"
    OFFERED = "OFFERED"
    ACCEPTED = "ACCEPTED"
    AGREED = "AGREED"
    VERIFIED = "VERIFIED"
    FINALIZED = "FINALIZED"
    TERMINATED = "TERMINATED"


TRANSITIONS: dict[State, frozenset[State]] = {
    State.REQUESTED: frozenset({State.OFFERED, State.AGREED, State.TERMINATED}),
    State.OFFERED: frozenset({State.REQUESTED, State.ACCEPTED, State.TERMINATED}),
    State.ACCEPTED: frozenset({State.AGREED, State.TERMINATED}),
    State.AGREED: frozenset({State.VERIFIED, State.TERMINATED}),
    State.VERIFIED: frozenset({State.FINALIZED, State.TERMINATED}),
    State.FINALIZED: frozenset({State.TERMINATED}),  # TDS: ends an agreement in force
    State.TERMINATED: frozenset(),
}


def advance(current: State, target: State) -> State:
    """Return ``target`` if the state machine allows ``current`` → ``target``; else raise."""
    if target not in TRANSITIONS[current]:
        allowed = sorted(s.value for s in TRANSITIONS[current]) or ["none: terminal state"]
        raise StateTransitionError(
            f"negotiation is {current.value}; cannot move to {target.value} (allowed: {', '.join(allowed)})"
        )
    return target


def new_pid() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def build_agreement(
    *,
    offer_id: str,
    offer: Offer,
    dataset_id: str,
    provider: str,
    consumer: str,
    purpose: str,
    operations: Sequence[str],
    consumer_pid: str,
    provider_pid: str,
    now: dt.datetime,
) -> dict[str, Any]:
    """The agreement document: the offer's rules for the requested operations, pinned to the
    consumer and purpose, in Dataspace Protocol ``Agreement`` form with TDS terms under tds:."""
    pinned = (
        Constraint("purpose", "eq", purpose),
        Constraint("recipient", "eq", consumer),
    )
    permissions = tuple(
        Rule(rule.action, rule.constraints + pinned)
        for rule in offer.policy.permissions
        if rule.action in operations
    )
    prohibitions = tuple(r for r in offer.policy.prohibitions if r.action in operations)
    policy = Policy(permissions=permissions, prohibitions=prohibitions).to_json()
    return {
        "@context": [DSP_CONTEXT, TDS_CONTEXT],
        "@type": "Agreement",
        "@id": new_pid(),
        "target": dataset_id,
        "assigner": provider,
        "assignee": consumer,
        "timestamp": format_datetime(now),
        **policy,
        "tds:offer": offer_id,
        "tds:purpose": purpose,
        "tds:operations": list(operations),
        "tds:price": offer.price.to_json(),
        "tds:revenueShare": [s.to_json() for s in offer.revenue_share or parse_shares(None, provider)],
        "tds:consumerPid": consumer_pid,
        "tds:providerPid": provider_pid,
        **(
            {"tds:scoreNoise": dict(offer.score_noise)}
            if offer.score_noise and "he.score" in operations
            else {}
        ),
        **({"tds:chargeWithheld": False} if not offer.charge_withheld else {}),
    }


def agreement_policy(document: Mapping[str, Any]) -> Policy:
    try:
        return parse_policy(
            {"permission": document.get("permission"), "prohibition": document.get("prohibition")}
        )
    except PolicyError as exc:
        raise AgreementError(f"agreement {document.get('@id')}: {exc}") from exc


def check_agreement_matches(
    document: Mapping[str, Any],
    *,
    offer_id: str,
    dataset_id: str,
    provider: str,
    consumer: str,
    purpose: str,
    operations: Sequence[str],
    price: Mapping[str, Any] | None = None,
) -> None:
    """The consumer's check that the agreement it is asked to sign is the one it requested,
    at the price it accepted (the listed one, or the one it proposed)."""
    expected = {
        "@type": "Agreement",
        "tds:offer": offer_id,
        "target": dataset_id,
        "assigner": provider,
        "assignee": consumer,
        "tds:purpose": purpose,
        "tds:operations": list(operations),
    }
    for key, value in expected.items():
        if document.get(key) != value:
            raise AgreementError(f"agreement field {key}: expected {value!r}, got {document.get(key)!r}")
    policy = agreement_policy(document)
    if not set(policy.actions()) <= set(operations):
        raise AgreementError(
            f"agreement permits {list(policy.actions())}, more than requested {list(operations)}"
        )
    agreed = parse_price(document.get("tds:price"))
    if price is not None and agreed != parse_price(price):
        raise AgreementError(
            f"agreement field tds:price: expected {dict(price)!r}, got {document.get('tds:price')!r}"
        )
