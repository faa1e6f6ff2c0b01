"""PSI jobs: the consumer's run and the provider's compute step (the standard protocol, where
the consumer learns the result; the provider-counted cardinality is connectors.psi_counted).

Consumer (its input never leaves it):
  1. in the sandbox reads and encrypts its set under a fresh client key (psi.client_request);
  2. sends the request with the agreement id to the provider (signed, framed);
  3. in the sandbox, decrypts the answer and compares it with the provider's setup;
  4. enforces result-time constraints (minimum result size k) before showing a result;
  5. checks and countersigns the provider's usage record (connectors.records).

Provider: connectors.provider runs the guard first; only then does the sandbox parse the
request, and it checks that the request's size is the one declared.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from sqlalchemy import select

from connectors import datasets, job_store, negotiation, psi_counted, psi_sum, records
from connectors.consumer_input import input_keys
from connectors.context import Connector
from connectors.errors import NotFound, Refused
from connectors.models import Job, JobStatus, Negotiation, OutboxRecord, OutboxState
from connectors.provider import Computed
from connectors.requests import PsiJob, Withheld
from contracts.agreements import agreement_policy
from contracts.documents import new_signed
from contracts.offers import agreed_fee
from contracts.usage import Outcome, build_record
from node.signing import RemoteError
from policies import operations
from policies.evaluate import withheld_reason
from policies.reasons import say
from sandbox import framing
from sandbox.interface import WorkerJob
from sandbox.limits import MiB
from sandbox.ops import psi_engines


def submit(ctx: Connector, request: PsiJob) -> Job:
    """Create the consumer's job once its input is checked, and start it: the standard run, or
    with an ``epsilon`` the provider-counted one (connectors.psi_counted)."""
    op = request.operation
    if op == psi_sum.OPERATION:
        return psi_sum.submit(ctx, request)
    if request.sum is not None or request.by is not None:
        raise Refused(f"sum, by: only {psi_sum.OPERATION} sums a column, not {op}")
    neg = negotiation.find(ctx, request.agreement, role="consumer")
    if neg.agreement_id is None:
        raise Refused(f"negotiation {neg.id} is {neg.state} and has no agreement yet")
    path, column, keys = input_keys(request.input, request.column, "input")
    epsilon = None
    if request.epsilon is not None:
        if op != psi_counted.OPERATION:
            raise Refused(f"epsilon: only {psi_counted.OPERATION} releases a noisy count, not {op}")
        epsilon = psi_counted.check_epsilon(request.epsilon)
    job = Job(
        id=f"urn:uuid:{uuid.uuid4()}",
        role="consumer",
        agreement_id=neg.agreement_id,
        peer_id=neg.peer_id,
        operation=op,
        status=JobStatus.RUNNING,
        phase="queued",
        input_path=str(path.resolve()),
        key_column=column,
        consumer_set_size=len(keys),
        metrics={"request": {"mode": "counted", "epsilon": epsilon}} if epsilon is not None else None,
    )
    with ctx.db.transaction() as session:
        session.add(job)
    if epsilon is not None:
        ctx.background(psi_counted.run_consumer, ctx, job.id, epsilon)
    else:
        ctx.background(run_consumer, ctx, job.id)
    return job


def _request_header(job: Job, size: int, engine: str) -> dict[str, Any]:
    """The framed request's header (connectors.requests.PsiJobHeader)."""
    return {"job": job.id, "agreement": job.agreement_id, "operation": job.operation,
            "consumer_set_size": size, "engine": engine}  # fmt: skip


def run_consumer(ctx: Connector, job_id: str) -> None:
    job = job_store.get(ctx, job_id)
    neg = negotiation.find(ctx, job.agreement_id, role="consumer")
    reveal = job.operation == "psi.intersection"
    engine = ctx.settings.psi_engine  # the provider runs the engine the request names
    clock = time.perf_counter()
    metrics: dict[str, Any] = {"engine": engine}
    with job_store.ending_failed(ctx, job_id):
        job_store.update(ctx, job_id, phase="encrypting", backend=ctx.backend.name)
        step1 = ctx.backend.run(
            WorkerJob(
                "psi.client_request",
                {"column": job.key_column, "reveal_intersection": reveal, "engine": engine},
                [],
                job.input_path,
            ),
            job_store.phase_progress(ctx, job_id, 0.0, 0.3),
        )
        size = step1.header["consumer_set_size"]
        metrics["encrypt_s"] = round(time.perf_counter() - clock, 3)
        job_store.update(ctx, job_id, phase="provider", consumer_set_size=size, progress=0.3)
        header = _request_header(job, size, engine)
        try:
            answer = ctx.client.send(
                "POST",
                f"{neg.peer_endpoint}/jobs",
                content=framing.encode(header, [step1.blobs[0]]),
                content_type=framing.MEDIA_TYPE,
                timeout=float(ctx.settings.limits.wall_seconds + 60),
            )
        except RemoteError as exc:
            records.provider_refused(ctx, job, exc)
            return
        reply, blobs = framing.decode(answer.content, ctx.settings.limits.output_mb * MiB)
        signed_record = reply.get("usage_record")
        metrics["provider_s"] = round(time.perf_counter() - clock - metrics["encrypt_s"], 3)
        job_store.update(
            ctx, job_id, phase="decrypting", progress=0.7, provider_set_size=reply.get("provider_set_size")
        )
        step3 = ctx.backend.run(
            WorkerJob(
                "psi.client_result",
                {
                    "key": step1.header["key"],
                    "reveal_intersection": reveal,
                    "expected": size,
                    "engine": engine,
                },
                blobs[:2],
            ),
            job_store.phase_progress(ctx, job_id, 0.7, 0.25),
        )
        metrics.update(
            decrypt_s=round(time.perf_counter() - clock - metrics["encrypt_s"] - metrics["provider_s"], 3),
            consumer_sandbox_peak_rss_mb=max(step1.peak_rss_mb, step3.peak_rss_mb),
            provider_sandbox_peak_rss_mb=reply.get("sandbox_peak_rss_mb"),
            consumer_sandbox=[step1.backend, *step1.isolation],
            provider_sandbox=reply.get("sandbox"),
        )
        result: dict[str, Any] | None
        if reveal:
            items, indices = json.loads(step1.blobs[1]), json.loads(step3.blobs[0])
            result = {"intersection": [items[i] for i in indices]}
            result_size = len(indices)
        else:
            result_size = step3.header["cardinality"]
            result = {"cardinality": result_size}
        status, error = JobStatus.SUCCEEDED, None
        policy = agreement_policy(neg.agreement["document"])  # type: ignore[index]
        withheld = withheld_reason(
            tuple(policy.constraint_values(job.operation, "resultSize")), {"resultSize": result_size}
        )
        record_outcome = None
        if withheld:
            status, error, result = JobStatus.WITHHELD, withheld, None
            signed_record, record_outcome, error = _ask_to_record_withheld(
                ctx, neg, job, signed_record, withheld
            )
        records.finish(ctx, job, neg, signed_record, status=status, error=error, result=result,
                       metrics=metrics, record_outcome=record_outcome)  # fmt: skip


def _ask_to_record_withheld(
    ctx: Connector, neg: Negotiation, job: Job, signed_record: Any, reason: str
) -> tuple[Any, str | None, str]:
    """In a standard PSI run only this connector sees the result, so it tells the provider that
    it withheld it; the provider records the use as withheld instead of succeeded when that does
    not change the fee (:func:`on_withheld`). Returns (the record to countersign, its outcome,
    the job's error)."""
    try:
        answer = ctx.client.send(
            "POST",
            f"{neg.peer_endpoint}/jobs/{job.id}/withheld",
            json={"record": signed_record["document"]["id"]},
        )
    except (RemoteError, KeyError, TypeError) as exc:
        detail = exc.problem.get("detail") if isinstance(exc, RemoteError) else None
        return signed_record, None, f"{reason}; the provider records the use as succeeded: {detail or exc}"
    return answer.json(), JobStatus.WITHHELD, reason


def compute(ctx: Connector, header: dict[str, Any], blobs: list[bytes]) -> Any:
    """The provider's step of a standard PSI job: its dataset's setup and the consumer's
    request processed, in the sandbox, under the offer's limits."""

    def step(neg: Negotiation, dataset: Any) -> Computed:
        computed = ctx.backend.run(
            WorkerJob(
                "psi.provider",
                {
                    "column": dataset.key_column,
                    "consumer_set_size": header["consumer_set_size"],
                    "reveal_intersection": header["operation"] == "psi.intersection",
                    "engine": header.get("engine", psi_engines.DEFAULT),
                },
                blobs,
                dataset.path,
                datasets.offer_limits(ctx, neg.offer_id),
            )
        )
        peak, sandbox = computed.peak_rss_mb, [computed.backend, *computed.isolation]
        return Computed(
            reply={"provider_set_size": computed.header["provider_set_size"], "sandbox_peak_rss_mb": peak,
                   "sandbox": sandbox},
            blobs=computed.blobs,
            provider_set_size=computed.header["provider_set_size"],
            metrics={"sandbox": sandbox, "sandbox_peak_rss_mb": peak},
        )  # fmt: skip

    return step


CONSUMER_WITHHELD = say("withheld-by-consumer")


def on_withheld(ctx: Connector, caller: str, job_id: str, notice: Withheld) -> dict[str, Any]:
    """The consumer withheld a standard PSI result (k not met), which only it can see: the use is
    recorded as ``withheld`` — a new record replacing the succeeded one before either was
    countersigned or delivered — when the fee stays what it was. The provider cannot check the
    claim, so it never lowers its fee on the consumer's word (an offer that waives withheld
    fees needs the provider-counted run: connectors.psi_counted)."""
    with ctx.db.transaction() as session:
        row = session.scalar(
            select(OutboxRecord).where(OutboxRecord.job_id == job_id, OutboxRecord.id == notice.record)
        )
        if row is None:
            raise NotFound(f"no usage record {notice.record!r} for job {job_id}")
        record = row.signed["document"]
        if record["consumer"] != caller:
            raise Refused(f"{caller} is not the consumer of job {job_id}", status=403)
        if record["operation"] not in operations.names("psi") or record["outcome"] != Outcome.SUCCEEDED:
            raise Refused(
                f"only a succeeded PSI use is withheld at its consumer's word; {record['id']} is a "
                f"{record['outcome']} {record['operation']} use",
                status=409,
            )
        if row.state != OutboxState.AWAITING:
            raise Refused(f"usage record {record['id']} is {row.state}: it stays as it is", status=409)
        neg = negotiation.find(ctx, record["agreement"], role="provider")
        fee = agreed_fee(neg.agreement["document"], Outcome.WITHHELD, record["consumer_set_size"])  # type: ignore[index]
        if fee != record["fee_fen"]:
            raise Refused(
                f"the offer waives the fee of a withheld result ({fee} fen, not {record['fee_fen']}); in a "
                "standard PSI run the provider cannot check that the result was withheld. Ask for a count "
                "the provider computes (--epsilon) to have a withheld result free of charge",
                status=409,
            )
        new_id = f"urn:uuid:{uuid.uuid4()}"
        withheld = build_record(
            **{**record, "id": new_id, "outcome": Outcome.WITHHELD, "reason": CONSUMER_WITHHELD}
        )
        signed = new_signed(withheld, ctx.id, ctx.key)
        session.delete(row)
        session.add(OutboxRecord(id=new_id, job_id=job_id, signed=signed, state=OutboxState.AWAITING))
        job = session.get(Job, job_id)
        if job is not None:
            job.status, job.error, job.record_id = JobStatus.WITHHELD, CONSUMER_WITHHELD, new_id
    return signed
