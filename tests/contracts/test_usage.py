import pytest

from contracts.errors import UsageRecordError
from contracts.usage import build_record, validate_record
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
        ({"outcome": "denied"}, "only a succeeded use carries a fee"),
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
