"""Settlement arithmetic (pure): fees per agreement, revenue shares in basis points, the
operator's commission, largest-remainder rounding in integer fen, and the price index.

Every split is exact: the parts of an amount always add up to the amount (largest-remainder
method: everyone gets the floor of their exact share, and the fen left over go one each to the
largest fractional remainders, ties to the earlier beneficiary).
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from contracts.errors import ContractError

FULL_BP = 10_000  # basis points in a whole
BENEFICIARY_ROLES = ("provider", "co-contributor", "service-provider")


class SettlementError(ContractError):
    pass


@dataclass(frozen=True)
class Share:
    party: str
    role: str
    bp: int

    def to_json(self) -> dict[str, Any]:
        return {"party": self.party, "role": self.role, "bp": self.bp}


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """``total`` fen split in proportion to ``weights``; the parts sum to ``total`` exactly."""
    if total < 0 or not weights or any(w < 0 for w in weights) or sum(weights) == 0:
        raise SettlementError(f"cannot split {total} fen by weights {list(weights)}")
    whole = sum(weights)
    floors = [total * w // whole for w in weights]
    remainders = [total * w % whole for w in weights]
    left = total - sum(floors)
    for index in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:left]:
        floors[index] += 1
    return floors


def parse_shares(raw: Any, provider: str | None) -> tuple[Share, ...]:
    """Revenue-share terms: beneficiaries with shares in basis points summing to 10 000; the
    provider alone (10 000) when an offer says nothing. ``provider`` None: not yet known."""
    if raw is None:
        if provider is None:
            raise SettlementError("revenue_share: the default share needs the provider")
        return (Share(provider, "provider", FULL_BP),)
    if not isinstance(raw, list) or not raw:
        raise SettlementError('revenue_share: expected a list of {"party", "role", "bp"}')
    shares = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping) or set(item) != {"party", "role", "bp"}:
            raise SettlementError(
                f'revenue_share[{i}]: expected exactly {{"party", "role", "bp"}}, got {item!r}'
            )
        party, role, bp = item["party"], item["role"], item["bp"]
        if not isinstance(party, str) or not party:
            raise SettlementError(f"revenue_share[{i}].party: expected a participant id")
        if role not in BENEFICIARY_ROLES:
            raise SettlementError(
                f"revenue_share[{i}].role: expected one of {list(BENEFICIARY_ROLES)}, got {role!r}"
            )
        if isinstance(bp, bool) or not isinstance(bp, int) or not 0 < bp <= FULL_BP:
            raise SettlementError(f"revenue_share[{i}].bp: expected whole basis points 1..10000, got {bp!r}")
        shares.append(Share(party, role, bp))
    total = sum(s.bp for s in shares)
    if total != FULL_BP:
        raise SettlementError(f"revenue_share: shares must sum to 10000 basis points, got {total}")
    if len({s.party for s in shares}) != len(shares):
        raise SettlementError("revenue_share: a party appears twice")
    if provider is not None and not any(s.party == provider and s.role == "provider" for s in shares):
        raise SettlementError(
            f"revenue_share: the provider {provider} must be a beneficiary with role provider"
        )
    return tuple(shares)


def split_fee(fee: int, commission_bp: int, shares: Sequence[Share]) -> tuple[int, list[int]]:
    """(the operator's commission, each beneficiary's amount) of one fee; they sum to ``fee``."""
    if not 0 <= commission_bp <= FULL_BP:
        raise SettlementError(f"commission: expected 0..10000 basis points, got {commission_bp}")
    if fee == 0:
        return 0, [0] * len(shares)
    commission, rest = allocate(fee, [commission_bp, FULL_BP - commission_bp])
    return commission, allocate(rest, [s.bp for s in shares]) if rest else [0] * len(shares)


@dataclass(frozen=True)
class Use:
    """One succeeded use in the log, as settlement sees it."""

    record_id: str
    agreement: str
    fee_fen: int  # as signed in the usage record
    units: int  # consumer items, for per_row prices


def agreement_fee(price: Mapping[str, Any], uses: Sequence[Use]) -> int:
    """The fee an agreement owes for its succeeded uses in a period, under its price terms.

    per_job and per_row: the fees signed into the usage records (checked against the price);
    subscription: the period's amount once, if the agreement was used in the period."""
    model, amount = price.get("model"), int(price.get("amount_fen", 0))
    if model == "subscription":
        return amount if uses else 0
    for use in uses:
        expected = amount if model == "per_job" else amount * use.units if model == "per_row" else 0
        if use.fee_fen != expected:
            raise SettlementError(
                f"usage record {use.record_id}: fee {use.fee_fen} fen, but agreement {use.agreement}'s "
                f"{model} price makes it {expected} fen"
            )
    return sum(use.fee_fen for use in uses)


def unit_price(price: Mapping[str, Any]) -> int:
    """The unit price the price index follows: the agreed amount per job, row or period."""
    return int(price.get("amount_fen", 0))


def chained_index(medians: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    """(period, index) with the first period at 100 and each later one chained to the one
    before it by the ratio of their medians (periods without uses are skipped)."""
    out: list[tuple[str, float]] = []
    previous: float | None = None
    level = 100.0
    for period, median in medians:
        if previous is not None and previous > 0:
            level *= median / previous
        out.append((period, round(level, 2)))
        previous = median
    return out


def median(values: Iterable[int]) -> float:
    return float(statistics.median(list(values)))


def period_of(when: dt.datetime, zone: str = "UTC") -> str:
    """The settlement period (a calendar month, YYYY-MM, in ``zone``) that ``when`` falls in."""
    local = when.astimezone(ZoneInfo(zone))
    return f"{local.year:04d}-{local.month:02d}"


def month_bounds(year: int, month: int, zone: str = "UTC") -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of a calendar month in ``zone`` (an IANA name), as UTC times."""
    tz = ZoneInfo(zone)
    start = dt.datetime(year, month, 1, tzinfo=tz)
    end = dt.datetime(year + month // 12, month % 12 + 1, 1, tzinfo=tz)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def window(
    month: tuple[dt.datetime, dt.datetime], before_ends: dt.datetime | None, after_starts: dt.datetime | None
) -> tuple[dt.datetime, dt.datetime]:
    """A period's [start, end): its month in the settlement zone, except that it begins where the
    settled period before it ended and ends where the settled period after it begins, so that
    changing the zone between two settlements neither bills a use twice nor leaves one out."""
    start, end = before_ends or month[0], after_starts or month[1]
    if not start < end:
        raise SettlementError(f"the period would be empty: it begins {start} and ends {end}")
    return start, end


def zone_name(raw: object) -> str:
    """A settlement zone, checked: an IANA time-zone name such as UTC or Asia/Shanghai."""
    try:
        ZoneInfo(str(raw))
    except (ValueError, ZoneInfoNotFoundError) as exc:
        raise SettlementError(
            f"settlement_zone: expected an IANA time zone such as UTC or Asia/Shanghai, got {raw!r}"
        ) from exc
    return str(raw)
