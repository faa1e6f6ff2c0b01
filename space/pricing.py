"""The operator's pricing rules, checked when an offer is published and when an agreement is
recorded: free offers only for public-interest purposes; public data for industrial use at no
more than the guided price of its sector; revenue shares among registered participants that add
up to 10 000 basis points."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from contracts.errors import ContractError
from contracts.settlement import parse_shares
from space.errors import Refused
from space.models import Participant
from space.settings import SpaceSettings


def _purposes(rule: Mapping[str, Any]) -> set[str] | None:
    """The purposes a permission is limited to, or None when any purpose is allowed."""
    allowed: set[str] | None = None
    for constraint in rule.get("constraint", []):
        if constraint.get("leftOperand") != "purpose":
            continue
        right = constraint.get("rightOperand")
        values = (
            {right}
            if constraint.get("operator") == "eq"
            else set(right)
            if constraint.get("operator") == "isAnyOf"
            else None
        )
        if values is not None:
            allowed = values if allowed is None else allowed & values
    return allowed


def industrial_use_allowed(offer: Mapping[str, Any], public_interest: tuple[str, ...]) -> bool:
    """Whether some permission of ``offer`` allows a purpose outside the public-interest ones."""
    for rule in offer["policy"].get("permission", []):
        purposes = _purposes(rule)
        if purposes is None or not purposes <= set(public_interest):
            return True
    return False


def check_offer(
    session: Session, settings: SpaceSettings, provider: str, sector: str, offer: Mapping[str, Any]
) -> None:
    """Raises Refused naming the rule an offer (as parsed, in JSON form) breaks."""
    price = offer["price"]
    industrial = industrial_use_allowed(offer, settings.public_interest_purposes)
    if price["model"] == "free" and industrial:
        raise Refused(
            "a free offer is for public-interest purposes only: constrain purpose (eq or isAnyOf) to "
            f"{list(settings.public_interest_purposes)} in every permission, or set a price",
            kind="pricing",
        )
    if offer.get("public_data") and industrial and price["model"] != "free":
        guided = settings.guided_prices.get(sector, {}).get(price["model"])
        if guided is not None and price["amount_fen"] > guided:
            raise Refused(
                f"public data for industrial use in sector {sector!r}: {price['model']} price "
                f"{price['amount_fen']} fen is above the operator's guided price of {guided} fen",
                kind="pricing",
            )
    check_shares(session, provider, offer.get("revenue_share"))


def check_shares(session: Session, provider: str, raw: Any) -> None:
    try:
        shares = parse_shares(raw, provider)
    except ContractError as exc:
        raise Refused(str(exc), kind="pricing") from exc
    unknown = [s.party for s in shares if session.get(Participant, s.party) is None]
    if unknown:
        raise Refused(f"revenue_share: {unknown} are not participants of this space", kind="pricing")
