"""Script steps in the space's log (contracts.script_steps, space.steps), on SQLite and
PostgreSQL: a provider's signed step is a leaf of its own that bills nothing; a step sent or
signed by anyone else, about another agreement or dataset, or malformed, is refused and appends
nothing; auditors check each step's signature like a usage record's."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from contracts.audit import audit
from contracts.documents import new_signed, sign_document
from contracts.script_steps import build_step
from node.db import Database
from space import agreements, ledger, tree
from space.errors import Refused
from space.models import LedgerEntry
from tests.conftest import ALICE, BOB, MALLORY
from tests.space.test_console import signed_in, space  # noqa: F401  (the fixture)
from tests.space.test_settlement import NOW, SPACE, agreement, market  # noqa: F401  (the fixture)

KEYS = {"telecom": ALICE.public_key, "bank": BOB.public_key}
CODE = "a" * 64


def step(db: Database, agreement_id: str, **change: Any) -> dict[str, Any]:
    with db.session() as session:
        dataset = agreements.get(session, agreement_id).dataset_id
    fields = dict(
        id=f"urn:uuid:{uuid.uuid4()}", job="urn:uuid:job-1", agreement=agreement_id, dataset=dataset,
        provider="telecom", consumer="bank", step="approved", code_sha256=CODE, output_sha256=None,
        runs=2, reviewer="审核员王", note="只读聚合",
        at=(NOW - dt.timedelta(minutes=1)).isoformat().replace("+00:00", "Z"),
    )  # fmt: skip
    fields.update(change)
    return build_step(**fields)


def append(db: Database, caller: str, *signed: dict[str, Any]) -> list[dict[str, Any]]:
    return ledger.append(db, SPACE, "http://space.test", caller, list(signed), lambda: NOW)


def scripts(db: Database) -> str:
    return agreement(db, {"model": "per_job", "amount_fen": 300}, operations=("script",))


def count(db: Database) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(LedgerEntry)) or 0)


def test_a_providers_step_is_a_leaf_that_bills_nothing_and_audits(members: Database) -> None:
    agreement_id = scripts(members)
    signed = new_signed(step(members, agreement_id), "telecom", ALICE)
    (receipt,) = append(members, "telecom", signed)
    assert receipt["created"] is True
    (again,) = append(members, "telecom", signed)  # idempotent, as a usage record is
    assert (again["created"], again["leaf_index"]) == (False, receipt["leaf_index"])
    with members.session() as session:
        (entry,) = session.scalars(select(LedgerEntry))
        log = [ledger.view(e) for e in ledger.entries(session, limit=10)]
        heads = [h.signed for h in tree.heads(session)]
    assert (entry.kind, entry.subject, entry.outcome, entry.fee_fen, entry.operation) == (
        "script-step", "urn:uuid:job-1", "approved", 0, "script",
    )  # fmt: skip
    assert audit(SPACE.public_key, KEYS, log, heads).problems == []
    log[0]["signed"] = {**log[0]["signed"], "document": {**log[0]["signed"]["document"], "runs": 9}}
    problems = audit(SPACE.public_key, KEYS, log, heads).problems
    assert "leaf 0 (urn:uuid" in problems[0] and "signature of telecom does not verify" in problems[0]


@pytest.mark.parametrize(
    ("make", "caller", "message"),
    [
        (lambda db, a: new_signed(step(db, a), "telecom", ALICE), "bank",
         "only its provider telecom sends it, not bank"),
        (lambda db, a: new_signed(step(db, a), "bank", BOB), "telecom",
         "expected the signature of telecom alone"),
        (lambda db, a: sign_document(new_signed(step(db, a), "telecom", ALICE), "bank", BOB), "telecom",
         "expected the signature of telecom alone"),
        (lambda db, a: new_signed(step(db, a), "telecom", MALLORY), "telecom", "signature of telecom"),
        (lambda db, a: new_signed(step(db, a, agreement="urn:uuid:none"), "telecom", ALICE), "telecom",
         "agreement urn:uuid:none is not recorded at the space"),
        (lambda db, a: new_signed(step(db, a, dataset="urn:uuid:other"), "telecom", ALICE), "telecom",
         "script step dataset: agreement"),
        (lambda db, a: new_signed({**step(db, a), "step": "leaked"}, "telecom", ALICE), "telecom",
         "script step: expected one of ['submitted'"),
        (lambda db, a: new_signed({**step(db, a), "runs": None}, "telecom", ALICE), "telecom",
         "script step runs: a whole number ≥ 1 for approved"),
        (lambda db, a: new_signed({**step(db, a), "code_sha256": "xyz"}, "telecom", ALICE), "telecom",
         "code_sha256: expected 64 lower-case hex digits"),
    ],
)  # fmt: skip
def test_a_step_from_anyone_but_its_provider_or_off_its_agreement_is_refused(
    members: Database, make: Any, caller: str, message: str
) -> None:
    agreement_id = scripts(members)
    with pytest.raises(Refused) as caught:
        append(members, caller, make(members, agreement_id))
    assert message in caught.value.detail
    assert count(members) == 0


def test_a_step_under_an_agreement_without_scripts_is_refused(members: Database) -> None:
    psi_only = agreement(members, {"model": "per_job", "amount_fen": 300})
    with pytest.raises(Refused, match="does not permit scripts"):
        append(members, "telecom", new_signed(step(members, psi_only), "telecom", ALICE))
    assert count(members) == 0


def test_the_console_shows_a_step_in_the_log_on_its_record_page_and_its_agreements(
    space: dict[str, Any],  # noqa: F811 - the fixture
) -> None:
    db = space["db"]
    agreement_id = scripts(db)
    document = step(db, agreement_id)
    (receipt,) = append(db, "telecom", new_signed(document, "telecom", ALICE))
    auditor = signed_in(space["app"], space["tokens"]["auditor"])
    line = "script step of job urn:uuid:job-1: approved, code aaaaaaaaaaaa"
    assert line in auditor.get("/console/log").get_data(as_text=True)
    page = auditor.get(f"/console/log/{receipt['leaf_index']}")
    assert page.status_code == 200
    shown = page.get_data(as_text=True)
    assert "审核员王" in shown and document["code_sha256"] in shown
    agreement_page = auditor.get(f"/console/agreements/{agreement_id}")
    assert agreement_page.status_code == 200 and line in agreement_page.get_data(as_text=True)
