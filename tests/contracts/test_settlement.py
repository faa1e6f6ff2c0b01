"""Settlement arithmetic: exact splits by largest remainder, shares, fees, the chained index,
the months of a settlement zone."""

import datetime as dt
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.settlement import (
    FULL_BP,
    SettlementError,
    Share,
    Use,
    agreement_fee,
    allocate,
    chained_index,
    month_bounds,
    parse_shares,
    period_of,
    split_fee,
    window,
    zone_name,
)


@given(st.integers(0, 10**12), st.lists(st.integers(0, 10_000), min_size=1, max_size=12).filter(any))
def test_parts_always_add_up_and_stay_within_one_fen_of_the_exact_share(total: int, weights: list) -> None:
    parts = allocate(total, weights)
    assert sum(parts) == total
    for part, weight in zip(parts, weights, strict=True):
        exact = total * weight / sum(weights)
        assert exact - 1 < part < exact + 1 and part >= 0


@given(
    st.integers(0, 10**10),
    st.integers(0, FULL_BP),
    st.lists(st.integers(1, 100), min_size=1, max_size=8),
)
def test_a_fee_splits_exactly_into_commission_and_shares(fee: int, commission_bp: int, raw: list) -> None:
    bps = allocate(FULL_BP, raw)  # shares that sum to 10 000
    roles = ["provider"] + ["co-contributor"] * len(bps)
    shares = [Share(f"p{i}", roles[i], bp) for i, bp in enumerate(bps) if bp]
    commission, parts = split_fee(fee, commission_bp, shares)
    assert commission + sum(parts) == fee


def test_largest_remainder_gives_leftover_fen_to_the_largest_fractions_then_the_earlier() -> None:
    assert allocate(100, [1, 1, 1]) == [34, 33, 33]
    assert allocate(10, [3333, 3333, 3334]) == [3, 3, 4]
    shares = [Share("t", "provider", 7000), Share("c", "co-contributor", 3000)]
    assert split_fee(999, 500, shares) == (50, [664, 285])


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([{"party": "t", "role": "provider", "bp": 9999}], "shares must sum to 10000 basis points, got 9999"),
        ([{"party": "t", "role": "provider", "bp": 10000.0}], "expected whole basis points 1..10000"),
        ([{"party": "t", "role": "owner", "bp": 10000}], "role: expected one of"),
        ([{"party": "t", "role": "provider", "bp": 5000}] * 2, "a party appears twice"),
        ([{"party": "x", "role": "provider", "bp": 10000}], "the provider t must be a beneficiary"),
        ([{"party": "t", "bp": 10000}], 'expected exactly {"party", "role", "bp"}'),
        ([], "expected a list"),
    ],
)
def test_bad_shares_are_refused(raw: object, message: str) -> None:
    with pytest.raises(SettlementError, match=message.replace("(", r"\(").replace("{", r"\{")):
        parse_shares(raw, "t")


def test_no_shares_means_the_provider_alone() -> None:
    assert parse_shares(None, "t") == (Share("t", "provider", FULL_BP),)


def test_fees_follow_the_agreed_price() -> None:
    uses = [Use("r1", "a", 300, 100), Use("r2", "a", 600, 200)]
    assert agreement_fee({"model": "per_row", "amount_fen": 3}, uses) == 900
    assert agreement_fee({"model": "subscription", "amount_fen": 50000}, uses) == 50000
    assert agreement_fee({"model": "subscription", "amount_fen": 50000}, []) == 0
    with pytest.raises(SettlementError, match="usage record r1: fee 300 fen, but agreement a's per_job"):
        agreement_fee({"model": "per_job", "amount_fen": 5000}, uses)


def test_the_index_is_chained_to_the_first_period() -> None:
    assert chained_index([("2026-09", 100.0), ("2026-10", 110.0), ("2026-11", 99.0)]) == [
        ("2026-09", 100.0),
        ("2026-10", 110.0),
        ("2026-11", 99.0),
    ]
    assert chained_index([("2026-09", 50.0), ("2026-10", 75.0)]) == [("2026-09", 100.0), ("2026-10", 150.0)]


ZONES = ("UTC", "Asia/Shanghai", "America/Los_Angeles", "Pacific/Kiritimati", "Pacific/Pago_Pago")


@given(st.lists(st.sampled_from(ZONES), min_size=2, max_size=14))
def test_periods_settled_in_order_under_changing_zones_tile_time(zones: list[str]) -> None:
    """Each month settled in the zone of its day: together they cover time once, no gap, no overlap."""
    spans, end = [], None
    for i, zone in enumerate(zones):
        year, month = 2026 + (i // 12), i % 12 + 1
        span = window(month_bounds(year, month, zone), end, None)
        spans.append(span)
        end = span[1]
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
    assert all(start < stop for start, stop in spans)
    assert (
        spans[-1][1] == month_bounds(2026 + (len(zones) - 1) // 12, (len(zones) - 1) % 12 + 1, zones[-1])[1]
    )


def test_months_and_periods_in_a_zone() -> None:
    start, end = month_bounds(2026, 12, "Asia/Shanghai")
    assert (start.isoformat(), end.isoformat()) == ("2026-11-30T16:00:00+00:00", "2026-12-31T16:00:00+00:00")
    assert period_of(dt.datetime(2026, 11, 30, 17, tzinfo=dt.UTC), "Asia/Shanghai") == "2026-12"
    assert period_of(dt.datetime(2026, 11, 30, 17, tzinfo=dt.UTC)) == "2026-11"
    with pytest.raises(
        SettlementError, match="expected an IANA time zone such as UTC or Asia/Shanghai, got 'Mars/Olympus'"
    ):
        zone_name("Mars/Olympus")
    with pytest.raises(SettlementError, match="the period would be empty"):
        window((start, end), end, None)
