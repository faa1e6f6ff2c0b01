import datetime as dt
import json

import jsonschema
import pytest

from contracts.agreements import (
    State,
    StateTransitionError,
    advance,
    agreement_policy,
    build_agreement,
    check_agreement_matches,
)
from contracts.errors import AgreementError, OfferError
from contracts.offers import agreed_fee, parse_offer
from tests import dsp
from tests.conftest import TESTDATA
from tests.contracts import conftest

NOW = dt.datetime(2026, 11, 27, 8, 0, tzinfo=dt.UTC)
OFFER = {
    "policy": {
        "permission": [
            {
                "action": "psi.cardinality",
                "constraint": [{"leftOperand": "count", "operator": "lteq", "rightOperand": 2}],
            },
            {"action": "psi.intersection"},
        ],
        "prohibition": [
            {
                "action": "psi.intersection",
                "constraint": [
                    {"leftOperand": "jurisdiction", "operator": "isNoneOf", "rightOperand": ["CN"]}
                ],
            }
        ],
    },
    "price": {"model": "per_row", "amount_fen": 2},
    "auto_approve": True,
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"price": {"model": "per_job", "amount_fen": 12.5}}, "expected a whole number of fen"),
        ({"price": {"model": "per_job", "amount_fen": -1}}, "expected 0 to"),
        ({"price": {"model": "free", "amount_fen": 5}}, "a free offer has amount_fen 0"),
        ({"price": {"model": "per_job"}}, "needs a positive amount_fen"),
        ({"price": {"model": "auction", "amount_fen": 5}}, "price.model: expected one of"),
        ({"price": {"model": "per_job", "amount_fen": 5, "currency": "USD"}}, "only CNY"),
        ({"auto_approve": "yes"}, "expected true or false"),
        ({"policy": {"permission": [{"action": "download"}]}}, "offer.policy .* unknown action"),
        ({"discount": 1}, r"unknown keys \['discount'\]"),
        ({"charge_withheld": "no"}, "offer.charge_withheld: expected true or false, got 'no'"),
    ],
)
def test_bad_offers(change: dict, message: str) -> None:
    with pytest.raises(OfferError, match=message):
        parse_offer({**OFFER, **change})


@pytest.mark.parametrize(
    ("terms", "outcome", "fee"),
    [
        ({}, "succeeded", 2000),
        ({}, "withheld", 2000),
        ({"tds:chargeWithheld": False}, "withheld", 0),
        ({"tds:chargeWithheld": False}, "succeeded", 2000),
        ({}, "failed", 0),
        ({}, "denied", 0),
    ],
)
def test_the_fee_of_a_use_follows_the_outcome_table(terms: dict, outcome: str, fee: int) -> None:
    agreement = {"tds:price": {"model": "per_row", "amount_fen": 2}, **terms}
    assert agreed_fee(agreement, outcome, 1000) == fee


def test_an_offer_that_waives_withheld_results_says_so_in_its_agreement() -> None:
    waived = parse_offer({**OFFER, "charge_withheld": False})
    assert (waived.charge_withheld, waived.to_json()["charge_withheld"]) == (False, False)
    assert "charge_withheld" not in parse_offer(OFFER).to_json()  # the default keeps offers as they were
    document = build_agreement(
        offer_id="urn:uuid:o", offer=waived, dataset_id="urn:uuid:d", provider="telecom", consumer="bank",
        purpose="risk-control", operations=["psi.cardinality"], consumer_pid="urn:uuid:c",
        provider_pid="urn:uuid:p", now=NOW,
    )  # fmt: skip
    assert document["tds:chargeWithheld"] is False


def test_fees_in_integer_fen() -> None:
    offer = parse_offer(OFFER)
    assert offer.price.fee_fen(1000) == 2000
    assert (
        parse_offer({**OFFER, "price": {"model": "per_job", "amount_fen": 5000}}).price.fee_fen(10**6) == 5000
    )
    assert parse_offer({**OFFER, "price": {"model": "free", "amount_fen": 0}}).price.fee_fen(10) == 0
    assert offer.operations == ("psi.cardinality", "psi.intersection")


def test_state_machine_follows_dsp() -> None:
    state = State.REQUESTED
    for target in (State.AGREED, State.VERIFIED, State.FINALIZED, State.TERMINATED):
        state = advance(state, target)
    assert state is State.TERMINATED
    with pytest.raises(StateTransitionError, match="negotiation is TERMINATED; cannot move to AGREED"):
        advance(State.TERMINATED, State.AGREED)
    with pytest.raises(
        StateTransitionError, match=r"cannot move to FINALIZED \(allowed: AGREED, OFFERED, TERMINATED\)"
    ):
        advance(State.REQUESTED, State.FINALIZED)
    with pytest.raises(StateTransitionError):
        advance(State.AGREED, State.REQUESTED)


def agreement(**overrides: object) -> dict:
    return conftest.agreement(parse_offer(OFFER), **overrides)


def test_agreement_pins_consumer_purpose_and_operations() -> None:
    document = agreement()
    policy = agreement_policy(document)
    assert policy.actions() == ("psi.cardinality",)
    constraints = {c.describe() for c in policy.permissions[0].constraints}
    assert constraints == {"count lteq 2", "purpose eq risk-control", "recipient eq bank"}
    assert document["tds:price"] == {"model": "per_row", "amount_fen": 2, "currency": "CNY"}
    assert "prohibition" not in document  # only rules of requested operations are kept


def test_dsp_examples_are_accepted_by_the_validator_and_bad_ones_refused() -> None:
    example = json.loads(
        (TESTDATA / "dsp-2025-1/negotiation/example/contract-request-message_initial.json").read_text()
    )
    dsp.validate(example, "negotiation/contract-request-message")
    del example["consumerPid"]
    with pytest.raises(jsonschema.ValidationError, match="'consumerPid' is a required property"):
        dsp.validate(example, "negotiation/contract-request-message")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"assignee": "mallory"}, "agreement field assignee: expected 'bank', got 'mallory'"),
        ({"tds:purpose": "marketing"}, "agreement field tds:purpose"),
        ({"tds:operations": ["psi.cardinality", "psi.intersection"]}, "agreement field tds:operations"),
        ({"permission": [{"action": "psi.intersection"}]}, "more than requested"),
        ({"tds:price": {"model": "per_job", "amount_fen": 1.5}}, "whole number of fen"),
        ({"tds:price": {"model": "per_job", "amount_fen": 5001}}, "agreement field tds:price: expected"),
    ],
)
def test_consumer_refuses_an_agreement_it_did_not_ask_for(change: dict, message: str) -> None:
    document = {**agreement(), **change}
    with pytest.raises((AgreementError, OfferError), match=message):
        check_agreement_matches(
            document,
            offer_id="urn:uuid:o",
            dataset_id="urn:uuid:d",
            provider="telecom",
            consumer="bank",
            purpose="risk-control",
            operations=["psi.cardinality"],
            price=agreement()["tds:price"],  # the price the consumer accepted
        )
