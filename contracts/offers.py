"""Offers: what a provider lists for a dataset — policy, price and approval mode.

Offer file shape (``tds dataset publish NAME --offer offer.json``)::

    {"policy": {"permission": [{"action": "psi.cardinality", "constraint": [...]}]},
     "price": {"model": "per_job", "amount_fen": 5000},
     "auto_approve": true}

Prices are integers in fen (分), currency CNY. Models: ``free`` (amount 0; only for
public-interest purposes, which the space checks), ``per_job`` (amount per succeeded job),
``per_row`` (amount per distinct consumer item matched against the dataset in a succeeded job),
``subscription`` (amount per calendar month in which the agreement is used; jobs carry no fee
of their own).

Optional terms: ``"public_data": true`` marks data held as public data (公共数据), whose prices
for industrial use the operator caps per sector; ``"revenue_share": [{"party", "role", "bp"}]``
splits each fee among beneficiaries in basis points summing to 10 000 (default: the provider
alone). The operator's commission comes off the top at settlement.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from contracts.errors import OfferError
from contracts.settlement import SettlementError, Share, parse_shares
from policies.errors import PolicyError
from policies.model import Policy, parse_policy

PRICE_MODELS = ("free", "per_job", "per_row", "subscription")
MAX_AMOUNT_FEN = 10**12  # one hundred million yuan per unit: anything above is a typo


@dataclass(frozen=True)
class Price:
    model: str
    amount_fen: int

    def to_json(self) -> dict[str, Any]:
        period = {"period": "month"} if self.model == "subscription" else {}
        return {"model": self.model, "amount_fen": self.amount_fen, "currency": "CNY", **period}

    def fee_fen(self, consumer_set_size: int) -> int:
        """The fee of one succeeded use (a subscription is charged per period at settlement)."""
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
    public_data: bool = False
    revenue_share: tuple[Share, ...] | None = None  # None: the provider alone
    # he.score: σ of the Gaussian noise the provider adds to each feature column before the
    # encrypted product, so that no model reads a feature exactly (a unit weight on one column
    # gets x + N(0, σ²)); columns not named get none
    score_noise: dict[str, float] | None = None
    # a result withheld because k was not met: charged the agreed price (the default: the use
    # and its ε count, and the provider computed it), or nothing
    charge_withheld: bool = True

    @property
    def operations(self) -> tuple[str, ...]:
        return self.policy.actions()

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy.to_json(),
            "price": self.price.to_json(),
            "auto_approve": self.auto_approve,
            "operations": list(self.operations),
            "public_data": self.public_data,
            **({"revenue_share": [s.to_json() for s in self.revenue_share]} if self.revenue_share else {}),
            **({"score_noise": dict(self.score_noise)} if self.score_noise else {}),
            **({"charge_withheld": False} if not self.charge_withheld else {}),
        }


def parse_price(raw: object) -> Price:
    if not isinstance(raw, Mapping):
        raise OfferError('price: expected {"model": "free|per_job|per_row", "amount_fen": N}')
    model = raw.get("model")
    if model not in PRICE_MODELS:
        raise OfferError(f"price.model: expected one of {list(PRICE_MODELS)}, got {model!r}")
    period = raw.get("period", "month")
    if model == "subscription" and period != "month":
        raise OfferError(f"price.period: subscriptions are per month, got {period!r}")
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


OFFER_KEYS = (
    "policy",
    "price",
    "auto_approve",
    "public_data",
    "revenue_share",
    "score_noise",
    "charge_withheld",
)
MAX_SIGMA = 1e12  # a σ above this is a typo, not a noise level


def parse_noise(raw: object) -> dict[str, float] | None:
    """``score_noise``: {column: σ ≥ 0}; None when absent."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or not raw:
        raise OfferError('offer.score_noise: expected {"column": sigma, ...} with at least one column')
    noise = {}
    for column, sigma in raw.items():
        if not isinstance(column, str) or not column:
            raise OfferError(f"offer.score_noise: expected column names, got {column!r}")
        if isinstance(sigma, bool) or not isinstance(sigma, int | float) or not 0 <= sigma <= MAX_SIGMA:
            raise OfferError(
                f"offer.score_noise.{column}: expected a standard deviation 0..{MAX_SIGMA:g}, got {sigma!r}"
            )
        noise[column] = float(sigma)
    return noise


def parse_offer(raw: object, provider: str | None = None) -> Offer:
    """Validate an offer document; raise OfferError naming the field that is wrong. With
    ``provider``, the revenue share must also name it as a beneficiary."""
    if not isinstance(raw, Mapping):
        raise OfferError(f"offer: expected a JSON object, got {type(raw).__name__}")
    unknown = set(raw) - {*OFFER_KEYS, "operations", "id", "@id"}
    if unknown:
        raise OfferError(f"offer: unknown keys {sorted(unknown)}; expected {', '.join(OFFER_KEYS)}")
    public = raw.get("public_data", False)
    if not isinstance(public, bool):
        raise OfferError(f"offer.public_data: expected true or false, got {public!r}")
    shares = None
    if raw.get("revenue_share") is not None:
        try:
            shares = parse_shares(raw["revenue_share"], provider)
        except SettlementError as exc:
            raise OfferError(f"offer.{exc}") from exc
    try:
        policy = parse_policy(raw.get("policy"))
    except PolicyError as exc:
        raise OfferError(f"offer.{exc}") from exc
    auto = raw.get("auto_approve", False)
    if not isinstance(auto, bool):
        raise OfferError(f"offer.auto_approve: expected true or false, got {auto!r}")
    charge_withheld = raw.get("charge_withheld", True)
    if not isinstance(charge_withheld, bool):
        raise OfferError(f"offer.charge_withheld: expected true or false, got {charge_withheld!r}")
    return Offer(
        policy=policy,
        price=parse_price(raw.get("price")),
        auto_approve=auto,
        public_data=public,
        revenue_share=shares,
        score_noise=parse_noise(raw.get("score_noise")),
        charge_withheld=charge_withheld,
    )


def agreed_fee(agreement: Mapping[str, Any], outcome: str, consumer_set_size: int | None) -> int:
    """The fee of one use under an agreement document, by the README's outcome table: the agreed
    price for a success, and for a withheld result too unless the offer said
    ``charge_withheld: false``; nothing otherwise. The provider bills by it and the space checks
    records by it, so both apply one rule."""
    if outcome not in ("succeeded", "withheld"):
        return 0
    if outcome == "withheld" and agreement.get("tds:chargeWithheld", True) is False:
        return 0
    return parse_price(agreement.get("tds:price")).fee_fen(consumer_set_size or 0)
