import copy
import re

import pytest
from sqlalchemy import func, select

from node.db import Database
from policies.negative_list import parse_rules
from space import catalog, registry
from space.errors import Conflict, Refused
from space.models import CatalogEntry, Offer
from space.settings import SpaceSettings
from space.setup import DEFAULT_NEGATIVE_LIST
from tests import dsp

RULES = parse_rules(DEFAULT_NEGATIVE_LIST)
OFFER = {
    "policy": {"permission": [{"action": "psi.cardinality"}]},
    "price": {"model": "per_job", "amount_fen": 100},
}
BODY = {
    "dataset": {
        "name": "subscribers",
        "title": "移动用户号码库 mobile subscribers",
        "description": "在网手机号码",
        "keywords": ["手机号", "phone"],
        "sector": "信息通信",
        "columns": [{"name": "phone", "type": "string", "tags": ["phone"]}],
        "key_column": "phone",
        "row_count": 1000,
        "profile": {"key_uniqueness": 1.0},
        "classification": "general",
        "pi_level": "general",
        "jurisdiction": "CN-HA",
    },
    "offers": [OFFER],
}


SETTINGS = SpaceSettings(guided_prices={"信息通信": {"per_job": 5000, "per_row": 2}})


def publish(db: Database, body: dict, provider: str = "telecom") -> CatalogEntry:
    with db.transaction() as session:
        return catalog.publish(session, registry.get(session, provider), body, RULES, SETTINGS)


def with_offer(**offer: object) -> dict:
    return {**BODY, "offers": [{**OFFER, **offer}]}


PUBLIC_INTEREST_ONLY = {
    "permission": [
        {
            "action": "psi.cardinality",
            "constraint": [
                {
                    "leftOperand": "purpose",
                    "operator": "isAnyOf",
                    "rightOperand": ["public-health", "education"],
                }
            ],
        }
    ]
}


@pytest.mark.parametrize(
    ("offer", "message"),
    [
        ({"price": {"model": "free"}}, "a free offer is for public-interest purposes only"),
        (
            {"public_data": True, "price": {"model": "per_job", "amount_fen": 5001}},
            "public data for industrial use in sector '信息通信': per_job price 5001 fen is above the "
            "operator's guided price of 5000 fen",
        ),
        (
            {"revenue_share": [{"party": "telecom", "role": "provider", "bp": 9000}]},
            "revenue_share: shares must sum to 10000 basis points, got 9000",
        ),
        (
            {
                "revenue_share": [
                    {"party": "telecom", "role": "provider", "bp": 5000},
                    {"party": "ghost", "role": "co-contributor", "bp": 5000},
                ]
            },
            "revenue_share: ['ghost'] are not participants of this space",
        ),
        (
            {"revenue_share": [{"party": "bank", "role": "provider", "bp": 10000}]},
            "revenue_share: the provider telecom must be a beneficiary with role provider",
        ),
        (
            {"price": {"model": "subscription", "amount_fen": 9, "period": "year"}},
            "subscriptions are per month",
        ),
    ],
)
def test_pricing_rules_refuse_offers(members: Database, offer: dict, message: str) -> None:
    with pytest.raises(Refused, match=re.escape(message)):
        publish(members, with_offer(**offer))
    with members.session() as session:
        assert session.scalar(select(func.count()).select_from(CatalogEntry)) == 0


@pytest.mark.parametrize(
    "offer",
    [
        {"price": {"model": "free"}, "policy": PUBLIC_INTEREST_ONLY},
        {"public_data": True, "price": {"model": "per_job", "amount_fen": 5000}},
        {
            "public_data": True,
            "price": {"model": "per_job", "amount_fen": 9000},
            "policy": PUBLIC_INTEREST_ONLY,
        },
        {"price": {"model": "per_job", "amount_fen": 9000}},  # not public data: no guided price
        {"price": {"model": "subscription", "amount_fen": 300000}},
        {
            "revenue_share": [
                {"party": "telecom", "role": "provider", "bp": 7000},
                {"party": "bank", "role": "co-contributor", "bp": 3000},
            ]
        },
    ],
)
def test_pricing_rules_accept_offers(members: Database, offer: dict) -> None:
    entry = publish(members, with_offer(**offer))
    with members.session() as session:
        (stored,) = catalog.offers_of(session, entry.id)
    assert stored.document["price"]["model"] == offer.get("price", OFFER["price"])["model"]  # type: ignore[index]
    assert stored.document["public_data"] is offer.get("public_data", False)
    assert stored.document.get("revenue_share") == offer.get("revenue_share")


def with_dataset(**change: object) -> dict:
    body = copy.deepcopy(BODY)
    body["dataset"].update(change)
    return body


def count(db: Database) -> tuple[int, int]:
    with db.session() as session:
        return (
            session.scalar(select(func.count()).select_from(CatalogEntry)) or 0,
            session.scalar(select(func.count()).select_from(Offer)) or 0,
        )


def test_publish_and_search(members: Database) -> None:
    entry = publish(members, BODY)
    assert entry.status == "published"
    publish(
        members,
        with_dataset(
            name="weather", title="气象 weather", description="降雨", keywords=["rain"], sector="气象服务"
        ),
    )
    with members.session() as session:
        assert [e.name for e in catalog.search(session, "手机号")] == ["subscribers"]
        assert [e.name for e in catalog.search(session, "MOBILE subscribers")] == ["subscribers"]
        assert [e.name for e in catalog.search(session, sector="气象服务")] == ["weather"]
        assert [e.name for e in catalog.search(session, operation="psi.cardinality")] != []
        assert catalog.search(session, operation="psi.intersection") == []
        assert catalog.search(session, "100%") == []  # LIKE wildcards are escaped
        view = catalog.entry_view(session, entry)
        assert view["offers"][0]["operations"] == ["psi.cardinality"]
        assert view["endpoint"] == "http://127.0.0.1:1/telecom"


def test_prohibited_entry_is_refused_naming_the_rule_and_nothing_is_stored(members: Database) -> None:
    with pytest.raises(Refused, match="prohibited by negative-list rule NL-001: core data") as caught:
        publish(members, with_dataset(classification="core"))
    assert caught.value.extra["rule"] == "NL-001"
    assert count(members) == (0, 0)


def test_restricted_entry_waits_for_review(members: Database) -> None:
    entry = publish(members, with_dataset(sector="医疗健康"))
    assert entry.status == "pending_review"
    assert (
        entry.review_rule
        == "restricted by rule NL-102: health data (医疗健康) needs operator review before publication"
    )
    with members.session() as session:
        assert catalog.search(session) == []
    with members.transaction() as session:
        catalog.review(session, entry.id, approve=True, note="ok")
    with members.session() as session:
        assert [e.id for e in catalog.search(session)] == [entry.id]
    with (
        members.transaction() as session,
        pytest.raises(Conflict, match="is published, not waiting for review"),
    ):
        catalog.review(session, entry.id, approve=False, note="")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"offers": [OFFER]}, r'expected \{"dataset"'),
        (with_dataset(classification="secret"), "dataset.classification: expected one of"),
        (with_dataset(key_column="nope"), "dataset.key_column 'nope' is not one of the columns"),
        (with_dataset(row_count=-1), "dataset.row_count"),
        (with_dataset(columns=[{"name": "phone", "type": "blob"}]), r"dataset.columns\[0\]"),
        ({**BODY, "offers": []}, "offers: expected at least one offer"),
        (
            {**BODY, "offers": [{**OFFER, "price": {"model": "per_job", "amount_fen": 0.5}}]},
            r"offers\[0\]: price.amount_fen",
        ),
    ],
)
def test_malformed_entries_change_nothing(members: Database, body: dict, message: str) -> None:
    with pytest.raises(Refused, match=message):
        publish(members, body)
    assert count(members) == (0, 0)


def test_consumer_only_participant_cannot_publish(members: Database) -> None:
    with members.transaction() as session:
        registry.get(session, "bank").roles = ["consumer"]
    with pytest.raises(Refused, match="bank is not registered as a provider"):
        publish(members, BODY, provider="bank")


def test_duplicate_name_conflicts(members: Database) -> None:
    publish(members, BODY)
    with pytest.raises(Conflict, match="already published a dataset named 'subscribers'"):
        publish(members, BODY)


def test_dcat_catalog_is_a_valid_dsp_catalog(members: Database) -> None:
    with members.session() as session:
        empty = catalog.dcat_catalog(session, "http://space")
    dsp.validate(empty, "catalog/catalog")
    publish(members, BODY)
    publish(members, with_dataset(name="held", sector="医疗健康"))  # pending: not in the catalog
    with members.session() as session:
        document = catalog.dcat_catalog(session, "http://space")
    dsp.validate(document, "catalog/catalog")
    assert [d["title"] for d in document["dataset"]] == ["移动用户号码库 mobile subscribers"]
    assert document["dataset"][0]["hasPolicy"][0]["permission"] == [{"action": "psi.cardinality"}]


@pytest.mark.parametrize(
    ("mock", "message"),
    [
        (7, "mock: expected the mock sample as CSV text of at most 1048576 characters"),
        (
            "x" * (catalog.MAX_MOCK + 1),
            "mock: expected the mock sample as CSV text of at most 1048576 characters",
        ),
        ("name\n1\n", "mock: expected a header of the entry's columns ['phone'], got ['name']"),
        ("", "mock: expected a header of the entry's columns ['phone'], got []"),
        ("phone\n1,2\n", "mock: every row must have the 1 columns of the header"),
        ('phone\n"13800\n', "mock: not CSV: unexpected end of data"),
    ],
)
def test_a_bad_mock_sample_is_refused_and_nothing_is_listed(
    members: Database, mock: object, message: str
) -> None:
    with pytest.raises(Refused) as caught:
        publish(members, {**BODY, "mock": mock})
    assert caught.value.detail == message
    with members.session() as session:
        assert session.scalar(select(func.count()).select_from(CatalogEntry)) == 0


def test_a_mock_sample_is_stored_and_served_in_the_dcat_catalog(members: Database) -> None:
    entry = publish(members, {**BODY, "mock": "phone\n19912345678\n"})
    with members.session() as session:
        assert catalog.entry_view(session, entry)["mock"] is True
        (listed,) = catalog.dcat_catalog(session, "http://space.test")["dataset"]
    assert entry.mock == "phone\n19912345678\n"
    assert listed["distribution"][1]["downloadURL"] == f"http://space.test/catalog/{entry.id}/mock.csv"
