import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.errors import UsageRecordError
from contracts.usage import build_record, check_use, timestamp, validate_record
from tests.conftest import USAGE_FIELDS

FIELDS = USAGE_FIELDS


def test_valid_record() -> None:
    record = build_record(**FIELDS)
    assert record["@type"] == "tds:UsageRecord" and record["currency"] == "CNY"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"outcome": "maybe"}, "outcome: expected one of"),
        ({"fee_fen": 1.5}, "fee_fen: expected int"),
        ({"fee_fen": True}, "fee_fen: expected int"),
        (
            {"outcome": "denied"},
            "only a succeeded or withheld use carries a fee, never < 0; got 5000 for a denied",
        ),
        ({"outcome": "failed"}, "got 5000 for a failed use"),
        ({"finished_at": "not-a-date"}, "finished_at: expected an RFC 3339 UTC time such as"),
        ({"started_at": "2030-02-30T00:00:00Z"}, "started_at: '2030-02-30T00:00:00Z' is not a real time"),
        ({"started_at": "2026-11-27T08:00:00+08:00"}, "started_at: expected an RFC 3339 UTC time"),
        ({"started_at": "2999-01-01T00:00:00Z"}, "finished_at .* is before started_at 2999-01-01T00:00:00Z"),
        ({"consumer_set_size": -1}, r"consumer_set_size: expected 0..1000000000000 or null, got -1"),
        ({"provider_set_size": 10**13}, r"provider_set_size: expected 0..1000000000000 or null"),
        ({"operation": "psi.everything"}, r"operation: expected one of \['psi.cardinality'"),
        ({"reason": "x" * 2001}, "reason: at most 2000 characters, got 2001"),
        ({"agreement": "urn:" + "a" * 57}, "agreement: at most 60 characters, got 61"),  # the log's column
        ({"dataset": "d" * 61}, "dataset: at most 60 characters, got 61"),
        ({"consumer": "c" * 41}, "consumer: at most 40 characters, got 41"),
        ({"id": "cs-" + "0" * 40}, "ids starting cs- or dd- name the space's own leaves"),
        ({"fee_fen": -5}, "never < 0"),
        ({"consumer_set_size": "10"}, "consumer_set_size: expected int or null"),
        ({"extra": 1}, r"unknown fields \['extra'\]"),
    ],
)
def test_bad_records(change: dict, message: str) -> None:
    with pytest.raises(UsageRecordError, match=message):
        build_record(**{**FIELDS, **change})


def test_missing_field() -> None:
    record = build_record(**FIELDS)
    del record["job"]
    with pytest.raises(UsageRecordError, match=r"missing fields \['job'\]"):
        validate_record(record)


# --- a record against its agreement (contracts.usage.check_use) ------------------------------
AGREEMENT = {
    "@id": FIELDS["agreement"],
    "assigner": "telecom",
    "assignee": "bank",
    "target": FIELDS["dataset"],
    "tds:purpose": "risk-control",
    "tds:operations": ["psi.cardinality", "psi.intersection"],
    "tds:price": {"model": "per_job", "amount_fen": 5000, "currency": "CNY"},
}
NOW = timestamp(FIELDS, "finished_at") + dt.timedelta(hours=1)


def test_a_record_that_matches_its_agreement_passes() -> None:
    assert check_use(build_record(**FIELDS), AGREEMENT, None, NOW) is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"provider": "coop"},
            r"usage record provider: agreement urn:uuid:a says 'telecom', the record 'coop'",
        ),
        ({"consumer": "coop"}, r"usage record consumer: agreement urn:uuid:a says 'bank', the record 'coop'"),
        ({"dataset": "urn:uuid:other"}, r"dataset: agreement urn:uuid:a says 'urn:uuid:d'"),
        (
            {"purpose": "marketing"},
            r"purpose: agreement urn:uuid:a says 'risk-control', the record 'marketing'",
        ),
        ({"purpose": None}, r"purpose: agreement urn:uuid:a says 'risk-control', the record None"),
        ({"agreement": "urn:uuid:b"}, r"agreement: agreement urn:uuid:a says 'urn:uuid:a'"),
        ({"operation": "he.score"}, r"permits \['psi.cardinality', 'psi.intersection'\], not 'he.score'"),
        ({"fee_fen": 10**9}, r"per_job price of 5000 fen makes it 5000 fen .* the record says 1000000000"),
        ({"fee_fen": 0}, r"5000 fen for a succeeded use with consumer_set_size 10, the record says 0$"),
    ],
    ids=[
        "other-provider",
        "other-consumer",
        "other-dataset",
        "other-purpose",
        "no-purpose",
        "other-agreement",
        "operation-not-agreed",
        "inflated-fee",
        "no-fee",
    ],
)
def test_a_record_that_differs_from_its_agreement_is_refused(change: dict, message: str) -> None:
    with pytest.raises(UsageRecordError, match=message):
        check_use(build_record(**{**FIELDS, **change}), AGREEMENT, None, NOW)


def test_a_denial_may_lack_the_dataset_and_purpose_and_name_any_operation() -> None:
    denial = {**FIELDS, "outcome": "denied", "fee_fen": 0, "dataset": None, "purpose": None}
    assert check_use(build_record(**{**denial, "operation": "he.score"}), AGREEMENT, None, NOW) is None


def test_a_use_started_after_termination_is_refused_but_a_denial_is_not() -> None:
    started = timestamp(FIELDS, "started_at")
    with pytest.raises(UsageRecordError, match=r"was terminated at .*; only a denial may come after that"):
        check_use(build_record(**FIELDS), AGREEMENT, started, NOW)
    assert check_use(build_record(**FIELDS), AGREEMENT, started + dt.timedelta(seconds=1), NOW) is None
    denial = build_record(**{**FIELDS, "outcome": "denied", "fee_fen": 0})
    assert check_use(denial, AGREEMENT, started - dt.timedelta(days=1), NOW) is None


def test_a_use_that_finishes_in_the_future_is_refused() -> None:
    early = timestamp(FIELDS, "finished_at") - dt.timedelta(minutes=6)
    with pytest.raises(UsageRecordError, match=r"finished_at .* is in the future \(the space's clock: "):
        check_use(build_record(**FIELDS), AGREEMENT, None, early)


@given(
    model=st.sampled_from(["free", "per_job", "per_row", "subscription"]),
    amount=st.integers(1, 10**6),
    size=st.integers(0, 10**6),
    fee=st.integers(0, 10**12),
    outcome=st.sampled_from(["succeeded", "withheld"]),
    charge_withheld=st.booleans(),
)
def test_only_the_agreed_fee_passes(
    model: str, amount: int, size: int, fee: int, outcome: str, charge_withheld: bool
) -> None:
    amount = 0 if model == "free" else amount
    price = {"model": model, "amount_fen": amount, "currency": "CNY"}
    record = build_record(**{**FIELDS, "outcome": outcome, "consumer_set_size": size, "fee_fen": fee})
    agreed = {"per_job": amount, "per_row": amount * size}.get(model, 0)
    # exactly one fee passes: a withheld result is charged the agreed price unless the offer waived it
    allowed = {0} if outcome == "withheld" and not charge_withheld else {agreed}
    terms = {} if charge_withheld else {"tds:chargeWithheld": False}
    try:
        check_use(record, {**AGREEMENT, "tds:price": price, **terms}, None, NOW)
    except UsageRecordError:
        assert fee not in allowed
    else:
        assert fee in allowed
