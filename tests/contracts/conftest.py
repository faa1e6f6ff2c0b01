import datetime as dt
from typing import Any

from contracts.agreements import build_agreement
from contracts.offers import Offer

NOW = dt.datetime(2026, 11, 27, 8, 0, tzinfo=dt.UTC)


def agreement(offer: Offer, **overrides: Any) -> dict[str, Any]:
    """An agreement between telecom (provider) and bank (consumer) for ``offer``."""
    args: dict[str, Any] = dict(
        offer_id="urn:uuid:o",
        offer=offer,
        dataset_id="urn:uuid:d",
        provider="telecom",
        consumer="bank",
        purpose="risk-control",
        operations=["psi.cardinality"],
        consumer_pid="urn:uuid:c",
        provider_pid="urn:uuid:p",
        now=NOW,
    )
    args.update(overrides)
    return build_agreement(**args)
