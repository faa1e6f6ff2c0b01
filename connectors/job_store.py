"""The connector's job store: every job's row, its changes (which wake the waiters), its view,
a long poll for its end, and its result in pages. Both roles and every operation family keep
their jobs here; nothing else writes a job's row after it was created (connectors.records
writes a job's end together with its usage record, in one transaction).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select

from connectors.context import Connector, log
from connectors.errors import NotFound, Refused
from connectors.models import Job, JobStatus
from contracts.errors import ContractError
from node.models import utcnow
from node.signing import RemoteError
from policies import operations
from sandbox import framing
from sandbox.errors import SandboxError

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
    """A succeeded job's result in a line, by its operation's result kind (policies.operations)."""
    if job.status != JobStatus.SUCCEEDED or job.result is None:
        return None
    kind = operations.get(job.operation).result
    if kind == "statistics":
        return {"statistics": job.result["statistics"], "contributors": job.result["contributors"]}
    if kind == "scores":
        count, missing = _score_counts(job.result)
        return {"scored": count - missing, "not_found": missing}
    if kind == "cardinality":
        return {"cardinality": job.result["cardinality"]}
    if kind == "sums":
        shown = ("cardinality", "count", "sum", "by", "withheld_categories")
        return {k: job.result[k] for k in shown if k in job.result}
    if kind == "output":
        shape = {"rows": len(job.result["rows"])} if job.result["format"] == "table" else {}
        return {"format": job.result["format"], **shape}
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


def update(ctx: Connector, job_id: str, **changes: Any) -> None:
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
            if job.status != JobStatus.RUNNING or left <= 0 or ctx.stopping.is_set():
                return job
            ctx.job_changes.wait(seen, min(left, 1.0))
    finally:
        ctx.job_changes.leave()


def phase_progress(ctx: Connector, job_id: str, start: float, span: float) -> Any:
    last = [0.0]

    def report(fraction: float) -> None:
        value = start + span * fraction
        if value - last[0] >= 0.02 or fraction >= 1.0:
            last[0] = value
            update(ctx, job_id, progress=value)

    return report


def fail(
    ctx: Connector,
    job_id: str,
    error: str,
    metrics: dict[str, Any] | None = None,
    status: JobStatus = JobStatus.FAILED,
) -> None:
    """End a consumer's job failed (or ``status``: denied) with ``error`` and the metrics
    measured until then."""
    changes: dict[str, Any] = {
        "status": status,
        "phase": "done",
        "error": error,
        "finished_at": utcnow(),
    }
    if metrics is not None:
        changes["metrics"] = metrics
    update(ctx, job_id, **changes)


@contextlib.contextmanager
def ending_failed(ctx: Connector, job_id: str, metrics: dict[str, Any] | None = None) -> Iterator[None]:
    """The one wrapper of every consumer's run: what the block raises ends the job failed, with
    the reason and the ``metrics`` so far (an unforeseen error with its traceback in the node's
    log, and raised on), so no job is left "running"."""
    try:
        yield
    except (
        SandboxError,
        ContractError,
        RemoteError,
        framing.FrameError,
        KeyError,
        ValueError,
        TypeError,
    ) as exc:
        log.warning("job %s failed on the consumer side: %s", job_id, exc)
        fail(ctx, job_id, f"consumer: {exc}", metrics)
    except Exception as exc:
        log.exception("job %s failed unexpectedly", job_id)
        fail(ctx, job_id, f"consumer: internal error: {exc}", metrics)
        raise


def result(ctx: Connector, job_id: str, offset: int = 0, limit: int = DEFAULT_PAGE) -> dict[str, Any]:
    job = get(ctx, job_id)
    # job_status: how the job ended, so a client exits as the job did (tds.errors.JobEnded)
    if job.status == JobStatus.WITHHELD:
        raise Refused(job.error or "result withheld", status=403, kind=JobStatus.WITHHELD,
                      job_status=str(job.status))  # fmt: skip
    if job.status != JobStatus.SUCCEEDED or job.result is None:
        raise Refused(
            f"job {job_id} is {job.status}" + (f": {job.error}" if job.error else ""),
            status=409,
            kind="no-result",
            job_status=str(job.status),
        )
    kind = operations.get(job.operation).result
    if kind == "cardinality":
        # a provider-counted cardinality says with which ε its noise was drawn
        noise: dict[str, Any] = {k: job.result[k] for k in ("epsilon", "noise") if k in job.result}
        return {"job": job.id, "operation": job.operation, "cardinality": job.result["cardinality"], **noise}
    if kind in ("statistics", "output", "sums"):
        return {"job": job.id, "operation": job.operation, **job.result}
    if kind == "scores":
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
