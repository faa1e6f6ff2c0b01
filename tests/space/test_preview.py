"""The provisional settlement of a period (space.preview): the statements as they would be if
the period closed now, unsigned, marked provisional, and nothing stored."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from contracts.settlement import period_of
from node.db import Database
from space import preview, settlement
from space.errors import Refused
from space.models import PricePoint, Settlement, Statement
from tests.space.test_settlement import NOW, SPACE, agreement, market, use  # noqa: F401

LATER = NOW + dt.timedelta(days=2)  # still in 2026-11, whose uses are below


def look(db: Database, period: str, at: dt.datetime = LATER, participant: str | None = None) -> dict:
    with db.session() as session:
        return preview.preview(session, period, 500, at, participant)


def stored(db: Database) -> tuple[int, int, int]:
    with db.session() as session:
        return tuple(
            session.scalar(select(func.count()).select_from(m)) for m in (Settlement, Statement, PricePoint)
        )  # type: ignore[return-value]


def test_the_open_period_as_it_would_settle_now(market: Database) -> None:  # noqa: F811
    shared = agreement(market, {"model": "per_job", "amount_fen": 999},
                       [{"party": "telecom", "role": "provider", "bp": 7000},
                        {"party": "coop", "role": "co-contributor", "bp": 3000}])  # fmt: skip
    use(market, shared, "2026-11-02T00:00:00Z", 999)
    use(market, shared, "2026-11-20T00:00:00Z", 999)
    use(market, shared, "2026-10-31T23:59:59Z", 999)  # the period before
    shown = look(market, "2026-11")
    assert (shown["@type"], shown["period"], shown["provisional"]) == (
        "tds:SettlementPreview",
        "2026-11",
        True,
    )
    assert (shown["as_of"], shown["closes_at"]) == ("2026-11-29T09:00:00Z", "2026-12-01T00:00:00Z")
    summary = shown["summary"]
    assert "settled_at" not in summary and summary["provisional"] is True
    assert [(a["uses"], a["fee_fen"], a["commission_fen"]) for a in summary["agreements"]] == [(2, 1998, 100)]
    assert [(s["party"], s["amount_fen"]) for s in summary["agreements"][0]["split"]] == [
        ("telecom", 1329), ("coop", 569)
    ]  # fmt: skip
    assert {who: s["net_fen"] for who, s in shown["statements"].items()} == {
        "bank": -1998, "coop": 569, "space": 100, "telecom": 1329
    }  # fmt: skip
    assert all("signatures" not in s and s["provisional"] for s in shown["statements"].values())
    assert stored(market) == (0, 0, 0)  # nothing issued, nothing indexed


def test_a_participant_sees_its_own_statement_only(market: Database) -> None:  # noqa: F811
    priced = agreement(market, {"model": "per_job", "amount_fen": 300})
    use(market, priced, "2026-11-03T00:00:00Z", 300)
    own = look(market, "2026-11", participant="bank")
    assert set(own) == {"@type", "period", "provisional", "as_of", "closes_at", "statements"}
    assert list(own["statements"]) == ["bank"] and own["statements"]["bank"]["payable_fen"] == 300
    assert look(market, "2026-11", participant="nobody")["statements"] == {}


def test_a_closed_but_unsettled_period_previews_and_a_settled_one_is_refused(market: Database) -> None:  # noqa: F811
    priced = agreement(market, {"model": "per_job", "amount_fen": 300})
    use(market, priced, "2026-10-03T00:00:00Z", 300)
    assert look(market, "2026-10")["summary"]["fees_fen"] == 300
    with market.write_lock, market.transaction() as session:
        settlement.settle(session, "2026-10", SPACE, 500, NOW)
    with pytest.raises(Refused, match=r"period 2026-10 is settled: read /settlements/2026-10, not a preview"):
        look(market, "2026-10")


@pytest.mark.parametrize(
    ("period", "message"),
    [
        ("2026-12", r"period 2026-12 has not begun \(it opens 2026-12-01T00:00:00Z\)"),
        ("2026-13", r"period: expected YYYY-MM \(e.g. 2026-11\), got '2026-13'"),
        ("", r"period: expected YYYY-MM"),
    ],
)
def test_periods_that_cannot_be_previewed(market: Database, period: str, message: str) -> None:  # noqa: F811
    with pytest.raises(Refused, match=message):
        look(market, period)
    assert stored(market) == (0, 0, 0)


def test_the_period_of_an_instant_is_its_utc_month() -> None:
    assert period_of(dt.datetime(2035, 1, 31, 23, 59, tzinfo=dt.UTC)) == "2035-01"
    assert period_of(dt.datetime(2025, 12, 1, tzinfo=dt.UTC)) == "2025-12"
    beijing = dt.timezone(dt.timedelta(hours=8))
    assert period_of(dt.datetime(2026, 12, 1, 7, 59, tzinfo=beijing)) == "2026-11"  # still November in UTC
