"""The space's check of a script step before it enters the log (contracts.script_steps): well
formed, sent and signed by its provider alone, about an agreement recorded here that permits
scripts, between the parties and on the dataset the step names. Nothing in a step is believed
before these checks, as for usage records (space.ledger)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from contracts.documents import verify_document
from contracts.errors import ContractError
from contracts.script_steps import check_step, validate_step
from space import registry
from space.errors import Refused
from space.models import Agreement


def check(
    session: Session, caller: str, signed: dict[str, Any], agreements: dict[str, Agreement | None]
) -> dict[str, Any]:
    """The step's document, once it may be appended; raises Refused saying why not."""
    step = signed["document"]
    try:
        validate_step(step)
    except ContractError as exc:
        raise Refused(str(exc)) from exc
    provider = step["provider"]
    if caller != provider:
        raise Refused(
            f"script step {step['id']}: only its provider {provider} sends it, not {caller}", status=403
        )
    signatures = signed.get("signatures")
    if not isinstance(signatures, dict) or set(signatures) != {provider}:
        raise Refused(f"script step {step['id']}: expected the signature of {provider} alone")
    key = registry.get(session, provider).public_key
    try:
        verify_document(signed, {provider}, lambda _pid: key)
    except ContractError as exc:
        raise Refused(f"script step {step['id']}: {exc}") from exc
    if step["agreement"] not in agreements:
        agreements[step["agreement"]] = session.get(Agreement, step["agreement"])
    agreement = agreements[step["agreement"]]
    if agreement is None:
        raise Refused(
            f"script step {step['id']}: agreement {step['agreement']} is not recorded at the space",
            status=409,
        )
    try:
        check_step(step, agreement.signed["document"])
    except ContractError as exc:
        raise Refused(f"script step {step['id']}: {exc}", status=409) from exc
    return step


def subject(step: dict[str, Any]) -> dict[str, Any]:
    """The columns of the step's log entry: its job as the subject, its step as the outcome, no fee."""
    return {**step, "id": step["job"], "outcome": step["step"], "fee_fen": 0}
