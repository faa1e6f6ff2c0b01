import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.chain import GENESIS, ChainError, entry_hash, record_hash, verify_chain
from contracts.documents import new_signed
from contracts.errors import UsageRecordError
from contracts.usage import build_record, validate_record
from tests.conftest import ALICE, USAGE_FIELDS

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


def make_chain(n: int) -> list[dict]:
    entries, prev = [], GENESIS
    for i in range(n):
        signed = new_signed({**FIELDS, "id": f"urn:uuid:{i}"}, "telecom", ALICE)
        h = entry_hash(prev, record_hash(signed))
        entries.append({"seq": i, "signed": signed, "prev_hash": prev, "entry_hash": h})
        prev = h
    return entries


def test_intact_chain_verifies_to_its_head() -> None:
    chain = make_chain(5)
    assert verify_chain(chain, chain[-1]["entry_hash"]) == chain[-1]["entry_hash"]
    assert verify_chain([]) == GENESIS


def test_altered_record() -> None:
    chain = make_chain(5)
    chain[2]["signed"]["document"]["fee_fen"] = 1
    with pytest.raises(ChainError, match="entry 2: record does not hash to the stored entry hash"):
        verify_chain(chain)


def test_reordered_records() -> None:
    chain = make_chain(5)
    chain[1], chain[2] = chain[2], chain[1]
    with pytest.raises(ChainError, match="entry 1: sequence number is 2"):
        verify_chain(chain)


def test_removed_record() -> None:
    chain = make_chain(5)
    del chain[3]
    with pytest.raises(ChainError, match="entry 3: sequence number is 4"):
        verify_chain(chain)


def test_wrong_head() -> None:
    chain = make_chain(3)
    with pytest.raises(ChainError, match="the head says"):
        verify_chain(chain, GENESIS)


@given(st.integers(1, 8), st.data())
def test_any_single_change_is_detected(n: int, data: st.DataObject) -> None:
    chain = make_chain(n)
    victim = data.draw(st.integers(0, n - 1))
    tampered = copy.deepcopy(chain)
    tampered[victim]["signed"]["document"]["consumer_set_size"] += 1
    with pytest.raises(ChainError):
        verify_chain(tampered, chain[-1]["entry_hash"])
