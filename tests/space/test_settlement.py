"""Settling a closed period from the log, on SQLite and PostgreSQL: fees by the agreed price,
commission and revenue shares that add up, signed statements as JSON and CSV, immutability,
and the price index."""

import csv
import datetime as dt
import io
import json
from typing import Any

import pytest

from contracts.agreements import build_agreement
from contracts.documents import new_signed, sign_document, verify_document
from contracts.keys import SigningKey
from contracts.offers import parse_offer
from contracts.settlement import SettlementError
from contracts.usage import build_record
from node.db import Database
from node.models import utcnow
from policies.negative_list import parse_rules
from space import agreements, catalog, ledger, preview, registry, settlement
from space.errors import Conflict, NotFound, Refused
from space.settings import SpaceSettings
from space.setup import DEFAULT_NEGATIVE_LIST
from tests.conftest import ALICE, BOB, MALLORY, USAGE_FIELDS
from tests.integration.helpers import CODES
from tests.space.conftest import fields

SPACE = SigningKey.from_seed(bytes(range(96, 128)))
NOW = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
KEYS = {"telecom": ALICE, "bank": BOB}


@pytest.fixture
def market(members: Database) -> Database:
    with members.transaction() as session:
        registry.register(session, fields("coop", MALLORY.public_key, CODES[2]))
        session.flush()
        registry.admit(session, "coop", SPACE, utcnow(), 365)
    return members


def agreement(
    db: Database,
    price: dict,
    shares: list | None = None,
    negotiated: dict | None = None,
    operations: tuple[str, ...] = ("psi.cardinality",),
    **terms: Any,
) -> str:
    """Publishes an entry with one offer (with other offer ``terms``) and records an agreement on
    it for ``operations``; returns its id."""
    offer = {"policy": {"permission": [{"action": op} for op in operations]}, "price": price, **terms}
    if shares:
        offer["revenue_share"] = shares
    body = {
        "dataset": {
            "name": f"d{len(price)}{price['amount_fen']}{len(shares or [])}{len(terms)}{len(operations)}",
            "title": "subscribers",
            "sector": "telecom",
            "columns": [{"name": "phone", "type": "string", "tags": ["phone"]}],
            "key_column": "phone",
            "row_count": 10,
            "classification": "general",
            "pi_level": "general",
            "jurisdiction": "CN-HA",
        },
        "offers": [offer],
    }
    with db.transaction() as session:
        entry = catalog.publish(
            session,
            registry.get(session, "telecom"),
            body,
            parse_rules(DEFAULT_NEGATIVE_LIST),
            SpaceSettings(),
        )
        (stored,) = catalog.offers_of(session, entry.id)
        parsed = parse_offer(stored.document, "telecom")
        document = build_agreement(
            offer_id=stored.id, offer=parsed, dataset_id=entry.id, provider="telecom", consumer="bank",
            purpose="risk-control", operations=list(operations), consumer_pid="urn:uuid:c",
            provider_pid="urn:uuid:p", now=NOW,
        )  # fmt: skip
        if negotiated:
            document["tds:price"] = negotiated  # agreed in the contract, not the listed price
        signed = sign_document(new_signed(document, "telecom", ALICE), "bank", BOB)
        agreements.record(session, "bank", signed)
        return str(document["@id"])


def use(
    db: Database, agreement_id: str, finished: str, fee: int, rows: int = 10, outcome: str = "succeeded"
) -> None:
    with db.session() as session:
        dataset = agreements.get(session, agreement_id).dataset_id
    fields_ = {**USAGE_FIELDS, "agreement": agreement_id, "fee_fen": fee if outcome == "succeeded" else 0,
               "dataset": dataset,
               "consumer_set_size": rows, "outcome": outcome, "finished_at": finished, "started_at": finished,
               "id": f"urn:uuid:{agreement_id[-6:]}{finished}{fee}{rows}{outcome}"}  # fmt: skip
    signed = sign_document(new_signed(build_record(**fields_), "telecom", ALICE), "bank", BOB)
    ledger.append(db, SPACE, "http://space.test", "bank", [signed], lambda: NOW)


def settle(db: Database, period: str, commission_bp: int = 500) -> tuple[dict, bool]:
    with db.write_lock, db.transaction() as session:
        row, created = settlement.settle(session, period, SPACE, commission_bp, NOW)
        return json.loads(row.summary), created


def statement(db: Database, period: str, who: str) -> tuple[dict, str]:
    with db.session() as session:
        found = settlement.statement(session, period, who)
        return json.loads(found.signed_json), found.csv


def test_a_period_settles_from_succeeded_uses_with_exact_shares(market: Database) -> None:
    shared = agreement(market, {"model": "per_job", "amount_fen": 999},
                       [{"party": "telecom", "role": "provider", "bp": 7000},
                        {"party": "coop", "role": "co-contributor", "bp": 3000}])  # fmt: skip
    rows = agreement(market, {"model": "per_row", "amount_fen": 3})
    monthly = agreement(market, {"model": "subscription", "amount_fen": 50000})
    for finished in ("2026-10-01T00:00:00Z", "2026-10-31T23:59:59Z"):
        use(market, shared, finished, 999)
    use(market, shared, "2026-10-15T00:00:00Z", 0, outcome="denied")  # not a use that counts
    use(market, shared, "2026-11-01T00:00:00Z", 999)  # the next period
    use(market, rows, "2026-10-10T00:00:00Z", 3 * 123, rows=123)
    use(market, monthly, "2026-10-11T00:00:00Z", 0)
    use(market, monthly, "2026-10-12T00:00:00Z", 0)

    summary, created = settle(market, "2026-10")
    assert created
    doc = summary["document"]
    verify_document(summary, ["space"], lambda _: SPACE.public_key)
    fees = {a["agreement"]: (a["uses"], a["fee_fen"], a["commission_fen"]) for a in doc["agreements"]}
    assert fees == {shared: (2, 1998, 100), rows: (1, 369, 18), monthly: (2, 50000, 2500)}
    assert doc["fees_fen"] == 52367 and doc["commission_fen"] == 2618
    split = {a["agreement"]: [(s["party"], s["amount_fen"]) for s in a["split"]] for a in doc["agreements"]}
    assert split[shared] == [("telecom", 1329), ("coop", 569)]  # 1898 fen after commission, 70/30
    assert doc["log"]["tree_size"] == 7

    statements = {who: statement(market, "2026-10", who) for who in ("bank", "telecom", "coop", "space")}
    for signed, _ in statements.values():
        verify_document(signed, ["space"], lambda _: SPACE.public_key)
    assert statements["bank"][0]["document"]["payable_fen"] == 52367
    received = sum(statements[w][0]["document"]["receivable_fen"] for w in ("telecom", "coop", "space"))
    assert received == 52367  # every fen paid is received by someone
    rows_csv = list(csv.DictReader(io.StringIO(statements["coop"][1])))
    expected = {"period": "2026-10", "participant": "coop", "agreement": shared, "role": "co-contributor"}
    expected |= {"uses": "2", "fee_fen": "1998", "share_bp": "3000", "amount_fen": "569"}
    assert rows_csv[0] == expected
    assert rows_csv[-1]["role"] == "net" and rows_csv[-1]["amount_fen"] == "569"


def test_a_negotiated_price_overrides_the_listed_one(market: Database) -> None:
    negotiated = agreement(
        market,
        {"model": "per_job", "amount_fen": 5000},
        negotiated={"model": "per_job", "amount_fen": 4000, "currency": "CNY"},
    )
    use(market, negotiated, "2026-10-03T00:00:00Z", 4000)
    doc = settle(market, "2026-10")[0]["document"]
    assert [(a["fee_fen"], a["price"]["amount_fen"]) for a in doc["agreements"]] == [(4000, 4000)]


def test_a_record_whose_fee_contradicts_the_agreement_is_refused_at_the_log(market: Database) -> None:
    listed = agreement(market, {"model": "per_job", "amount_fen": 5000})
    with pytest.raises(Refused, match=r"per_job price of 5000 fen makes it 5000 fen .* the record says 4999"):
        use(market, listed, "2026-10-03T00:00:00Z", 4999)
    summary = settle(market, "2026-10")[0]["document"]
    assert (summary["fees_fen"], summary["agreements"]) == (0, [])


def test_a_settled_period_is_immutable_and_reruns_give_the_same_bytes(market: Database) -> None:
    listed = agreement(market, {"model": "per_job", "amount_fen": 100})
    use(market, listed, "2026-10-03T00:00:00Z", 100)
    first, _ = settle(market, "2026-10")
    bank_before = statement(market, "2026-10", "bank")
    use(market, listed, "2026-11-02T00:00:00Z", 100)  # a later period: no change to October
    again, created = settle(market, "2026-10", commission_bp=9000)  # new settings don't reach back
    assert (created, again) == (False, first)
    assert statement(market, "2026-10", "bank") == bank_before
    use(market, listed, "2026-10-30T00:00:00Z", 100)  # a late use for the settled period
    with pytest.raises(Conflict, match="period 2026-10 was settled over 1 uses; the log now holds 2 for it"):
        settle(market, "2026-10")
    assert statement(market, "2026-10", "bank") == bank_before


@pytest.mark.parametrize(
    ("period", "message"),
    [
        ("2026-11", "period 2026-11 is not over until 2026-12-01T00:00:00Z"),
        ("2026-13", "expected YYYY-MM"),
        ("oct", "expected YYYY-MM"),
    ],
)
def test_open_or_malformed_periods_are_refused(market: Database, period: str, message: str) -> None:
    with pytest.raises(Refused, match=message):
        settle(market, period)


def test_the_price_index_is_chained_per_sector(market: Database) -> None:
    cheap = agreement(market, {"model": "per_job", "amount_fen": 100})
    dear = agreement(market, {"model": "per_job", "amount_fen": 300})
    use(market, cheap, "2026-09-03T00:00:00Z", 100)
    use(market, dear, "2026-09-04T00:00:00Z", 300)  # September median 200
    use(market, dear, "2026-10-04T00:00:00Z", 300)  # October median 300
    settle(market, "2026-09")
    settle(market, "2026-10")
    with market.session() as session:
        points = settlement.index(session, "telecom")
    assert [(p["period"], p["uses"], p["median_unit_fen"], p["chained_index"]) for p in points] == [
        ("2026-09", 2, 200.0, 100.0),
        ("2026-10", 1, 300.0, 150.0),
    ]


def test_a_settlement_zone_applies_only_to_periods_not_yet_settled(market: Database) -> None:
    deal = agreement(market, {"model": "per_job", "amount_fen": 100})
    later = dt.datetime(2026, 12, 5, tzinfo=dt.UTC)
    # 20:00 UTC on 31 October is 1 November in Beijing; 16:00 UTC on 30 November is 1 December there
    finishes = (
        "2026-10-31T20:00:00Z",
        "2026-11-01T01:00:00Z",
        "2026-11-30T15:59:59Z",
        "2026-11-30T16:00:00Z",
    )
    for finished in finishes:
        fields_ = {**USAGE_FIELDS, "agreement": deal, "fee_fen": 100, "finished_at": finished,
                   "started_at": finished, "id": f"urn:uuid:z{finished}"}  # fmt: skip
        with market.session() as session:
            fields_["dataset"] = agreements.get(session, deal).dataset_id
        signed = sign_document(new_signed(build_record(**fields_), "telecom", ALICE), "bank", BOB)
        ledger.append(market, SPACE, "http://space.test", "bank", [signed], lambda: later)

    def settle_in(period: str, zone: str) -> tuple[dict[str, Any], bool]:
        with market.write_lock, market.transaction() as session:
            row, created = settlement.settle(session, period, SPACE, 500, later, zone)
            return json.loads(row.summary)["document"], created

    october, _ = settle_in("2026-10", "UTC")
    assert "window" not in october and october["fees_fen"] == 100  # as every UTC month settled before
    # the operator moves to Beijing time: November begins where the settled October ended, not at
    # 31 October 16:00 UTC (which would bill the 20:00 use twice), and ends at Beijing's month end
    november, created = settle_in("2026-11", "Asia/Shanghai")
    assert created and november["window"] == {
        "zone": "Asia/Shanghai", "start": "2026-11-01T00:00:00Z", "end": "2026-11-30T16:00:00Z",
    }  # fmt: skip
    assert november["fees_fen"] == 200
    again, created = settle_in("2026-11", "UTC")  # settled: its times stay what it signed
    assert (again, created) == (november, False)
    with market.session() as session:
        december = preview.preview(session, "2026-12", 500, later, None, "Asia/Shanghai")
        assert december["summary"]["fees_fen"] == 100 and december["closes_at"] == "2026-12-31T16:00:00Z"
        with pytest.raises(
            NotFound, match=r"period 2026-12 is still open: it can be settled from 2026-12-31T16:00:00Z"
        ):
            settlement.get(session, "2026-12", later, "Asia/Shanghai")


def test_the_settlement_zone_is_an_iana_zone() -> None:
    assert SpaceSettings.from_options({"settlement_zone": "Asia/Shanghai"}).settlement_zone == "Asia/Shanghai"
    assert SpaceSettings.from_options({}).settlement_zone == "UTC"  # as every space settled until now
    with pytest.raises(SettlementError, match=r"settlement_zone: expected an IANA time zone .* got 'CST\+8'"):
        SpaceSettings.from_options({"settlement_zone": "CST+8"})


def test_the_uses_per_day_are_counted_in_the_settlement_zone(market: Database) -> None:
    from sqlalchemy import select

    from space.models import DailyUsage

    deal = agreement(market, {"model": "per_job", "amount_fen": 100})
    with market.session() as session:
        dataset = agreements.get(session, deal).dataset_id
    later = dt.datetime(2026, 12, 5, tzinfo=dt.UTC)
    for finished, zone in (("2026-11-30T17:00:00Z", "Asia/Shanghai"), ("2026-11-30T17:30:00Z", "UTC")):
        fields_ = {**USAGE_FIELDS, "agreement": deal, "fee_fen": 100, "finished_at": finished,
                   "started_at": finished, "dataset": dataset, "id": f"urn:uuid:d{finished}"}  # fmt: skip
        signed = sign_document(new_signed(build_record(**fields_), "telecom", ALICE), "bank", BOB)
        ledger.append(market, SPACE, "http://space.test", "bank", [signed], lambda: later, zone)
    with market.session() as session:
        days = {(r.day, r.outcome): r.uses for r in session.scalars(select(DailyUsage))}
    # 17:00 UTC on 30 November is 1 December in Beijing; the same hour counted in UTC stays in November
    assert days == {("2026-12-01", "succeeded"): 1, ("2026-11-30", "succeeded"): 1}
