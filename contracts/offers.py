"""Offers: what a provider lists for a dataset — policy, price and approval mode.

Offer file shape (``tds dataset publish NAME --offer offer.json``)::

    {"policy": {"permission": [{"action": "psi.cardinality", "constraint": [...]}]},
     "price": {"model": "per_job", "amount_fen": 5000},
     "auto_approve": true}

Prices are integers in fen (分), currency CNY. Models: ``free`` (amount 0), ``per_job``
(amount per succeeded job), ``per_row`` (amount per distinct consumer item matched against the
dataset in a succeeded job).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from contracts.errors import OfferError
from policies.errors import PolicyError
from policies.model import Policy, parse_policy

PRICE_MODELS = ("free", "per_job", "per_row")
MAX_AMOUNT_FEN = 10**12  # one hundred million yuan per unit: anything above is a typo


@dataclass(frozen=True)
class Price:
    model: str
    amount_fen: int

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "amount_fen": self.amount_fen, "currency": "CNY"}

    def fee_fen(self, consumer_set_size: int) -> int:
        """The fee of one succeeded use."""
        if self.model == "per_job":
            return self.amount_fen
        if self.model == "per_row":
            return self.amount_fen * consumer_set_size
        return 0


@dataclass(frozen=True)
class Offer:
    policy: Policy
    price: Price
    auto_approve: bool

    @property
    def operations(self) -> tuple[str, ...]:
        return self.policy.actions()

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy.to_json(),
            "price": self.price.to_json(),
            "auto_approve": self.auto_approve,
            "operations": list(self.operations),
        }


def parse_price(raw: object) -> Price:
    if not isinstance(raw, Mapping):
        raise OfferError('price: expected {"model": "free|per_job|per_row", "amount_fen": N}')
    model = raw.get("model")
    if model not in PRICE_MODELS:
        raise OfferError(f"price.model: expected one of {list(PRICE_MODELS)}, got {model!r}")
    currency = raw.get("currency", "CNY")
    if currency != "CNY":
        raise OfferError(f"price.currency: only CNY is settled, got {currency!r}")
    amount = raw.get("amount_fen", 0)
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise OfferError(
            f"price.amount_fen: expected a whole number of fen (1 yuan = 100 fen), got {amount!r}"
        )
    if not 0 <= amount <= MAX_AMOUNT_FEN:
        raise OfferError(f"price.amount_fen: expected 0 to {MAX_AMOUNT_FEN}, got {amount}")
    if model == "free" and amount != 0:
        raise OfferError(f"price: a free offer has amount_fen 0, got {amount}")
    if model != "free" and amount == 0:
        raise OfferError(f"price: a {model} offer needs a positive amount_fen; use model free")
    return Price(model=model, amount_fen=amount)


def parse_offer(raw: object) -> Offer:
    """Validate an offer document; raise OfferError naming the field that is wrong."""
    if not isinstance(raw, Mapping):
        raise OfferError(f"offer: expected a JSON object, got {type(raw).__name__}")
    unknown = set(raw) - {"policy", "price", "auto_approve", "operations", "id", "@id"}
    if unknown:
        raise OfferError(f"offer: unknown keys {sorted(unknown)}; expected policy, price, auto_approve")
    try:
        policy = parse_policy(raw.get("policy"))
    except PolicyError as exc:
        raise OfferError(f"offer.{exc}") from exc
    auto = raw.get("auto_approve", False)
    if not isinstance(auto, bool):
        raise OfferError(f"offer.auto_approve: expected true or false, got {auto!r}")
    return Offer(policy=policy, price=parse_price(raw.get("price")), auto_approve=auto)
