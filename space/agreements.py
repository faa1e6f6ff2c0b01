"""Agreements recorded at the space: both parties' signatures checked, terminations kept."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from contracts.agreements import State, agreement_policy
from contracts.documents import verify_document
from contracts.errors import ContractError
from contracts.offers import parse_price
from policies import export_list
from policies.export_list import ExportRule
from space import pricing, registry
from space.errors import Conflict, NotFound, Refused
from space.models import Agreement, CatalogEntry, Offer


def record(
    session: Session, caller: str, signed: Any, exports: tuple[ExportRule, ...] = ()
) -> tuple[Agreement, bool]:
    """Store a finalized agreement signed by both parties; idempotent by agreement id. The
    export list (``exports``) is checked whatever the offer says: a refusal names the rule."""
    if not isinstance(signed, dict) or not isinstance(signed.get("document"), dict):
        raise Refused('expected a signed agreement {"document": {...}, "signatures": {...}}')
    document = signed["document"]
    agreement_id, provider_id, consumer_id = (
        document.get("@id"),
        document.get("assigner"),
        document.get("assignee"),
    )
    if caller not in (provider_id, consumer_id):
        raise Refused(f"{caller} is not a party to agreement {agreement_id}", status=403)
    if not isinstance(agreement_id, str) or not agreement_id.startswith("urn:uuid:"):
        raise Refused(f"agreement @id: expected a urn:uuid, got {agreement_id!r}")
    existing = session.get(Agreement, agreement_id)
    if existing is not None:
        if existing.signed != signed:
            raise Conflict(f"agreement {agreement_id} is recorded with different content")
        return existing, False
    parties = {pid: registry.get(session, pid) for pid in (provider_id, consumer_id)}
    try:
        verify_document(signed, parties, lambda pid: parties[pid].public_key)
        agreement_policy(document)
    except ContractError as exc:
        raise Refused(f"agreement {agreement_id}: {exc}") from exc
    offer = session.get(Offer, document.get("tds:offer"))
    entry = session.get(CatalogEntry, document.get("target"))
    if offer is None or entry is None or offer.entry_id != entry.id or entry.provider_id != provider_id:
        raise Refused(
            f"agreement {agreement_id}: offer {document.get('tds:offer')} of dataset "
            f"{document.get('target')} is not an offer {provider_id} published"
        )
    verdict = export_list.check(
        exports, _export_fields(entry), parties[consumer_id].jurisdiction, document.get("tds:purpose")
    )
    if not verdict.allowed:
        raise Refused(f"agreement {agreement_id}: {verdict.describe()}", status=403)
    try:  # the contract's own terms: a price the space can settle, shares that add up
        parse_price(document.get("tds:price"))
        pricing.check_shares(session, provider_id, document.get("tds:revenueShare"))
    except (ContractError, Refused) as exc:
        raise Refused(f"agreement {agreement_id}: {getattr(exc, 'detail', exc)}") from exc
    agreement = Agreement(
        id=agreement_id,
        provider_id=provider_id,
        consumer_id=consumer_id,
        dataset_id=entry.id,
        offer_id=offer.id,
        signed=signed,
        state=State.FINALIZED,
    )
    session.add(agreement)
    session.flush()
    return agreement, True


def _export_fields(entry: CatalogEntry) -> dict[str, str]:
    return {"classification": entry.classification, "pi_level": entry.pi_level, "sector": entry.sector}


def get(session: Session, agreement_id: str) -> Agreement:
    agreement = session.get(Agreement, agreement_id)
    if agreement is None:
        raise NotFound(f"no agreement {agreement_id!r}")
    return agreement


def terminate(session: Session, agreement_id: str, by: str, reason: str, now: dt.datetime) -> Agreement:
    agreement = get(session, agreement_id)
    if by not in (agreement.provider_id, agreement.consumer_id, registry.SPACE_ID):
        raise Refused(f"{by} is not a party to agreement {agreement_id}", status=403)
    if agreement.state != State.TERMINATED:
        agreement.state = State.TERMINATED
        agreement.terminated_at = now
        agreement.terminated_by = by
        agreement.termination_reason = reason
    return agreement


def view(agreement: Agreement) -> dict[str, Any]:
    return {
        "id": agreement.id,
        "provider": agreement.provider_id,
        "consumer": agreement.consumer_id,
        "dataset": agreement.dataset_id,
        "offer": agreement.offer_id,
        "state": agreement.state,
        "recorded_at": agreement.recorded_at.isoformat(),
        "terminated_at": agreement.terminated_at.isoformat() if agreement.terminated_at else None,
        "terminated_by": agreement.terminated_by,
        "termination_reason": agreement.termination_reason,
        "signed": agreement.signed,
    }
