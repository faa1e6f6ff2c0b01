"""The consumer's side of reviewed scripts: the code is sent (signed, with its SHA-256) to the
provider's connector, the job follows the provider's news (in review, running, waiting for
release), and ends with the provider's usage record, countersigned here as for every job. An
output is taken only with the provider's signed ``released`` step naming this job, this code
and the output's own hash."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
from typing import Any

from connectors import job_store, negotiation, records
from connectors.attempts import AT_PROVIDER
from connectors.context import Connector
from connectors.errors import Refused
from connectors.models import Job, JobStatus, Negotiation
from connectors.requests import ScriptJob, ScriptNews
from contracts.agreements import State
from contracts.documents import verify_document
from contracts.errors import ContractError
from contracts.usage import Outcome
from node.bodies import parse
from node.signing import RemoteError
from sandbox.errors import WorkerFailed
from sandbox.ops import script

OPERATION = "script"
STATUS = {
    Outcome.SUCCEEDED: JobStatus.SUCCEEDED,
    Outcome.WITHHELD: JobStatus.WITHHELD,
    Outcome.DENIED: JobStatus.DENIED,
    Outcome.FAILED: JobStatus.FAILED,
}


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def submit(ctx: Connector, asked: ScriptJob) -> Job:
    """Check the code compiles and the agreement includes scripts, then send it."""
    neg = negotiation.find(ctx, asked.agreement, role="consumer")
    if neg.agreement_id is None or neg.state != State.FINALIZED:
        raise Refused(f"{asked.agreement}: the negotiation is {neg.state}, not a finalized agreement")
    if OPERATION not in neg.operations:
        raise Refused(f"agreement {neg.agreement_id} does not include script (it has {neg.operations})")
    try:
        script.check_source(asked.code)
    except WorkerFailed as exc:
        raise Refused(f"code: {exc}") from exc
    if asked.columns is not None and (not asked.columns or len(set(asked.columns)) != len(asked.columns)):
        raise Refused("columns: expected the table's column names, each once")
    body = {
        "job": f"urn:uuid:{uuid.uuid4()}",
        "agreement": neg.agreement_id,
        "code": asked.code,
        "code_sha256": sha256(asked.code),
        "args": asked.args,
        "reason": asked.reason,
        "columns": asked.columns,
    }
    job = Job(
        id=body["job"],
        role="consumer",
        agreement_id=neg.agreement_id,
        peer_id=neg.peer_id,
        operation=OPERATION,
        status=JobStatus.RUNNING,
        phase="submitted",
        metrics={"request": {k: body[k] for k in ("code_sha256", "args", "reason", "columns")}},
    )
    with ctx.db.transaction() as session:
        session.add(job)
    ctx.background(_send, ctx, job.id, neg, body)
    return job


def _send(ctx: Connector, job_id: str, neg: Negotiation, body: dict[str, Any]) -> None:
    try:
        reply = ctx.client.send("POST", f"{neg.peer_endpoint}/scripts", json=body).json()
    except RemoteError as exc:
        records.provider_refused(ctx, job_store.get(ctx, job_id), exc)
        return
    _phase(ctx, job_id, str(reply.get("state")))


def _phase(ctx: Connector, job_id: str, state: str) -> None:
    job = job_store.get(ctx, job_id)
    if job.status == JobStatus.RUNNING and state in AT_PROVIDER:
        job_store.update(ctx, job_id, phase=state)


def on_news(ctx: Connector, caller: str, job_id: str, news: ScriptNews) -> None:
    """The provider's word on one of our script jobs; its end is taken once."""
    job = job_store.get(ctx, job_id)
    if job.role != "consumer" or job.operation != OPERATION or job.peer_id != caller:
        raise Refused(f"{caller} is not the provider of script job {job_id}", status=403)
    if job.status != JobStatus.RUNNING:
        return  # ended already: news sent twice, or late
    if news.usage_record is None:
        _phase(ctx, job_id, news.state)
        return
    neg = negotiation.find(ctx, job.agreement_id, role="consumer")
    outcome = str(news.usage_record.get("document", {}).get("outcome"))
    status = STATUS.get(outcome, JobStatus.FAILED)  # type: ignore[call-overload]
    result, error, expected = None, news.detail or None, outcome
    if status == JobStatus.SUCCEEDED:
        try:
            result = _released(ctx, job, neg, news)
            error = None
        except (ContractError, ValueError, KeyError, TypeError) as exc:
            status, error = JobStatus.FAILED, f"the provider's released output was refused: {exc}"
            # no countersignature for a use whose output did not arrive as released: the
            # provider's record is then disputed at the space, not billed
            expected = JobStatus.FAILED
    records.finish(
        ctx, job, neg, news.usage_record, status=status, error=error, result=result, record_outcome=expected
    )


def _released(ctx: Connector, job: Job, neg: Negotiation, news: ScriptNews) -> dict[str, Any]:
    """The output, once the provider's signed step says it released exactly this output of
    exactly our code for this job."""
    if news.step is None or news.output is None:
        raise ValueError("a released output comes with its output and the step that released it")
    key = ctx.space.member(neg.peer_id)["public_key"]
    verify_document(news.step, {neg.peer_id}, lambda _pid: key)
    step = news.step["document"]
    wanted = (job.id, "released", (job.metrics or {})["request"]["code_sha256"], sha256(news.output))
    got = (step.get("job"), step.get("step"), step.get("code_sha256"), step.get("output_sha256"))
    if got != wanted:
        raise ValueError(f"the released step says {got}, this job and its output are {wanted}")
    if news.output_format == "table":
        rows = list(csv.reader(io.StringIO(news.output)))
        return {"format": "table", "columns": rows[0] if rows else [], "rows": rows[1:], "csv": news.output}
    return {"format": "json", "output": json.loads(news.output)}


def refresh(ctx: Connector, job_id: str) -> Job:
    """Ask the provider where one of our script jobs is (its news is pushed; this is for a push
    that never arrived) and take its answer as a push; the job as it is then."""
    job = job_store.get(ctx, job_id)
    if job.role != "consumer" or job.operation != OPERATION:
        raise Refused(f"job {job_id} is not a script job of this connector's", status=409)
    if job.status == JobStatus.RUNNING:
        neg = negotiation.find(ctx, job.agreement_id, role="consumer")
        try:
            told = ctx.client.send("GET", f"{neg.peer_endpoint}/jobs/{job_id}/script").json()
        except RemoteError as exc:
            raise Refused(f"the provider did not answer: {exc}", status=502) from exc
        on_news(ctx, job.peer_id, job_id, parse(ScriptNews, told, "the provider's news"))
    return job_store.get(ctx, job_id)
