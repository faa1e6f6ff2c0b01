"""he.aggregate at the space: the consumer opens an aggregation, providers contribute their
ciphertexts (or why none), and the space adds them in its sandbox for the consumer."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from node.web import body_as
from space import aggregation
from space.requests import Contribution, OpenAggregation
from space.web.common import (
    adders,
    db,
    signed_caller,
)

aggregations_api = Blueprint("aggregations", __name__)


@aggregations_api.post("/aggregations")
def open_aggregation() -> Any:
    caller = signed_caller()
    with db().transaction() as session:
        row = aggregation.open_aggregation(session, caller, body_as(OpenAggregation))
        job, expected = row.job, len(row.agreements)
    adders().prepare(None, None)  # the adder starts while the providers compute, if none waits
    return jsonify({"job": job, "expected": expected}), 201


@aggregations_api.post("/aggregations/<path:job>/contributions")
def contribute(job: str) -> Any:
    caller = signed_caller()
    with db().transaction() as session:
        row = aggregation.contribute(session, caller, job, body_as(Contribution))
        return jsonify({"job": job, "agreement": row.agreement_id, "reason": row.reason}), 201


@aggregations_api.get("/aggregations/<path:job>/providers")
def aggregation_providers(job: str) -> Any:
    caller = signed_caller()
    with db().session() as session:
        return aggregation.providers(session, caller, job)


@aggregations_api.get("/aggregations/<path:job>")
def aggregation_state(job: str) -> Any:
    caller = signed_caller()
    with db().session() as session:
        found, addition = aggregation.state(session, caller, job)
    if addition is not None:
        # added outside the write lock: ledger appends need not wait for the sandbox
        total = aggregation.add(adders(), addition)
        with db().write_lock, db().transaction() as session:
            found["total"] = aggregation.keep_total(session, job, total)
    return found
