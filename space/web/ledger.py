"""The ledger, a transparency log (RFC 6962): parties append signed usage records and get
receipts; operators and auditors read everything, a participant its own records, heads and
proofs."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from node.models import utcnow
from node.web import body_as, json_body, require_token
from space import ledger, tree
from space.errors import NotFound, Refused
from space.models import Token
from space.requests import Batch
from space.web.common import (
    config,
    db,
    int_args,
    part,
    reader,
    settings,
    signed_caller,
    space_key,
)

ledger_api = Blueprint("ledger", __name__)


@ledger_api.post("/ledger/records")
def append_record() -> Any:
    caller, record = signed_caller(), json_body()
    with part("metrics").append_seconds.time():
        (receipt,) = ledger.append(
            db(), space_key(), config().url, caller, [record], utcnow, settings().settlement_zone
        )
    return jsonify(receipt), 201 if receipt["created"] else 200


@ledger_api.post("/ledger/batch")
def append_batch() -> Any:
    caller = signed_caller()
    records = body_as(Batch).records
    if not isinstance(records, list) or not 1 <= len(records) <= ledger.MAX_BATCH:
        raise Refused(f"records: expected a list of 1 to {ledger.MAX_BATCH} signed usage records")
    zone = settings().settlement_zone
    with part("metrics").append_seconds.time():
        receipts = ledger.append(db(), space_key(), config().url, caller, records, utcnow, zone)
    return {"receipts": receipts}


@ledger_api.get("/ledger/records")
def list_records() -> Any:
    own = reader()
    args = request.args
    participant = args.get("participant") or None
    if own is not None:
        if participant not in (None, own):
            raise Refused("a participant may list only its own usage records", status=403)
        participant = own
    numbers = int_args(after=-1, limit=100)
    with db().session() as session:
        found = ledger.entries(
            session,
            dataset=args.get("dataset") or None,
            participant=participant,
            agreement=args.get("agreement") or None,
            outcome=args.get("outcome") or None,
            operation=args.get("operation") or None,
            **numbers,
        )
        latest = tree.latest_head(session)
        return {
            "head": ledger.head_view(latest) if latest else None,
            "records": [ledger.view(e) for e in found],
        }


@ledger_api.get("/ledger/records/<path:record_id>")
def show_record(record_id: str) -> Any:
    own = reader()
    with db().session() as session:
        entry = ledger.entry_by_record(session, record_id)
        if own is not None and own not in (entry.provider_id, entry.consumer_id):
            raise Refused(f"{own} is not a party to usage record {record_id}", status=403)
        return {
            **ledger.view(entry),
            "receipt": tree.receipt(session, entry),
            "about": [ledger.view(e) for e in ledger.about(session, record_id)],
        }


@ledger_api.get("/ledger/head")
def ledger_head() -> Any:
    reader()
    with db().session() as session:
        latest = tree.latest_head(session)
        if latest is None:
            raise NotFound("the log has no signed tree head yet")
        return ledger.head_view(latest)


@ledger_api.get("/ledger/heads")
def ledger_heads() -> Any:
    reader()
    with db().session() as session:
        return {"heads": [ledger.head_view(h) for h in tree.heads(session, **int_args(after=-1, limit=100))]}


@ledger_api.get("/ledger/proof/inclusion")
def inclusion() -> Any:
    reader()
    numbers = int_args(index=-1, size=-1)
    with db().session() as session:
        tree.head_of_size(session, numbers["size"])  # proofs are against signed heads only
        proof = tree.inclusion_proof(session, numbers["index"], numbers["size"])
        return {"leaf_index": numbers["index"], "tree_size": numbers["size"], "proof": proof}


@ledger_api.get("/ledger/proof/consistency")
def consistency() -> Any:
    reader()
    numbers = int_args(first=0, second=0)
    with db().session() as session:
        proof = tree.consistency_proof(session, numbers["first"], numbers["second"])
        return {**numbers, "proof": proof}


@ledger_api.get("/ledger/alerts")
def ledger_alerts() -> Any:
    require_token(db(), Token, ("operator", "auditor"))
    with db().session() as session:
        return {"alerts": ledger.alerts(session, **int_args(after=0, limit=100))}
