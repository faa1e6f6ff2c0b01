import pytest
from sqlalchemy import select

from contracts.chain import verify_chain
from contracts.documents import new_signed, sign_document
from contracts.usage import build_record
from node.db import Database
from space import ledger
from space.errors import Conflict, NotFound, Refused
from space.models import LedgerEntry
from tests.conftest import ALICE, BOB, MALLORY, USAGE_FIELDS

RECORD = {**build_record(**USAGE_FIELDS)}


def record(i: int, **change: object) -> dict:
    signed = new_signed({**RECORD, "id": f"urn:uuid:r{i}", **change}, "telecom", ALICE)
    return sign_document(signed, "bank", BOB)


def append(db: Database, signed: dict, caller: str = "bank") -> tuple[dict, bool]:
    with db.write_lock, db.transaction() as session:
        entry, created = ledger.append(session, caller, signed)
        return ledger.receipt(entry, ledger.head(session)), created


def chain(db: Database) -> list[dict]:
    with db.session() as session:
        return [ledger.view(e) for e in session.scalars(select(LedgerEntry).order_by(LedgerEntry.seq))]


def test_appends_chain_and_verify(members: Database) -> None:
    receipts = [append(members, record(i))[0] for i in range(5)]
    assert [r["seq"] for r in receipts] == [0, 1, 2, 3, 4]
    assert receipts[-1]["head"]["size"] == 5
    assert verify_chain(chain(members), receipts[-1]["head"]["hash"]) == receipts[-1]["entry_hash"]


def test_same_record_twice_is_counted_once(members: Database) -> None:
    first, created = append(members, record(1))
    again, created_again = append(members, record(1), caller="telecom")
    assert (created, created_again) == (True, False)
    assert again["seq"] == first["seq"] and again["head"]["size"] == 1


def test_same_id_with_other_content_conflicts(members: Database) -> None:
    append(members, record(1))
    with pytest.raises(Conflict, match="already in the ledger with different content"):
        append(members, record(1, fee_fen=1))
    assert len(chain(members)) == 1


def test_provider_alone_may_append_but_a_forged_consumer_signature_is_refused(members: Database) -> None:
    alone = new_signed({**RECORD, "id": "urn:uuid:alone"}, "telecom", ALICE)
    assert append(members, alone, caller="telecom")[1]
    forged = sign_document(new_signed({**RECORD, "id": "urn:uuid:f"}, "telecom", ALICE), "bank", MALLORY)
    with pytest.raises(Refused, match="signature of bank: signature does not verify"):
        append(members, forged)


@pytest.mark.parametrize(
    ("signed", "caller", "message"),
    [
        (
            new_signed({**RECORD, "id": "urn:uuid:x"}, "bank", BOB),
            "bank",
            r"missing \['telecom'\]|unexpected signers",
        ),
        (new_signed({**RECORD, "id": "urn:uuid:x"}, "telecom", MALLORY), "telecom", "signature of telecom"),
        ({"document": {**RECORD, "id": "urn:uuid:x", "fee_fen": -1}, "signatures": {}}, "bank", "never < 0"),
        ({"not": "a record"}, "bank", "expected a signed usage record"),
        (new_signed({**RECORD, "id": "urn:uuid:x"}, "telecom", ALICE), "mallory", "mallory is not a party"),
    ],
)
def test_refusals_append_nothing(members: Database, signed: dict, caller: str, message: str) -> None:
    with pytest.raises(Refused, match=message):
        append(members, signed, caller)
    assert chain(members) == []


def test_unknown_party(members: Database) -> None:
    signed = new_signed({**RECORD, "id": "urn:uuid:x", "provider": "ghost"}, "ghost", ALICE)
    with pytest.raises(NotFound, match="no participant 'ghost'"):
        append(members, signed, caller="bank")


def test_filters(members: Database) -> None:
    append(members, record(1))
    append(members, record(2, outcome="denied", fee_fen=0, dataset=None))
    with members.session() as session:
        assert [e.record_id for e in ledger.entries(session, outcome="denied")] == ["urn:uuid:r2"]
        assert [e.record_id for e in ledger.entries(session, dataset="urn:uuid:d")] == ["urn:uuid:r1"]
        assert len(ledger.entries(session, participant="bank")) == 2
        assert ledger.entries(session, participant="nobody") == []
        assert [e.seq for e in ledger.entries(session, after=0)] == [1]
