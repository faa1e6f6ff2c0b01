"""PSI jobs: the consumer's orchestration and the provider's guarded side.

Consumer (its input never leaves it):
  1. checks its input (CSV, key column) before anything is created, then in the sandbox reads
     and encrypts its set under a fresh client key (psi.client_request);
  2. sends the request with the agreement id to the provider (signed, framed);
  3. in the sandbox, decrypts the answer and compares it with the provider's setup;
  4. enforces result-time constraints (minimum result size k) before showing a result;
  5. checks and countersigns the provider's usage record and hands it to the outbox in the
     same transaction as the job's final state.

Provider: before any protocol message is processed it checks the agreement (known, with this
consumer, FINALIZED, operation included) and evaluates its policy on the job's context
(purpose, recipient, jurisdiction, time, use count, consumer set size). Only then does the
sandbox parse the request — and checks that its size is the one declared. Every attempt
ends in a signed usage record: succeeded, denied or failed, with the reason.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from flask import Response
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from connectors import attempts, datasets, negotiation
from connectors.attempts import Attempt
from connectors.context import Connector, log
from connectors.errors import NotFound, Refused
from connectors.models import Job, Negotiation, OutboxRecord
from contracts.agreements import State, agreement_policy
from contracts.documents import new_signed, sign_document, verify_document
from contracts.errors import ContractError
from contracts.offers import agreed_fee
from contracts.usage import build_record, check_describes
from node.models import utcnow
from node.problems import Problem
from node.signing import RemoteError
from policies.evaluate import evaluate, withheld_reason
from sandbox import framing
from sandbox.errors import LimitExceeded, SandboxError, WorkerFailed
from sandbox.interface import WorkerJob
from sandbox.limits import MiB
from sandbox.ops.csvkeys import read_keys

PSI_OPERATIONS = ("psi.cardinality", "psi.intersection")
HE_OPERATIONS = ("he.aggregate", "he.score")
FRAMES = "application/vnd.tds.frames"
DEFAULT_PAGE = 1000


def view(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "role": job.role,
        "agreement": job.agreement_id,
        "peer": job.peer_id,
        "operation": job.operation,
        "status": job.status,
        "phase": job.phase,
        "progress": round(job.progress, 4),
        "consumer_set_size": job.consumer_set_size,
        "provider_set_size": job.provider_set_size,
        "error": job.error,
        "backend": job.backend,
        "record_id": job.record_id,
        "metrics": job.metrics,
        "created_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "summary": _summary(job),
    }


def _summary(job: Job) -> dict[str, Any] | None:
    if job.status != "succeeded" or job.result is None:
        return None
    if "statistics" in job.result:
        return {"statistics": job.result["statistics"], "contributors": job.result["contributors"]}
    if "values" in job.result or "scores" in job.result:
        count, missing = _score_counts(job.result)
        return {"scored": count - missing, "not_found": missing}
    if "cardinality" in job.result:
        return {"cardinality": job.result["cardinality"]}
    return {"intersection_size": len(job.result.get("intersection", []))}


def get(ctx: Connector, job_id: str) -> Job:
    with ctx.db.session() as session:
        job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"no job {job_id!r} at this connector")
    return job


def list_all(ctx: Connector, limit: int = 100) -> list[Job]:
    with ctx.db.session() as session:
        return list(session.scalars(select(Job).order_by(Job.created_at.desc()).limit(limit)))


def _update(ctx: Connector, job_id: str, **changes: Any) -> None:
    """Every change to a job after it was created goes through here: it wakes the waiters."""
    ctx.db.update(Job, job_id, **changes)
    ctx.job_changes.changed()


MOST_WAIT_S = 60.0


def wait(ctx: Connector, job_id: str, seconds: float) -> Job:
    """The job once it is no longer running, or as it is after ``seconds`` (at most
    :data:`MOST_WAIT_S`): a client learns of the end the moment it happens."""
    deadline = time.monotonic() + min(seconds, MOST_WAIT_S)
    if not ctx.job_changes.seat():
        return get(ctx, job_id)
    try:
        while True:
            seen = ctx.job_changes.version  # before reading: a change after it wakes us
            job = get(ctx, job_id)
            left = deadline - time.monotonic()
            if job.status != "running" or left <= 0 or ctx.stopping.is_set():
                return job
            ctx.job_changes.wait(seen, min(left, 1.0))
    finally:
        ctx.job_changes.leave()


# --- consumer side ----------------------------------------------------------------------------
def submit(ctx: Connector, body: dict[str, Any]) -> Job:
    """Validate a job request and start it; a bad input is refused and nothing is created."""
    op = body.get("operation")
    if op in HE_OPERATIONS:
        from connectors import he_jobs

        return he_jobs.submit(ctx, body)
    if op not in PSI_OPERATIONS:
        raise Refused(f"operation {op!r}: this connector runs {list(PSI_OPERATIONS + HE_OPERATIONS)}")
    neg = negotiation.find(ctx, str(body.get("agreement", "")), role="consumer")
    if neg.agreement_id is None:
        raise Refused(f"negotiation {neg.id} is {neg.state} and has no agreement yet")
    path, column, keys = input_keys(body, "input")
    counted = body.get("epsilon") is not None
    if counted:
        from connectors import psi_counted

        if op != psi_counted.OPERATION:
            raise Refused(f"epsilon: only {psi_counted.OPERATION} releases a noisy count, not {op}")
        epsilon = psi_counted.check_epsilon(body["epsilon"])
    job = Job(
        id=f"urn:uuid:{uuid.uuid4()}",
        role="consumer",
        agreement_id=neg.agreement_id,
        peer_id=neg.peer_id,
        operation=op,
        status="running",
        phase="queued",
        input_path=str(path.resolve()),
        key_column=column,
        consumer_set_size=len(keys),
        metrics={"request": {"mode": "counted", "epsilon": epsilon}} if counted else None,
    )
    with ctx.db.transaction() as session:
        session.add(job)
    if counted:
        ctx.background(psi_counted.run_consumer, ctx, job.id, epsilon)
    else:
        ctx.background(run_consumer, ctx, job.id)
    return job


def input_keys(body: dict[str, Any], field: str) -> tuple[Path, str, list[str]]:
    """The consumer's own CSV named by ``body[field]``, and the distinct keys of its
    ``body["column"]``: checked before any job exists, so a bad input creates nothing."""
    path = Path(str(body.get(field, "")))
    column = body.get("column")
    if not isinstance(column, str) or not column:
        raise Refused(f"column: name the {field} file's key column (--column)")
    if not path.is_file():
        raise Refused(f"{field} {path}: no such file; give a UTF-8 CSV with a header row")
    try:
        keys = read_keys(path, column)
    except WorkerFailed as exc:
        raise Refused(str(exc), kind="bad-csv") from exc
    if not keys:
        raise Refused(f"{path.name}: column {column!r} has no non-empty values", kind="bad-csv")
    return path, column, keys


def _phase_progress(ctx: Connector, job_id: str, start: float, span: float) -> Any:
    last = [0.0]

    def report(fraction: float) -> None:
        value = start + span * fraction
        if value - last[0] >= 0.02 or fraction >= 1.0:
            last[0] = value
            _update(ctx, job_id, progress=value)

    return report


@contextlib.contextmanager
def ending_failed(ctx: Connector, job_id: str) -> Iterator[None]:
    """Never leave a consumer's job "running": what the block raises ends it failed (an
    unforeseen error with its traceback in the node's log, and raised on)."""
    try:
        yield
    except (SandboxError, ContractError, framing.FrameError, KeyError, ValueError, TypeError) as exc:
        log.warning("job %s failed on the consumer side: %s", job_id, exc)
        _update(ctx, job_id, status="failed", phase="done", error=f"consumer: {exc}", finished_at=utcnow())
    except Exception as exc:
        log.exception("job %s failed unexpectedly", job_id)
        _update(
            ctx,
            job_id,
            status="failed",
            phase="done",
            error=f"consumer: internal error: {exc}",
            finished_at=utcnow(),
        )
        raise


def run_consumer(ctx: Connector, job_id: str) -> None:
    job = get(ctx, job_id)
    neg = negotiation.find(ctx, job.agreement_id, role="consumer")
    reveal = job.operation == "psi.intersection"
    clock = time.perf_counter()
    metrics: dict[str, Any] = {}
    with ending_failed(ctx, job_id):
        _update(ctx, job_id, phase="encrypting", backend=ctx.backend.name)
        step1 = ctx.backend.run(
            WorkerJob(
                "psi.client_request",
                {"column": job.key_column, "reveal_intersection": reveal},
                [],
                job.input_path,
            ),
            _phase_progress(ctx, job_id, 0.0, 0.3),
        )
        size = step1.header["consumer_set_size"]
        metrics["encrypt_s"] = round(time.perf_counter() - clock, 3)
        _update(ctx, job_id, phase="provider", consumer_set_size=size, progress=0.3)
        header = {
            "job": job.id,
            "agreement": job.agreement_id,
            "operation": job.operation,
            "consumer_set_size": size,
        }
        try:
            answer = ctx.client.send(
                "POST",
                f"{neg.peer_endpoint}/jobs",
                content=framing.encode(header, [step1.blobs[0]]),
                content_type=FRAMES,
                timeout=float(ctx.settings.limits.wall_seconds + 60),
            )
        except RemoteError as exc:
            _provider_refused(ctx, job, exc)
            return
        reply, blobs = framing.decode(answer.content, ctx.settings.limits.output_mb * MiB)
        signed_record = reply.get("usage_record")
        metrics["provider_s"] = round(time.perf_counter() - clock - metrics["encrypt_s"], 3)
        _update(
            ctx, job_id, phase="decrypting", progress=0.7, provider_set_size=reply.get("provider_set_size")
        )
        step3 = ctx.backend.run(
            WorkerJob(
                "psi.client_result",
                {"key": step1.header["key"], "reveal_intersection": reveal, "expected": size},
                blobs[:2],
            ),
            _phase_progress(ctx, job_id, 0.7, 0.25),
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
        status, error = "succeeded", None
        policy = agreement_policy(neg.agreement["document"])  # type: ignore[index]
        withheld = withheld_reason(
            tuple(policy.constraint_values(job.operation, "resultSize")), {"resultSize": result_size}
        )
        record_outcome = None
        if withheld:
            status, error, result = "withheld", withheld, None
            signed_record, record_outcome, error = _ask_to_record_withheld(
                ctx, neg, job, signed_record, withheld
            )
        _finish(ctx, job, neg, signed_record, status=status, error=error, result=result, metrics=metrics,
                record_outcome=record_outcome)  # fmt: skip


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
    return answer.json(), "withheld", reason


def _provider_refused(ctx: Connector, job: Job, exc: RemoteError) -> None:
    neg = negotiation.find(ctx, job.agreement_id, role="consumer")
    record = exc.problem.get("usage_record")
    status = "denied" if exc.status == 403 else "failed"
    detail = exc.problem.get("detail") or str(exc)
    if record is None:
        _update(ctx, job.id, status="failed", phase="done", finished_at=utcnow(), error=f"provider: {detail}")
        return
    _finish(ctx, job, neg, record, status=status, error=f"{status} by provider: {detail}", result=None)


def _finish(
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
    expected_outcome = record_outcome or ("succeeded" if status in ("succeeded", "withheld") else status)
    countersigned = None
    try:
        countersigned = countersign(ctx, job.id, job.operation, neg, signed_record, expected_outcome)
    except (ContractError, KeyError, TypeError) as exc:
        error = f"{error + '; ' if error else ''}provider's usage record refused: {exc}"
        status = "failed" if status == "succeeded" else status
    with ctx.db.transaction() as session:
        stored = session.get(Job, job.id)
        assert stored is not None
        stored.status, stored.error, stored.result, stored.metrics = status, error, result, metrics
        stored.phase, stored.progress, stored.finished_at = "done", 1.0, utcnow()
        if countersigned is not None:
            stored.record_id = countersigned["document"]["id"]
            session.add(OutboxRecord(id=stored.record_id, job_id=job.id, signed=countersigned, state="ready"))
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
        "consumer_set_size": get(ctx, job_id).consumer_set_size,
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


def result(ctx: Connector, job_id: str, offset: int = 0, limit: int = DEFAULT_PAGE) -> dict[str, Any]:
    job = get(ctx, job_id)
    if job.status == "withheld":
        raise Refused(job.error or "result withheld", status=403, kind="withheld")
    if job.status != "succeeded" or job.result is None:
        raise Refused(
            f"job {job_id} is {job.status}" + (f": {job.error}" if job.error else ""),
            status=409,
            kind="no-result",
        )
    if "cardinality" in job.result:
        # a provider-counted cardinality says with which ε its noise was drawn
        noise: dict[str, Any] = {k: job.result[k] for k in ("epsilon", "noise") if k in job.result}
        return {"job": job.id, "operation": job.operation, "cardinality": job.result["cardinality"], **noise}
    if "statistics" in job.result:
        return {"job": job.id, "operation": job.operation, **job.result}
    if "values" in job.result or "scores" in job.result:
        count, _ = _score_counts(job.result)
        return {"job": job.id, "operation": job.operation, "count": count, "offset": offset,
                "scores": _score_rows(job.result, offset, limit)}  # fmt: skip
    items = job.result["intersection"]
    return {
        "job": job.id,
        "operation": job.operation,
        "intersection_size": len(items),
        "offset": offset,
        "intersection": items[offset : offset + limit],
    }


def _score_counts(result: dict[str, Any]) -> tuple[int, int]:
    """(ids, ids not found) of an he.score result. It is kept as the ids and their scores side
    by side (None: not found), a third fewer bytes than a row per id; results stored before
    that are rows (``scores``) and are read as they are."""
    if "values" in result:
        return len(result["values"]), result["values"].count(None)
    rows = result["scores"]
    return len(rows), sum(1 for row in rows if row.get("not_found"))


def _score_rows(result: dict[str, Any], offset: int, limit: int) -> list[dict[str, Any]]:
    if "values" not in result:
        return list(result["scores"][offset : offset + limit])
    window = zip(
        result["ids"][offset : offset + limit], result["values"][offset : offset + limit], strict=True
    )
    return [
        {"id": key, "score": value} if value is not None else {"id": key, "score": None, "not_found": True}
        for key, value in window
    ]


# --- provider side ----------------------------------------------------------------------------
class _Denied(Exception):
    def __init__(self, reason: str, dataset: str | None = None) -> None:
        super().__init__(reason)
        self.dataset = dataset


def _authorize(
    ctx: Connector,
    caller: str,
    header: dict[str, Any],
    extra: dict[str, Any] | None = None,
    *,
    attempt_id: str,
    started: dt.datetime,
    epsilon: float = 0.0,
    then: Callable[[Session], None] | None = None,
) -> tuple[Negotiation, Any]:
    """Check agreement and policy (with the job's ``extra`` context: columns, statistics, ε …);
    then reserve the use (and ``epsilon``) and write the pending attempt ``attempt_id`` in one
    transaction (connectors.attempts), with ``then`` run in it too; return (negotiation, local
    dataset) or raise _Denied."""
    try:
        neg = negotiation.find(ctx, str(header["agreement"]), role="provider")
    except NotFound as exc:
        raise _Denied(f"unknown agreement {header['agreement']}") from exc
    if neg.peer_id != caller:
        raise _Denied(f"{caller} is not the consumer of agreement {neg.agreement_id}")
    if neg.state == State.TERMINATED.value:
        raise _Denied(f"agreement {neg.agreement_id} was terminated: {neg.reason}", neg.dataset_id)
    if neg.state != State.FINALIZED.value or neg.agreement is None:
        raise _Denied(f"agreement {neg.agreement_id} is {neg.state}, not FINALIZED", neg.dataset_id)
    _confirm_in_force(ctx, neg)
    operation = header["operation"]
    if operation not in neg.operations:
        raise _Denied(
            f"operation {operation} is not in the agreement (it permits {neg.operations})", neg.dataset_id
        )
    member = ctx.space.member(caller)
    context = {
        "purpose": neg.purpose,
        "recipient": caller,
        "jurisdiction": member["jurisdiction"],
        "dateTime": utcnow(),
        "count": neg.uses + 1,
        "consumerSetSize": header.get("consumer_set_size"),
        **(extra or {}),
    }
    decision = evaluate(agreement_policy(neg.agreement["document"]), operation, context)
    if not decision.permitted:
        raise _Denied(decision.summary, neg.dataset_id)
    dataset = datasets.by_catalog_id(ctx, neg.dataset_id)
    if dataset is None:
        raise _Denied(f"dataset {neg.dataset_id} is no longer held here", neg.dataset_id)
    # reserve the use: compare-and-set, so concurrent jobs cannot both take the last use
    with ctx.db.transaction() as session:
        taken = attempts.reserve(session, neg, attempt_id, caller, header, epsilon, started)
        if taken and then is not None:
            then(session)
    if not taken:
        raise _Denied(
            "another job took this use (or privacy budget) at the same moment; retry", neg.dataset_id
        )
    return neg, dataset


def _confirm_in_force(ctx: Connector, neg: Negotiation) -> None:
    """Ask the space, before every job and without a cache, whether the agreement is still in
    force: an operator's termination changes only the space's record, and a job under it must
    end at once everywhere (issue 12 §3). While the space cannot answer, jobs are refused."""
    agreement_id = str(neg.agreement_id)
    try:
        recorded = ctx.space.agreement(agreement_id)
    except RemoteError as exc:
        if exc.status == 404:
            raise _Denied(f"agreement {agreement_id} is not recorded at the space", neg.dataset_id) from exc
        why = f"HTTP {exc.status}" if exc.status else "unreachable"
        raise _Denied(
            f"the space cannot confirm that agreement {agreement_id} is in force ({why}); "
            "jobs under it are refused until the space answers",
            neg.dataset_id,
        ) from exc
    if recorded.get("state") == State.TERMINATED.value:
        reason = negotiation.termination_reason(agreement_id, recorded)
        negotiation.terminated_at_the_space(ctx, neg, reason)
        raise _Denied(reason, neg.dataset_id)


def consumers_fault(exc: SandboxError) -> bool:
    """Did the job fail on the consumer's request after the policy check (bad parameters, a
    column that is not numeric)? Then the use counts and any ε is spent, without a fee (the
    README's outcome table): a failure must not be a free probe. A failure of the provider's own
    (its sandbox, limits, data, an internal error) gives both back."""
    return isinstance(exc, WorkerFailed) and exc.kind == "request"


def _release_use(ctx: Connector, neg_id: str) -> None:
    with ctx.db.transaction() as session:
        session.execute(update(Negotiation).where(Negotiation.id == neg_id).values(uses=Negotiation.uses - 1))


def _parse_job_request(body: bytes, cap: int) -> tuple[dict[str, Any], list[bytes]]:
    try:
        header, blobs = framing.decode(body, cap)
    except framing.FrameError as exc:
        raise Refused(f"job request: {exc}", status=400) from exc
    if header.get("operation") in HE_OPERATIONS:
        if not all(isinstance(header.get(k), str) for k in ("job", "agreement")):
            raise Refused("job request: expected job and agreement ids", status=400)
        return header, blobs
    kinds = {"job": str, "agreement": str, "operation": str, "consumer_set_size": int}
    wrong = [
        k for k, t in kinds.items() if not isinstance(header.get(k), t) or isinstance(header.get(k), bool)
    ]
    if (
        wrong
        or len(blobs) != 1
        or header["operation"] not in PSI_OPERATIONS
        or header["consumer_set_size"] < 1
    ):
        raise Refused(
            f"job request: expected {{job, agreement, operation in {list(PSI_OPERATIONS)}, "
            f"consumer_set_size ≥ 1}} and one blob; wrong: {wrong or 'blobs/operation'}",
            status=400,
        )
    return header, blobs


def handle_job(ctx: Connector, caller: str, body: bytes) -> Response:
    header, blobs = _parse_job_request(body, ctx.settings.max_body_mb * MiB)
    if header["operation"] in HE_OPERATIONS:
        from connectors import he_jobs

        return he_jobs.handle_job(ctx, caller, header, blobs)
    with ctx.db.session() as session:
        if session.get(Job, header["job"]) is not None:
            raise Refused(f"job id {header['job']} was already used; a job runs once", status=409)
    if header.get("mode") is not None:
        from connectors import psi_counted

        if header["mode"] != psi_counted.MODE:
            raise Refused(
                f"job request mode: expected {psi_counted.MODE!r} or none, got {header['mode']!r}", status=400
            )
        return psi_counted.start(ctx, caller, header, blobs)
    started = utcnow()
    status = 500
    peak = 0.0
    sandbox: list[str] = [ctx.backend.name]  # the backend, then what isolated this run
    neg: Negotiation | None = None
    dataset_id: str | None = None
    outcome, reason, provider_size, fee = "denied", "", None, 0
    answer_blobs: list[bytes] = []
    try:
        neg, dataset = _authorize(ctx, caller, header, attempt_id=header["job"], started=started)
        dataset_id = neg.dataset_id
        try:
            computed = ctx.backend.run(
                WorkerJob(
                    "psi.provider",
                    {
                        "column": dataset.key_column,
                        "consumer_set_size": header["consumer_set_size"],
                        "reveal_intersection": header["operation"] == "psi.intersection",
                    },
                    blobs,
                    dataset.path,
                    datasets.offer_limits(ctx, neg.offer_id),
                )
            )
        except SandboxError as exc:
            if not consumers_fault(exc):
                _release_use(ctx, neg.id)
            outcome, reason = "failed", str(exc)
            status = 422 if consumers_fault(exc) else 500
            if isinstance(exc, LimitExceeded):
                status = 507
        else:
            outcome, reason = "succeeded", "completed"
            provider_size = computed.header["provider_set_size"]
            fee = agreed_fee(neg.agreement["document"], outcome, header["consumer_set_size"])  # type: ignore[index]
            answer_blobs = computed.blobs
            peak = computed.peak_rss_mb
            sandbox = [computed.backend, *computed.isolation]
    except _Denied as exc:
        outcome, reason, dataset_id = "denied", str(exc), exc.dataset
        status = 403
    signed = record_attempt(
        ctx,
        caller,
        header,
        Attempt(
            outcome, reason, status, dataset_id, neg.purpose if neg else None, fee, started, provider_size
        ),
        job_id=header["job"],
        metrics={"sandbox": sandbox, "sandbox_peak_rss_mb": peak},
    )
    reply = {
        "usage_record": signed,
        "provider_set_size": provider_size,
        "sandbox_peak_rss_mb": peak,
        "sandbox": sandbox,
    }
    return Response(framing.encode(reply, answer_blobs), mimetype=FRAMES)


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
    if attempt.outcome not in ("succeeded", "withheld"):
        title = "Job denied" if attempt.outcome == "denied" else "Job failed"
        raise Problem(
            attempt.status, title, attempt.reason, kind=f"job-{attempt.outcome}", usage_record=signed
        )
    return signed


CONSUMER_WITHHELD = (
    "result withheld by the consumer's connector: the agreement's minimum result size is not met"
)


def on_withheld(ctx: Connector, caller: str, job_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """The consumer withheld a standard PSI result (k not met), which only it can see: the use is
    recorded as ``withheld`` — a new record replacing the succeeded one before either was
    countersigned or delivered — when the fee stays what it was. The provider cannot check the
    claim, so it never lowers its fee on the consumer's word (an offer that waives withheld
    fees needs the provider-counted run: connectors.psi_counted)."""
    with ctx.db.transaction() as session:
        row = session.scalar(
            select(OutboxRecord).where(
                OutboxRecord.job_id == job_id, OutboxRecord.id == str(body.get("record"))
            )
        )
        if row is None:
            raise NotFound(f"no usage record {body.get('record')!r} for job {job_id}")
        record = row.signed["document"]
        if record["consumer"] != caller:
            raise Refused(f"{caller} is not the consumer of job {job_id}", status=403)
        if record["operation"] not in PSI_OPERATIONS or record["outcome"] != "succeeded":
            raise Refused(
                f"only a succeeded PSI use is withheld at its consumer's word; {record['id']} is a "
                f"{record['outcome']} {record['operation']} use",
                status=409,
            )
        if row.state != "awaiting_countersignature":
            raise Refused(f"usage record {record['id']} is {row.state}: it stays as it is", status=409)
        neg = negotiation.find(ctx, record["agreement"], role="provider")
        fee = agreed_fee(neg.agreement["document"], "withheld", record["consumer_set_size"])  # type: ignore[index]
        if fee != record["fee_fen"]:
            raise Refused(
                f"the offer waives the fee of a withheld result ({fee} fen, not {record['fee_fen']}); in a "
                "standard PSI run the provider cannot check that the result was withheld. Ask for a count "
                "the provider computes (--epsilon) to have a withheld result free of charge",
                status=409,
            )
        new_id = f"urn:uuid:{uuid.uuid4()}"
        withheld = build_record(
            **{**record, "id": new_id, "outcome": "withheld", "reason": CONSUMER_WITHHELD}
        )
        signed = new_signed(withheld, ctx.id, ctx.key)
        session.delete(row)
        session.add(OutboxRecord(id=new_id, job_id=job_id, signed=signed, state="awaiting_countersignature"))
        job = session.get(Job, job_id)
        if job is not None:
            job.status, job.error, job.record_id = "withheld", CONSUMER_WITHHELD, new_id
    return signed


def on_countersignature(ctx: Connector, caller: str, job_id: str, body: dict[str, Any]) -> None:
    with ctx.db.transaction() as session:
        query = select(OutboxRecord).where(OutboxRecord.job_id == job_id)
        if isinstance(body.get("record"), str):
            query = query.where(OutboxRecord.id == body["record"])
        row = session.scalar(query)
        if row is None:
            raise NotFound(f"no usage record for job {job_id}")
        if row.signed["document"]["consumer"] != caller:
            raise Refused(f"{caller} is not the consumer of job {job_id}", status=403)
        signature = (body.get("signatures") or {}).get(caller)
        signed = {
            "document": row.signed["document"],
            "signatures": {**row.signed["signatures"], caller: signature},
        }
        keys = {ctx.id: ctx.key.public_key, caller: ctx.space.member(caller)["public_key"]}
        try:
            verify_document(signed, keys, keys.__getitem__)
        except ContractError as exc:
            raise Refused(f"countersignature refused: {exc}") from exc
        if row.state == "awaiting_countersignature":
            row.signed, row.state = signed, "ready"
    ctx.outbox_wakeup.set()
