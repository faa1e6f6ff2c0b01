"""The space's transparency log, on SQLite and PostgreSQL: receipts that verify, idempotent
appends, conflicts that leave an alert, heads signed only over committed leaves."""

import datetime as dt

import pytest
from sqlalchemy import select

from contracts import merkle
from contracts.documents import new_signed, sign_document
from contracts.keys import SigningKey
from contracts.treehead import ReceiptError, check_consistency, check_head, check_receipt
from contracts.usage import build_record
from node import clock
from node.db import Database
from space import agreements, ledger, status, tree
from space.errors import Conflict, NotFound, Refused
from space.models import LedgerEntry, TreeHead
from tests.conftest import ALICE, BOB, MALLORY, USAGE_FIELDS
from tests.space.test_settlement import agreement

RECORD = {**build_record(**USAGE_FIELDS)}
SPACE = SigningKey.from_seed(bytes(range(96, 128)))
NOW = dt.datetime(2026, 11, 27, 8, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def agreed(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The records name an agreement the space has recorded (it refuses others)."""
    if "members" not in request.fixturenames:
        return
    members = request.getfixturevalue("members")
    agreement_id = agreement(members, {"model": "per_job", "amount_fen": RECORD["fee_fen"]})
    with members.session() as session:
        dataset = agreements.get(session, agreement_id).dataset_id
    monkeypatch.setitem(RECORD, "agreement", agreement_id)
    monkeypatch.setitem(RECORD, "dataset", dataset)


def record(i: int, **change: object) -> dict:
    signed = new_signed({**RECORD, "id": f"urn:uuid:r{i}", **change}, "telecom", ALICE)
    return sign_document(signed, "bank", BOB)


def append(db: Database, *signed: dict, caller: str = "bank") -> list[dict]:
    return ledger.append(db, SPACE, "http://space.test", caller, list(signed), clock.now)


def leaves(db: Database) -> list[LedgerEntry]:
    with db.session() as session:
        return list(session.scalars(select(LedgerEntry).order_by(LedgerEntry.seq)))


def test_each_append_returns_a_receipt_that_verifies(members: Database) -> None:
    receipts = [append(members, record(i))[0] for i in range(7)]
    assert [r["leaf_index"] for r in receipts] == list(range(7))
    for i, receipt in enumerate(receipts):
        head = check_receipt(receipt, record(i), SPACE.public_key)
        assert head.size == i + 1  # the first head that includes it
    with pytest.raises(ReceiptError, match="not the hash of the record that was sent"):
        check_receipt(receipts[3], record(4), SPACE.public_key)
    with pytest.raises(ReceiptError, match="tree head: signature of space"):
        check_receipt(receipts[3], record(3), MALLORY.public_key)


def test_heads_are_consistent_and_the_root_is_recomputable(members: Database) -> None:
    append(members, *[record(i) for i in range(10)])
    append(members, record(10))
    with members.session() as session:
        heads = tree.heads(session)
        assert [h.size for h in heads] == [10, 11]
        old, new = (check_head(h.signed, SPACE.public_key) for h in heads)
        check_consistency(old, new, tree.consistency_proof(session, 10, 11))
    data = [bytes.fromhex(e.leaf_hash) for e in leaves(members)]

    def mth(hashes: list[bytes]) -> bytes:
        if len(hashes) == 1:
            return hashes[0]
        k = merkle.split(len(hashes))
        return merkle.node_hash(mth(hashes[:k]), mth(hashes[k:]))

    assert mth(data).hex() == new.root.hex() == heads[-1].root_hash


def test_same_record_twice_gets_the_same_receipt(members: Database) -> None:
    first = append(members, record(1))[0]
    append(members, record(2))
    again = append(members, record(1), caller="telecom")[0]
    assert (first["created"], again["created"]) == (True, False)
    assert {k: v for k, v in again.items() if k != "created"} == {
        k: v for k, v in first.items() if k != "created"
    }
    assert len(leaves(members)) == 2


def test_a_late_countersignature_is_a_leaf_of_its_own(members: Database) -> None:
    alone = new_signed({**RECORD, "id": "urn:uuid:alone"}, "telecom", ALICE)
    first = append(members, alone, caller="telecom")[0]
    countersigned = sign_document(alone, "bank", BOB)
    again = append(members, countersigned)[0]
    assert again["leaf_index"] == first["leaf_index"] and again["late_signatures"] == ["bank"]
    check_receipt(first, alone, SPACE.public_key)  # the record's leaf is what was first appended
    record_leaf, late = leaves(members)
    assert (late.seq, late.kind, late.subject) == (1, "countersignature", "urn:uuid:alone")
    assert late.signed["document"]["signature"] == countersigned["signatures"]["bank"]
    assert (late.agreement_id, late.consumer_id, late.fee_fen) == (record_leaf.agreement_id, "bank", 0)


def test_same_id_with_other_content_conflicts_and_raises_an_alert(members: Database) -> None:
    append(members, record(1))
    with pytest.raises(Conflict, match="already in the log \\(leaf 0\\) with other content"):
        append(members, record(1, consumer_set_size=11))
    assert len(leaves(members)) == 1
    with members.session() as session:
        (alert,) = ledger.alerts(session)
    assert (alert["kind"], alert["record_id"], alert["submitted_by"]) == (
        "conflicting-record",
        "urn:uuid:r1",
        "bank",
    )
    assert alert["detail"]["submitted"]["document"]["consumer_set_size"] == 11


def test_a_batch_is_all_or_nothing(members: Database) -> None:
    bad = new_signed({**RECORD, "id": "urn:uuid:bad"}, "telecom", MALLORY)
    with pytest.raises(
        Refused, match=r"^422 Refused: records\[1\]: usage record urn:uuid:bad: signature of telecom"
    ):
        append(members, record(1), bad, record(2))
    assert leaves(members) == []
    with pytest.raises(Refused, match="the batch names one record id twice"):
        append(members, record(1), record(1))


def test_provider_alone_may_append_but_a_forged_consumer_signature_is_refused(members: Database) -> None:
    alone = new_signed({**RECORD, "id": "urn:uuid:alone"}, "telecom", ALICE)
    assert append(members, alone, caller="telecom")[0]["created"]
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
        append(members, signed, caller=caller)
    assert leaves(members) == []
    with members.session() as session:
        assert session.scalars(select(TreeHead)).all() == []


def test_unknown_party(members: Database) -> None:
    signed = new_signed({**RECORD, "id": "urn:uuid:x", "provider": "ghost"}, "ghost", ALICE)
    with pytest.raises(NotFound, match="no participant 'ghost'"):
        append(members, signed, caller="bank")


def test_leaves_committed_before_a_crash_get_their_head_on_restart(members: Database) -> None:
    with members.transaction() as session:  # the first step of an append, then the process dies
        ledger.add_leaves(session, SPACE, "bank", [record(1), record(2)], clock.now())
    with members.session() as session:
        assert tree.latest_head(session) is None
    with members.transaction() as session:  # what the space does when it starts
        signed = tree.sign_head(session, SPACE, "http://space.test", NOW)
    assert signed.size == 2
    receipt = append(members, record(1))[0]
    check_receipt(receipt, record(1), SPACE.public_key)


def test_health_reports_leaves_left_unsigned_not_an_append_in_progress(members: Database) -> None:
    now = clock.now()
    with members.transaction() as session:  # an append's first step, its head not signed yet
        ledger.add_leaves(session, SPACE, "bank", [record(1), record(2)], now)
    unsigned = "2 leaves of the log await a signed tree head (restart the space to sign)"
    with members.session() as session:
        assert unsigned not in status.health(session, now + dt.timedelta(seconds=60))["problems"]
        assert unsigned in status.health(session, now + dt.timedelta(seconds=61))["problems"]
    with members.transaction() as session:
        tree.sign_head(session, SPACE, "http://space.test", now)
    with members.session() as session:
        later = status.health(session, now + dt.timedelta(days=1))
        assert later["ledger"] == {"leaves": 2, "signed_size": 2, "alerts": 0}
        assert unsigned not in later["problems"]


def test_filters(members: Database) -> None:
    append(members, record(1))
    append(members, record(2, outcome="denied", fee_fen=0, dataset=None))
    with members.session() as session:
        assert [e.record_id for e in ledger.entries(session, outcome="denied")] == ["urn:uuid:r2"]
        assert [e.record_id for e in ledger.entries(session, dataset=RECORD["dataset"])] == ["urn:uuid:r1"]
        assert len(ledger.entries(session, participant="bank")) == 2
        assert ledger.entries(session, participant="nobody") == []
        assert [e.seq for e in ledger.entries(session, after=0)] == [1]


def test_proof_requests_out_of_range_are_refused(members: Database) -> None:
    append(members, record(1), record(2))
    with members.session() as session:
        with pytest.raises(Refused, match="leaf index 2 is outside a tree of size 2"):
            tree.inclusion_proof(session, 2, 2)
        with pytest.raises(Refused, match=r"expected 0 < from ≤ to ≤ 2, got 1 and 3"):
            tree.consistency_proof(session, 1, 3)
