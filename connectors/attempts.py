"""A provider's job attempts, from the reserved use to the signed record, so that a crash loses
none (issue 12 §6).

The use (and any ε) is reserved and the attempt written as a *pending* provider job in one
transaction, before anything is computed; the attempt's end replaces it with the signed usage
record and its outbox row, again in one transaction. A connector that stops in between (kill -9
during the sandbox, or after the answer was sent) finds the pending attempt at its next start:
it ends it ``failed`` — the provider's fault, so the use and ε are given back, as the README's
outcome table says — and signs its record into the outbox. Uses taken and records written then
agree on both sides. A consumer's job that was running when its connector stopped is ended
``failed`` with the reason: no job shows as running that nothing runs.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from connectors.context import Connector, log
from connectors.models import SCRIPT_OPEN, Job, JobStatus, Negotiation, OutboxRecord, OutboxState
from contracts.documents import new_signed
from contracts.usage import Outcome, build_record
from node.models import utcnow
from policies.model import format_datetime
from policies.reasons import say

# a consumer's script job whose phase is one of these waits at its provider (for a reviewer, or
# a run there): nothing runs here, so a restart here does not end it (connectors.script_jobs)
AT_PROVIDER = tuple(state.value for state in SCRIPT_OPEN)
PENDING = "pending"  # the phase of a provider job whose use is reserved and whose end is not written
INTERRUPTED_PROVIDER = say("interrupted-provider")
INTERRUPTED_CONSUMER = "this connector stopped while the job ran; run the job again"


@dataclass(frozen=True)
class Attempt:
    """How a job request ended at the provider, for its usage record."""

    outcome: str  # succeeded | denied | failed
    reason: str
    status: int  # the HTTP status of a refusal
    dataset: str | None
    purpose: str | None
    fee_fen: int
    started: dt.datetime
    provider_set_size: int | None = None


def reserve(
    session: Session,
    neg: Negotiation,
    attempt_id: str,
    caller: str,
    header: dict[str, Any],
    epsilon: float,
    started: dt.datetime,
) -> bool:
    """Take the next use (and ``epsilon``) by compare-and-set, and write the pending attempt,
    in the caller's transaction. False when another job took the use at the same moment."""
    taken = session.execute(
        update(Negotiation)
        .where(Negotiation.id == neg.id, Negotiation.uses == neg.uses)
        .where(Negotiation.epsilon_spent == neg.epsilon_spent)
        .values(uses=neg.uses + 1, epsilon_spent=neg.epsilon_spent + epsilon)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        return False
    pending = {
        "job": header["job"],
        "agreement": header["agreement"],
        "operation": header["operation"],
        "consumer_set_size": header.get("consumer_set_size"),
        "dataset": neg.dataset_id,
        "purpose": neg.purpose,
        "epsilon": epsilon,
        "started": format_datetime(started),
    }
    session.add(
        Job(
            id=attempt_id,
            role="provider",
            agreement_id=str(header["agreement"]),
            peer_id=caller,
            operation=str(header["operation"]),
            status=JobStatus.RUNNING,
            phase=PENDING,
            consumer_set_size=header.get("consumer_set_size"),
            metrics={PENDING: pending},
        )
    )
    return True


def give_back(ctx: Connector, neg_id: str, epsilon: float = 0.0) -> None:
    """Return a reserved use and its ε in one transaction: the attempt failed by the provider's
    own fault (the README's outcome table)."""
    with ctx.db.transaction() as session:
        session.execute(
            update(Negotiation)
            .where(Negotiation.id == neg_id)
            .values(uses=Negotiation.uses - 1, epsilon_spent=Negotiation.epsilon_spent - epsilon)
        )


def sign_record(
    ctx: Connector, caller: str, header: dict[str, Any], attempt: Attempt
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the record, the record signed by this provider) for an attempt's end."""
    record = build_record(
        id=f"urn:uuid:{uuid.uuid4()}",
        job=header["job"],
        agreement=header["agreement"],
        dataset=attempt.dataset,
        provider=ctx.id,
        consumer=caller,
        operation=header["operation"],
        purpose=attempt.purpose,
        outcome=attempt.outcome,
        reason=attempt.reason,
        consumer_set_size=header.get("consumer_set_size"),
        provider_set_size=attempt.provider_set_size,
        fee_fen=attempt.fee_fen,
        started_at=format_datetime(attempt.started),
        finished_at=format_datetime(utcnow()),
    )
    return record, new_signed(record, ctx.id, ctx.key)


def finish(
    session: Session,
    ctx: Connector,
    attempt_id: str,
    caller: str,
    header: dict[str, Any],
    attempt: Attempt,
    record: dict[str, Any],
    signed: dict[str, Any],
    metrics: dict[str, Any] | None,
    state: str = OutboxState.AWAITING,
) -> None:
    """Write the attempt's end — its job row (the pending one, or a new one for a refusal that
    reserved nothing) and its record in the outbox, in ``state`` — in the caller's transaction."""
    job = session.get(Job, attempt_id)
    if job is None:
        job = Job(
            id=attempt_id,
            role="provider",
            agreement_id=str(header["agreement"]),
            peer_id=caller,
            operation=str(header["operation"]),
        )
        session.add(job)
    job.status, job.phase, job.progress = attempt.outcome, "done", 1.0
    job.consumer_set_size = header.get("consumer_set_size")
    job.provider_set_size = attempt.provider_set_size
    job.error = None if attempt.outcome == Outcome.SUCCEEDED else attempt.reason
    job.backend, job.record_id, job.metrics, job.finished_at = (
        ctx.backend.name,
        record["id"],
        metrics,
        utcnow(),
    )
    session.add(OutboxRecord(id=record["id"], job_id=header["job"], signed=signed, state=state))


def recover(ctx: Connector) -> dict[str, int]:
    """At start-up: end every pending provider attempt as failed (use and ε given back, record
    signed into the outbox) and every running consumer job as failed. Returns the counts."""
    counts = {"provider": 0, "consumer": 0}
    with ctx.db.session() as session:
        pending = list(session.scalars(select(Job).where(Job.role == "provider", Job.phase == PENDING)))
        running = list(
            session.scalars(
                select(Job.id)
                .where(Job.role == "consumer", Job.status == JobStatus.RUNNING)
                .where(~((Job.operation == "script") & Job.phase.in_(AT_PROVIDER)))
            )
        )
    for job in pending:
        held = dict((job.metrics or {}).get(PENDING) or {})
        header = {key: held.get(key) for key in ("job", "agreement", "operation", "consumer_set_size")}
        started = dt.datetime.fromisoformat(str(held.get("started")).replace("Z", "+00:00"))
        attempt = Attempt(
            Outcome.FAILED, INTERRUPTED_PROVIDER, 500, held.get("dataset"), held.get("purpose"), 0, started
        )
        record, signed = sign_record(ctx, job.peer_id, header, attempt)
        with ctx.db.transaction() as session:
            session.execute(
                update(Negotiation)
                .where(Negotiation.agreement_id == job.agreement_id, Negotiation.role == "provider")
                .values(
                    uses=Negotiation.uses - 1,
                    epsilon_spent=Negotiation.epsilon_spent - float(held.get("epsilon") or 0.0),
                )
            )
            # the consumer never received this record and will not countersign it: deliver it
            # now, signed by the provider alone (a failure: it bills nothing)
            finish(
                session,
                ctx,
                job.id,
                job.peer_id,
                header,
                attempt,
                record,
                signed,
                {"recovered": True},
                OutboxState.READY,
            )
        counts["provider"] += 1
    for job_id in running:
        ctx.db.update(
            Job,
            job_id,
            status=JobStatus.FAILED,
            phase="done",
            error=INTERRUPTED_CONSUMER,
            finished_at=utcnow(),
        )
        counts["consumer"] += 1
    if any(counts.values()):
        log.warning("ended %(provider)d interrupted provider attempts and %(consumer)d consumer jobs", counts)
    return counts
