"""Attacks on "every use is billed exactly as agreed" by the operator, who holds the database:
un-billing a use by deleting its late countersignature, or billing / voiding a disputed use
without a trace. Countersignatures that arrive late and the operator's decisions on disputed
uses are leaves of the log, so each of these changes what auditors verify."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import delete, select

from contracts import leaves
from contracts.audit import audit
from contracts.documents import new_signed, sign_document
from contracts.treehead import check_receipt
from contracts.usage import build_record
from node import clock
from node.db import Database
from space import disputes, ledger, tree
from space.errors import Conflict, NotFound, Refused
from space.models import LateSignature, LedgerAlert, LedgerEntry, MerkleNode
from tests.attacks.test_forged_bills import PERIOD, append, fields
from tests.conftest import ALICE, BOB, MALLORY
from tests.space.test_console import signed_in
from tests.space.test_settlement import NOW, SPACE, agreement, settle, statement

KEYS = {"telecom": ALICE.public_key, "bank": BOB.public_key}


@pytest.fixture(autouse=True)
def before_settling(monkeypatch: pytest.MonkeyPatch) -> None:
    """Uses and decisions arrive an hour before the period is settled at NOW."""
    monkeypatch.setenv(clock.ENV, clock.offset_to(NOW - dt.timedelta(hours=1)))


def provider_only(db: Database, fee: int = 700) -> tuple[str, dict[str, Any]]:
    per_job = agreement(db, {"model": "per_job", "amount_fen": fee})
    alone = new_signed(build_record(**fields(db, per_job, fee_fen=fee)), "telecom", ALICE)
    append(db, "telecom", alone)
    return per_job, alone


def decide(
    db: Database, record_id: str, verdict: Any, reason: Any = "the consumer confirmed by phone"
) -> dict:
    return disputes.decide(
        db, SPACE, "http://space.test", "operator Wang", record_id, verdict, reason, lambda: NOW
    )


def log_of(db: Database) -> dict[str, Any]:
    with db.session() as session:
        return {
            "records": [ledger.view(e) for e in ledger.entries(session, limit=1000)],
            "heads": [h.signed for h in tree.heads(session)],
        }


def audited(db: Database, seen: list[Any] | None = None) -> list[str]:
    found = log_of(db)
    return audit(SPACE.public_key, KEYS, found["records"], found["heads"], seen or []).problems


def test_a_late_countersignature_is_a_leaf_with_its_own_receipt(market: Database) -> None:
    _, alone = provider_only(market)
    (receipt,) = append(market, "bank", sign_document(alone, "bank", BOB))
    assert (receipt["leaf_index"], receipt["created"], receipt["late_signatures"]) == (0, False, ["bank"])
    late = receipt["countersignature"]
    assert check_receipt(late["receipt"], late["signed"], SPACE.public_key).size == 2
    document = late["signed"]["document"]
    assert (document["@type"], document["record"], document["record_leaf"], document["signer"]) == (
        leaves.COUNTERSIGNATURE_TYPE,
        alone["document"]["id"],
        0,
        "bank",
    )
    again = append(market, "bank", sign_document(alone, "bank", BOB))[0]  # a retry adds no leaf
    assert again["countersignature"]["receipt"]["leaf_index"] == 1
    assert len(log_of(market)["records"]) == 2
    assert audited(market) == []
    summary = settle(market, PERIOD)[0]["document"]
    assert (summary["fees_fen"], summary["disputed"]) == (700, [])


def test_deleting_a_late_countersignature_unbills_the_use_but_auditors_see_it(market: Database) -> None:
    _, alone = provider_only(market)
    append(market, "bank", sign_document(alone, "bank", BOB))
    seen = log_of(market)["heads"]  # an auditor's earlier visit
    with market.transaction() as session:  # the operator rewrites its database
        session.execute(delete(LedgerEntry).where(LedgerEntry.kind == "countersignature"))
        session.execute(delete(MerkleNode).where(MerkleNode.level == 0, MerkleNode.index == 1))
        tree.head(session).size = 1
    summary = settle(market, PERIOD)[0]["document"]
    assert (summary["fees_fen"], len(summary["disputed"])) == (0, 1)  # un-billed …
    assert audited(market, seen) == ["head of size 2: the log has only 1 records"]  # … and caught


def test_a_forged_countersignature_leaf_bills_nothing_and_auditors_see_it(
    market: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, alone = provider_only(market)
    forged = sign_document(alone, "bank", MALLORY)  # not the consumer's key
    monkeypatch.setattr(ledger, "_check", lambda session, caller, signed, known, now: signed["document"])
    append(market, "bank", forged)  # as a rewritten database, or a space that skips its checks, would
    monkeypatch.undo()
    summary = settle(market, PERIOD)[0]["document"]
    assert (summary["fees_fen"], len(summary["disputed"])) == (0, 1)
    assert audited(market) == [
        f"leaf 1 (countersignature): countersignature of record {alone['document']['id']}: "
        "the signature of bank does not verify"
    ]


@pytest.mark.parametrize(("verdict", "fees", "disputed", "voided"), [("bill", 700, 0, 0), ("void", 0, 0, 1)])
def test_the_operators_decision_on_a_disputed_use_is_a_signed_leaf(
    market: Database, verdict: str, fees: int, disputed: int, voided: int
) -> None:
    _, alone = provider_only(market)
    record_id = alone["document"]["id"]
    with market.session() as session:
        assert [e.record_id for e in disputes.disputed(session)] == [record_id]
    receipt = decide(market, record_id, verdict)
    leaf = log_of(market)["records"][receipt["leaf_index"]]
    assert check_receipt(receipt, leaf["signed"], SPACE.public_key).size == 2
    assert (leaf["kind"], leaf["subject"], leaf["signed"]["document"]["decision"]) == (
        "decision",
        record_id,
        verdict,
    )
    assert leaf["signed"]["document"]["decided_by"] == "operator Wang"
    with market.session() as session:
        assert disputes.disputed(session) == []
    summary = settle(market, PERIOD)[0]["document"]
    assert (summary["fees_fen"], len(summary["disputed"]), len(summary.get("voided", []))) == (
        fees,
        disputed,
        voided,
    )
    bank = statement(market, PERIOD, "bank")[0]["document"]
    assert bank["payable_fen"] == fees and len(bank.get("voided", [])) == voided
    assert audited(market) == []


def test_a_decision_settles_only_periods_settled_after_it(market: Database) -> None:
    """Settlement reads the log up to its head: a decision appended later changes nothing settled."""
    _, alone = provider_only(market)
    first = settle(market, PERIOD)[0]["document"]
    decide(market, alone["document"]["id"], "bill")
    again = settle(market, PERIOD)[0]["document"]
    assert first == again and (again["fees_fen"], len(again["disputed"])) == (0, 1)


@pytest.mark.parametrize(
    ("verdict", "reason", "refusal", "message"),
    [
        ("pay", "x", Refused, r"^400 Refused: decision: expected one of \['bill', 'void'\], got 'pay'$"),
        ("bill", " ", Refused, "decision reason: expected 1 to 2000 characters saying why"),
        ("bill", None, Refused, "decision reason: expected 1 to 2000 characters saying why"),
    ],
    ids=["unknown-verdict", "blank-reason", "no-reason"],
)
def test_a_malformed_decision_is_refused_and_appends_nothing(
    market: Database, verdict: str, reason: Any, refusal: type, message: str
) -> None:
    _, alone = provider_only(market)
    with pytest.raises(refusal, match=message):
        decide(market, alone["document"]["id"], verdict, reason)
    assert len(log_of(market)["records"]) == 1


def test_only_a_disputed_use_can_be_decided_and_only_once(market: Database) -> None:
    _, alone = provider_only(market)
    record_id = alone["document"]["id"]
    decide(market, record_id, "void")
    with pytest.raises(Conflict, match=f"usage record {record_id} was decided already: void at leaf 1"):
        decide(market, record_id, "bill")
    per_job, other = provider_only(market, fee=800)
    append(market, "bank", sign_document(other, "bank", BOB))
    with pytest.raises(Conflict, match=r"is not disputed: its consumer signed it \(leaf 3\)"):
        decide(market, other["document"]["id"], "void")
    denial = fields(market, per_job, outcome="denied", fee_fen=0, reason="over the limit")
    append(market, "telecom", new_signed(build_record(**denial), "telecom", ALICE))
    with pytest.raises(Conflict, match="outcome denied: only a succeeded or withheld use can be disputed"):
        decide(market, denial["id"], "bill")
    with pytest.raises(NotFound, match="no usage record urn:uuid:nobody in the log"):
        decide(market, "urn:uuid:nobody", "bill")
    assert len(log_of(market)["records"]) == 5


def test_countersignatures_kept_beside_the_log_by_an_older_version_become_leaves(market: Database) -> None:
    _, alone = provider_only(market)
    record_id = alone["document"]["id"]
    good = sign_document(alone, "bank", BOB)["signatures"]["bank"]
    with market.transaction() as session:
        session.add(LateSignature(record_id=record_id, signer="bank", signature=good))
        session.add(LateSignature(record_id="urn:uuid:gone", signer="bank", signature=good))
    assert disputes.adopt_late(market, SPACE, "http://space.test", lambda: NOW) == 2
    with market.session() as session:
        assert session.scalars(select(LateSignature)).all() == []
        (alert,) = session.scalars(select(LedgerAlert)).all()
        assert (alert.kind, alert.record_id, alert.detail) == (
            "late-signature-dropped",
            "urn:uuid:gone",
            {"reason": "no usage record urn:uuid:gone in the log"},
        )
    (_, late) = log_of(market)["records"]
    assert (late["kind"], late["subject"]) == ("countersignature", record_id)
    assert audited(market) == []
    assert settle(market, PERIOD)[0]["document"]["fees_fen"] == 700


def test_the_console_shows_countersignature_and_decision_leaves(space: dict[str, Any]) -> None:
    db = space["db"]
    _, alone = provider_only(db)
    append(db, "bank", sign_document(alone, "bank", BOB))
    _, disputed = provider_only(db, fee=800)
    receipt = decide(db, disputed["document"]["id"], "void", "the bank never received the result")
    client = signed_in(space["app"], space["tokens"]["operator"])
    with db.session() as session:
        record_seq = ledger.entry_by_record(session, alone["document"]["id"]).seq
        late_seq = ledger.countersignature_of(session, alone["document"]["id"]).seq  # type: ignore[union-attr]
    page = client.get(f"/console/log/{record_seq}").get_data(as_text=True)
    assert f"arrived later: leaf {late_seq}" in page and "INVALID" not in page
    page = client.get(f"/console/log/{receipt['leaf_index']}").get_data(as_text=True)
    assert "the bank never received the result" in page and "INVALID" not in page
    listing = client.get("/console/log").get_data(as_text=True)
    assert f"countersignature of record {alone['document']['id']} by bank" in listing
    disputed_page = client.get(f"/console/log/{ledger_seq(db, disputed['document']['id'])}").get_data(
        as_text=True
    )
    assert "<h2>Operator's decision</h2>" in disputed_page
    assert "the bank never received the result" in disputed_page


def ledger_seq(db: Database, record_id: str) -> int:
    with db.session() as session:
        return ledger.entry_by_record(session, record_id).seq


def test_the_operator_api_lists_and_decides_disputes(space: dict[str, Any]) -> None:
    db = space["db"]
    _, alone = provider_only(db)
    record_id = alone["document"]["id"]
    client = space["app"].test_client()
    operator = {"Authorization": f"Bearer {space['tokens']['operator']}"}
    auditor = {"Authorization": f"Bearer {space['tokens']['auditor']}"}
    listed = client.get("/admin/disputes", headers=auditor).get_json()
    assert [e["record_id"] for e in listed["disputed"]] == [record_id]
    path = f"/admin/disputes/{record_id}/decision"
    refused = client.post(path, json={"decision": "bill", "reason": "x"}, headers=auditor)
    assert refused.status_code == 403
    missing = client.post(path, json={"decision": "bill"}, headers=operator)
    assert (missing.status_code, missing.get_json()["detail"]) == (400, "request body: reason: required")
    assert missing.get_json()["errors"] == [{"pointer": "/reason", "detail": "reason: required"}]
    mistyped = client.post(path, json={"decision": "bill", "reason": ["x"]}, headers=operator)
    assert mistyped.get_json()["detail"] == "request body: reason: expected a valid string, got ['x']"
    answer = client.post(path, json={"decision": "bill", "reason": "agreed"}, headers=operator)
    assert answer.status_code == 201, answer.get_json()
    assert client.get("/admin/disputes", headers=auditor).get_json() == {"disputed": []}
    actions = client.get("/admin/actions", headers=auditor).get_json()["actions"]
    assert (actions[0]["action"], actions[0]["target"], actions[0]["detail"]["decision"]) == (
        "decide",
        record_id,
        "bill",
    )
