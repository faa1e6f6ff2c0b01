"""The operator's acts (each logged): admission and suspension, catalog reviews, terminations,
tokens, dispute decisions; and what operators and auditors read of them."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request
from sqlalchemy import select

from node import tokens
from node.models import utcnow
from node.problems import Problem
from node.web import body_as, require_token
from space import agreements, catalog, console, disputes, ledger, operator, registry
from space import status as space_status
from space.models import Participant, Token
from space.requests import Decision, NewToken, Review, Termination
from space.web.common import (
    config,
    db,
    int_args,
    load_export_list,
    load_negative_list,
    operator_actor,
    settings,
    space_key,
    tell_parties,
)

admin_api = Blueprint("admin", __name__)


@admin_api.get("/admin/health")
def admin_health() -> Any:
    """The space's health for ``tds status``: the log, participants, credentials ending."""
    require_token(db(), Token, ("operator", "auditor"))
    unusable = []
    for load in (load_negative_list, load_export_list):
        try:
            load(config().path)
        except Problem as exc:
            unusable.append(exc.detail)
    with db().session() as session:
        return space_status.health(session, utcnow(), unusable)


@admin_api.get("/admin/disputes")
def admin_disputes() -> Any:
    require_token(db(), Token, ("operator", "auditor"))
    numbers = int_args(after=-1, limit=100)
    with db().session() as session:
        return {"disputed": [ledger.view(e) for e in disputes.disputed(session, **numbers)]}


@admin_api.post("/admin/disputes/<path:record_id>/decision")
def admin_decide(record_id: str) -> Any:
    actor = operator_actor()
    body = body_as(Decision)
    receipt = disputes.decide(
        db(), space_key(), config().url, actor, record_id, body.decision, body.reason, utcnow
    )
    with db().transaction() as session:
        operator.note(
            session,
            actor,
            "decide",
            record_id,
            utcnow(),
            decision=body.decision,
            leaf=receipt["leaf_index"],
        )
    return jsonify(receipt), 201


@admin_api.get("/admin/participants")
def admin_participants() -> Any:
    require_token(db(), Token, ("operator", "auditor"))
    with db().session() as session:
        rows = session.scalars(select(Participant).order_by(Participant.registered_at))
        return {"participants": [registry.public_view(p) for p in rows]}


@admin_api.post("/admin/participants/<pid>/admit")
def admin_admit(pid: str) -> Any:
    actor = operator_actor()
    with db().transaction() as session:
        found = operator.admit(session, actor, pid, space_key(), utcnow(), settings().credential_days)
        return registry.public_view(found)


@admin_api.post("/admin/participants/<pid>/suspend")
def admin_suspend(pid: str) -> Any:
    actor = operator_actor()
    with db().transaction() as session:
        return registry.public_view(operator.suspend(session, actor, pid, utcnow()))


@admin_api.get("/admin/reviews")
def admin_reviews() -> Any:
    require_token(db(), Token, ("operator", "auditor"))
    with db().session() as session:
        return {"pending": [catalog.entry_view(session, e) for e in catalog.pending_reviews(session)]}


@admin_api.post("/admin/reviews/<path:entry_id>/<decision>")
def admin_review(entry_id: str, decision: str) -> Any:
    actor = operator_actor()
    if decision not in ("approve", "reject"):
        raise Problem(404, "Not found", "use /approve or /reject", kind="not-found")
    note = body_as(Review, optional=True).note
    with db().transaction() as session:
        entry = operator.review(session, actor, entry_id, decision == "approve", note, utcnow())
        return catalog.entry_view(session, entry)


@admin_api.post("/admin/agreements/<path:agreement_id>/termination")
def admin_terminate(agreement_id: str) -> Any:
    actor = operator_actor()
    reason = body_as(Termination).reason or "terminated by the operator"
    with db().transaction() as session:
        found = agreements.terminate(session, agreement_id, registry.SPACE_ID, reason, utcnow())
        operator.note(session, actor, "terminate", agreement_id, utcnow(), reason=reason)
        view = agreements.view(found)
    tell_parties(view)
    return view


@admin_api.post("/admin/tokens")
def admin_token() -> Any:
    actor = operator_actor()
    body = body_as(NewToken)
    with db().transaction() as session:
        token = operator.issue_token(session, actor, body.role, body.label, body.participant, utcnow())
    return jsonify({"token": token, "role": body.role, "participant": body.participant}), 201


@admin_api.get("/admin/tokens")
def admin_tokens() -> Any:
    """Every token the space issued, by id, role, label and whether it is revoked; never a token."""
    require_token(db(), Token, ("operator", "auditor"))
    with db().session() as session:
        return {"tokens": tokens.listing(session, Token)}


@admin_api.post("/admin/tokens/<token_id>/revoke")
def admin_revoke_token(token_id: str) -> Any:
    actor = operator_actor()
    with db().transaction() as session:
        row = tokens.revoke(session, Token, token_id, "operator")
        operator.note(session, actor, "revoke-token", row.participant_id or row.role, utcnow(), id=token_id,
                      role=row.role, label=row.label)  # fmt: skip
        return tokens.view(row)


@admin_api.get("/admin/actions")
def admin_actions() -> Any:
    require_token(db(), Token, ("operator", "auditor"))
    before = request.args.get("before", type=int)
    with db().session() as session:
        rows, _ = console.queries.actions_page(session, before)
        return {"actions": [console.action_view(a) for a in rows]}
