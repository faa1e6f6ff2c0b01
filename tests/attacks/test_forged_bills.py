"""Attacks on "every use is billed exactly as agreed", by the party that gains from a wrong bill.

A provider (or a participant named in a revenue share) writes usage records, so the space
believes nothing in one until it has checked it against the agreement it names; and a use is
billed only when both parties signed it. Records that reach the log by other ways (an operator
rewriting its database, an older version) may not stop settlement or the console."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from contracts.documents import new_signed, sign_document
from contracts.errors import UsageRecordError
from contracts.usage import build_record, check_describes
from node import clock
from node.db import Database
from space import agreements, ledger
from space.errors import Refused
from space.models import LedgerEntry
from tests.conftest import ALICE, BOB, MALLORY, USAGE_FIELDS
from tests.space.test_console import signed_in
from tests.space.test_settlement import NOW, SPACE, agreement, settle, statement

PERIOD = "2026-10"  # closed at the settlement tests' reference time NOW


def fields(db: Database, agreement_id: str, **change: Any) -> dict[str, Any]:
    with db.session() as session:
        dataset = agreements.get(session, agreement_id).dataset_id
    when = {"started_at": f"{PERIOD}-03T10:00:00Z", "finished_at": f"{PERIOD}-03T10:00:01Z"}
    return {**USAGE_FIELDS, "id": f"urn:uuid:{uuid.uuid4()}", "agreement": agreement_id, "dataset": dataset,
            **when, **change}  # fmt: skip


def append(db: Database, caller: str, *signed: dict) -> list[dict]:
    return ledger.append(db, SPACE, "http://space.test", caller, list(signed), lambda: NOW)


def log_size(db: Database) -> int:
    with db.session() as session:
        return len(session.scalars(select(LedgerEntry)).all())


def test_forged_provider_only_record_with_a_billion_rows_is_disputed_not_billed(market: Database) -> None:
    per_row = agreement(market, {"model": "per_row", "amount_fen": 1})
    honest = sign_document(
        new_signed(
            build_record(**fields(market, per_row, consumer_set_size=40, fee_fen=40)), "telecom", ALICE
        ),
        "bank",
        BOB,
    )
    forged = fields(market, per_row, consumer_set_size=10**9, fee_fen=10**9)
    append(market, "bank", honest)
    append(market, "telecom", new_signed(build_record(**forged), "telecom", ALICE))  # the fee fits the price
    summary = settle(market, PERIOD)[0]["document"]
    assert summary["fees_fen"] == 40
    assert summary["disputed"] == [
        {
            "record": forged["id"],
            "agreement": per_row,
            "fee_fen": 10**9,
            "provider": "telecom",
            "consumer": "bank",
        }
    ]
    bank, _ = statement(market, PERIOD, "bank")
    assert (bank["document"]["payable_fen"], bank["document"]["disputed_fen"]) == (40, 10**9)


def test_late_countersignature_bills_a_disputed_use(
    market: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(clock.ENV, clock.offset_to(NOW - dt.timedelta(hours=1)))  # before settling at NOW
    per_job = agreement(market, {"model": "per_job", "amount_fen": 700})
    alone = new_signed(build_record(**fields(market, per_job, fee_fen=700)), "telecom", ALICE)
    append(market, "telecom", alone)
    append(market, "bank", sign_document(alone, "bank", BOB))  # the consumer agrees, later
    summary = settle(market, PERIOD)[0]["document"]
    assert (summary["fees_fen"], summary["disputed"]) == (700, [])


@pytest.mark.parametrize(
    ("change", "caller", "key", "status", "message"),
    [
        (
            {"provider": "coop"},
            "coop",
            MALLORY,
            409,
            "provider: agreement .* says 'telecom', the record 'coop'",
        ),
        (
            {"consumer_set_size": 10**9, "fee_fen": 10**9},
            "telecom",
            ALICE,
            409,
            "per_job price of 5000 fen makes it 5000 fen .* the record says 1000000000",
        ),
        (
            {"agreement": "urn:uuid:nobody-agreed"},
            "telecom",
            ALICE,
            409,
            "agreement urn:uuid:nobody-agreed is not recorded at the space; only a denial may name",
        ),
        ({"finished_at": "not-a-date"}, "telecom", ALICE, 422, "finished_at: expected an RFC 3339 UTC time"),
        (
            {"agreement": "urn:uuid:" + "x" * 100, "outcome": "denied", "fee_fen": 0},
            "telecom",
            ALICE,
            422,
            "agreement: at most 60 characters, got 109",  # a database error on PostgreSQL before
        ),
        ({"operation": "he.score"}, "telecom", ALICE, 409, r"permits \['psi.cardinality'\], not 'he.score'"),
        (
            {"finished_at": "2999-01-01T00:00:00Z"},
            "telecom",
            ALICE,
            409,
            "finished_at 2999-01-01T00:00:00Z is in the future",
        ),
    ],
    ids=[
        "revenue-sharer-poses-as-provider",
        "inflated-consumer-set-size",
        "unknown-agreement",
        "not-a-date",
        "id-longer-than-the-log-holds",
        "operation-not-agreed",
        "future-use",
    ],
)
def test_a_record_the_agreement_does_not_allow_is_refused_and_appends_nothing(
    market: Database, change: dict, caller: str, key: Any, status: int, message: str
) -> None:
    per_job = agreement(market, {"model": "per_job", "amount_fen": 5000},
                        [{"party": "telecom", "role": "provider", "bp": 9000},
                         {"party": "coop", "role": "co-contributor", "bp": 1000}])  # fmt: skip
    document = {**build_record(**fields(market, per_job)), **change}
    signer = change.get("provider", "telecom")
    with pytest.raises(Refused, match=message) as refused:
        append(market, caller, new_signed(document, signer, key))
    assert refused.value.status == status
    assert log_size(market) == 0


def test_use_after_termination_is_refused(market: Database) -> None:
    per_job = agreement(market, {"model": "per_job", "amount_fen": 5000})
    with market.transaction() as session:
        agreements.terminate(session, per_job, "space", "breach", NOW.replace(year=2026, month=10, day=2))
    late = new_signed(build_record(**fields(market, per_job)), "telecom", ALICE)
    with pytest.raises(Refused, match="was terminated at 2026-10-02T09:00:00\\+00:00; only a denial"):
        append(market, "telecom", late)
    denial = fields(market, per_job, outcome="denied", fee_fen=0, reason="agreement terminated")
    append(market, "telecom", new_signed(build_record(**denial), "telecom", ALICE))
    assert log_size(market) == 1


def hostile_leaves(db: Database, monkeypatch: pytest.MonkeyPatch, agreement_id: str) -> list[str]:
    """Leaves the space would refuse, written as a rewritten database would hold them."""
    good = build_record(**fields(db, agreement_id))
    hostile = [
        {**good, "id": "urn:uuid:not-a-date", "finished_at": "not-a-date"},
        {**good, "id": "urn:uuid:unknown", "agreement": "urn:uuid:never-recorded"},
        {**good, "id": "urn:uuid:wrong-fee", "fee_fen": 1},
        {**good, "id": "urn:uuid:bad-size", "consumer_set_size": "many"},
    ]
    monkeypatch.setattr(ledger, "_check", lambda session, caller, signed, known, now: signed["document"])
    for document in hostile:
        append(db, "telecom", sign_document(new_signed(document, "telecom", ALICE), "bank", BOB))
    monkeypatch.undo()
    return [d["id"] for d in hostile]


def test_poisoned_log_does_not_stop_settlement(market: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    per_job = agreement(market, {"model": "per_job", "amount_fen": 5000})
    honest = new_signed(build_record(**fields(market, per_job)), "telecom", ALICE)
    append(market, "bank", sign_document(honest, "bank", BOB))
    ids = hostile_leaves(market, monkeypatch, per_job)
    summary = settle(market, PERIOD)[0]["document"]
    assert summary["fees_fen"] == 5000
    excluded = {line["record"]: line["reason"] for line in summary["excluded"]}
    assert set(excluded) == set(ids)
    assert excluded["urn:uuid:not-a-date"] == "finished_at is not a time"
    assert "agreement urn:uuid:never-recorded was never recorded at the space" in excluded["urn:uuid:unknown"]
    assert (
        "makes it 5000 fen for a succeeded use with consumer_set_size 10, the record says 1"
        in excluded["urn:uuid:wrong-fee"]
    )
    assert "consumer_set_size: expected int or null, got 'many'" in excluded["urn:uuid:bad-size"]


def test_poisoned_log_does_not_break_the_console(
    space: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hostile_leaves(space["db"], monkeypatch, space["agreement"])
    client = signed_in(space["app"], space["tokens"]["operator"])
    pages = ["/console/", "/console/log", "/console/log?outcome=succeeded", "/console/settlements"]
    pages += [f"/console/log/{leaf}" for leaf in (4, 5, 6, 7)]  # the four hostile leaves
    pages += [f"/console/agreements/{space['agreement']}", "/console/queues"]
    for path in pages:
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.get_data(as_text=True)[-2000:])


@pytest.mark.parametrize(
    ("terms", "fee", "refusal"),
    [
        ({}, 700, None),
        (
            {},
            0,
            "price of 700 fen makes it 700 fen for a withheld use with consumer_set_size 10, "
            "the record says 0",
        ),
        ({"charge_withheld": False}, 0, None),
        (
            {"charge_withheld": False},
            700,
            "price of 700 fen \\(withheld results are not charged under it\\) makes it 0 fen "
            "for a withheld use",
        ),
    ],
    ids=["charged-by-default", "waived-without-the-term", "waived-by-the-offer", "charged-against-the-offer"],
)
def test_a_withheld_use_is_charged_as_the_offer_says(
    market: Database, terms: dict, fee: int, refusal: str | None
) -> None:
    """chargeWithheld: the provider may neither charge a result the offer waives nor waive
    one it does not (a provider gains from the first, a consumer's colluder from the second)."""
    per_job = agreement(market, {"model": "per_job", "amount_fen": 700}, **terms)
    with market.session() as session:
        document = agreements.get(session, per_job).signed["document"]
    assert document.get("tds:chargeWithheld", True) is terms.get("charge_withheld", True)
    record = build_record(**fields(market, per_job, outcome="withheld", fee_fen=fee, reason="k not met"))
    signed = sign_document(new_signed(record, "telecom", ALICE), "bank", BOB)
    if refusal is None:
        append(market, "bank", signed)
        assert log_size(market) == 1
        return
    with pytest.raises(Refused, match=refusal) as refused:
        append(market, "bank", signed)
    assert (refused.value.status, log_size(market)) == (409, 0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({}, None),
        (
            {
                "consumer_set_size": 10**6,
                "fee_fen": 10**6,
            },  # consistent with the per-row price: the space would take it
            r"does not describe this job: \{'consumer_set_size': 1000000\}",
        ),
        ({"fee_fen": 41}, "per_row price of 1 fen makes it 40 fen for a succeeded use"),
        ({"job": "urn:uuid:another"}, r"does not describe this job: \{'job': 'urn:uuid:another'\}"),
    ],
    ids=["honest", "inflated-size", "inflated-fee", "other-job"],
)
def test_a_consumer_countersigns_only_the_sizes_it_sent_at_the_agreed_fee(
    market: Database, change: dict, message: str | None
) -> None:
    """inflated-record-countersigned: the consumer's connector checked only the record's ids,
    parties and outcome before countersigning, so a provider could raise consumer_set_size on a
    per-row agreement and have the inflated bill signed by both parties."""
    per_row = agreement(market, {"model": "per_row", "amount_fen": 1})
    with market.session() as session:
        document = agreements.get(session, per_row).signed["document"]
    record = {**build_record(**fields(market, per_row, consumer_set_size=40, fee_fen=40)), **change}
    expected = {"job": USAGE_FIELDS["job"], "agreement": per_row, "consumer": "bank", "provider": "telecom",
                "operation": "psi.cardinality", "outcome": "succeeded", "consumer_set_size": 40}  # fmt: skip
    if message is None:
        check_describes(record, expected, document, NOW)
        return
    with pytest.raises(UsageRecordError, match=message):
        check_describes(record, expected, document, NOW)
