"""Usage records between the two connectors of a job: the provider signs each attempt's record
(succeeded, withheld, denied or failed) with the job's end; the consumer checks that a record
describes its job before it countersigns, and stores it with its job's end; the provider takes
the countersignature back. Both ends write a record and their job's final state in one
transaction, so neither can be lost without the other.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from connectors import attempts, job_store, negotiation
from connectors.attempts import Attempt
from connectors.context import Connector
from connectors.errors import NotFound, Refused
from connectors.models import Job, JobStatus, Negotiation, OutboxRecord, OutboxState
from connectors.requests import Countersignature
from contracts.documents import sign_document, verify_document
from contracts.errors import ContractError
from contracts.usage import BILLABLE, Outcome, check_describes
from node.models import utcnow
from node.problems import Problem
from node.signing import RemoteError


# --- provider -------------------------------------------------------------------------------
def record_attempt(
    ctx: Connector,
    caller: str,
    header: dict[str, Any],
    attempt: Attempt,
    *,
    job_id: str,
    metrics: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Signs the attempt's usage record and stores it with the provider's job in one
    transaction; a refusal is raised as a problem carrying the record. Returns the record."""
    record, signed = attempts.sign_record(ctx, caller, header, attempt)
    with ctx.db.transaction() as session:
        attempts.finish(session, ctx, job_id, caller, header, attempt, record, signed, metrics)
    if attempt.outcome not in BILLABLE:
        title = "Job denied" if attempt.outcome == Outcome.DENIED else "Job failed"
        raise Problem(
            attempt.status, title, attempt.reason, kind=f"job-{attempt.outcome}", usage_record=signed
        )
    return signed


def on_countersignature(ctx: Connector, caller: str, job_id: str, body: Countersignature) -> None:
    with ctx.db.transaction() as session:
        query = select(OutboxRecord).where(OutboxRecord.job_id == job_id)
        if body.record is not None:
            query = query.where(OutboxRecord.id == body.record)
        row = session.scalar(query)
        if row is None:
            raise NotFound(f"no usage record for job {job_id}")
        if row.signed["document"]["consumer"] != caller:
            raise Refused(f"{caller} is not the consumer of job {job_id}", status=403)
        signature = body.signatures.get(caller)
        signed = {
            "document": row.signed["document"],
            "signatures": {**row.signed["signatures"], caller: signature},
        }
        keys = {ctx.id: ctx.key.public_key, caller: ctx.space.member(caller)["public_key"]}
        try:
            verify_document(signed, keys, keys.__getitem__)
        except ContractError as exc:
            raise Refused(f"countersignature refused: {exc}") from exc
        if row.state == OutboxState.AWAITING:
            row.signed, row.state = signed, OutboxState.READY
    ctx.outbox_wakeup.set()


# --- consumer -------------------------------------------------------------------------------
def provider_refused(ctx: Connector, job: Job, exc: RemoteError) -> None:
    neg = negotiation.find(ctx, job.agreement_id, role="consumer")
    record = exc.problem.get("usage_record")
    status = JobStatus.DENIED if exc.status == 403 else JobStatus.FAILED
    detail = exc.problem.get("detail") or str(exc)
    if record is None:
        job_store.update(
            ctx,
            job.id,
            status=JobStatus.FAILED,
            phase="done",
            finished_at=utcnow(),
            error=f"provider: {detail}",
        )
        return
    finish(ctx, job, neg, record, status=status, error=f"{status} by provider: {detail}", result=None)


def finish(
    ctx: Connector,
    job: Job,
    neg: Negotiation,
    signed_record: Any,
    *,
    status: str,
    error: str | None,
    result: dict[str, Any] | None,
    metrics: dict[str, Any] | None = None,
    record_outcome: str | None = None,
) -> None:
    """Check the provider's record describes this job, countersign it, and store it in the
    outbox in the same transaction as the job's final state. The record's outcome is the job's
    status, except that a result this connector withholds was a success at the provider."""
    expected_outcome = record_outcome or (Outcome.SUCCEEDED if status in BILLABLE else status)
    countersigned = None
    try:
        countersigned = countersign(ctx, job.id, job.operation, neg, signed_record, expected_outcome)
    except (ContractError, KeyError, TypeError) as exc:
        error = f"{error + '; ' if error else ''}provider's usage record refused: {exc}"
        status = JobStatus.FAILED if status == JobStatus.SUCCEEDED else status
    with ctx.db.transaction() as session:
        stored = session.get(Job, job.id)
        assert stored is not None
        stored.status, stored.error, stored.result, stored.metrics = status, error, result, metrics
        stored.phase, stored.progress, stored.finished_at = "done", 1.0, utcnow()
        if countersigned is not None:
            stored.record_id = countersigned["document"]["id"]
            session.add(
                OutboxRecord(
                    id=stored.record_id, job_id=job.id, signed=countersigned, state=OutboxState.READY
                )
            )
    ctx.job_changes.changed()
    if countersigned is not None:
        ctx.outbox_wakeup.set()
        ctx.background(send_countersignature, ctx, neg, job.id, countersigned)


def countersign(
    ctx: Connector, job_id: str, operation: str, neg: Negotiation, signed_record: Any, outcome: str
) -> dict[str, Any]:
    """The provider's usage record countersigned, once it is checked to describe this job: its
    ids, parties and outcome, the number of items this connector sent, and the fee the agreement
    gives for them (a provider that inflates a size or a fee gets no countersignature, so its
    record is disputed, not billed)."""
    provider_key = ctx.space.member(neg.peer_id)["public_key"]
    verify_document(signed_record, {neg.peer_id}, lambda _: provider_key)
    record = signed_record["document"]
    expected = {
        "job": job_id,
        "agreement": neg.agreement_id,
        "consumer": ctx.id,
        "provider": neg.peer_id,
        "operation": operation,
        "outcome": outcome,
        "consumer_set_size": job_store.get(ctx, job_id).consumer_set_size,
    }
    check_describes(record, expected, neg.agreement["document"], utcnow())  # type: ignore[index]
    return sign_document(signed_record, ctx.id, ctx.key)


def send_countersignature(ctx: Connector, neg: Negotiation, job_id: str, signed: dict[str, Any]) -> None:
    ctx.client.send(
        "POST",
        f"{neg.peer_endpoint}/jobs/{job_id}/countersignature",
        # the record id too: one provider may hold several agreements of one he.aggregate job
        json={"record": signed["document"]["id"], "signatures": {ctx.id: signed["signatures"][ctx.id]}},
    )
