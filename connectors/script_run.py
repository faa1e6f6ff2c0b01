"""A reviewed script's run on the data, and what every step of one shares: the job's end (its
usage record, written when the output is released or withheld, or when the run fails or is
denied), the signed steps (contracts.script_steps) on their way to the space's log, and the
news the consumer's connector hears of each state.

The run: the guard (agreement, policy with this run's ordinal under its approval, the use
reserved and the run counted in one transaction), the sandbox on the real dataset with the
offer's limits, the automatic checks (connectors.output_checks), then release (``release:
auto`` for approved reruns) or the wait for a reviewer (connectors.script_review).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from connectors import attempts, datasets, guard, identifiers, negotiation
from connectors.attempts import Attempt
from connectors.context import Connector, log
from connectors.errors import NotFound, Refused
from connectors.models import (
    SCRIPT_OPEN,
    Job,
    Negotiation,
    OutboxRecord,
    OutboxState,
    ScriptCode,
    ScriptRun,
    ScriptState,
)
from connectors.output_checks import Output, check
from contracts.agreements import agreement_policy
from contracts.documents import new_signed
from contracts.offers import agreed_fee
from contracts.script_steps import build_step
from contracts.usage import RECORD_TYPE, Outcome
from node.models import utcnow
from node.signing import RemoteError
from policies.model import format_datetime
from policies.script_terms import ScriptTerms, terms
from sandbox.errors import SandboxError, WorkerFailed
from sandbox.interface import WorkerJob

OPERATION = "script"
MAX_OUTPUT = 1 << 20  # bytes of an output when the policy sets no outputBytes
DEFAULT_K = 10  # the least count in a table when the policy sets no resultSize
NEWS_ATTEMPTS = (0.0, 1.0, 4.0, 15.0)  # seconds before each try to tell the consumer


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def header_of(run_id: str, agreement: str) -> dict[str, Any]:
    return {"job": run_id, "agreement": agreement, "operation": OPERATION, "consumer_set_size": None}


def terms_of(neg: Negotiation) -> ScriptTerms:
    assert neg.agreement is not None
    return terms(agreement_policy(neg.agreement["document"]))


def run_on_data(ctx: Connector, run_id: str) -> None:
    """The approved code on the real dataset: the guard (agreement, policy with this run's
    ordinal under its approval, the use reserved and the run counted in one transaction), the
    sandbox, the automatic checks, then release (auto) or the wait for a reviewer."""
    started = _authorized(ctx, run_id)
    if started is None:
        return
    run, code, neg, dataset = started
    began = time.monotonic()
    try:
        result = ctx.backend.run(worker_job(ctx, run, code, neg, dataset.path))
    except SandboxError as exc:
        # the script's own failure counts the use, as a consumer's bad request does; a failure
        # of the provider's sandbox gives it back (the README's outcome table)
        if not (isinstance(exc, WorkerFailed) and exc.kind in ("request", "script")):
            attempts.give_back(ctx, neg.id)
        end(ctx, run_id, Outcome.FAILED, str(exc), ScriptState.FAILED)
        return
    output = output_of(result.header)
    metrics = {
        "seconds": round(time.monotonic() - began, 3),
        "peak_rss_mb": round(result.peak_rss_mb, 1),
        "sandbox": list(result.isolation),
        "bytes": len(output.data),
    }
    reasons = check(
        output,
        max_bytes=max_bytes(neg),
        declared_columns=tuple(run.columns) if run.columns is not None else None,
        k=least_count(neg),
        forbidden=identifiers.of(dataset),
    )
    _hold(ctx, run, output, reasons, metrics)
    if reasons:
        end(
            ctx,
            run_id,
            Outcome.WITHHELD,
            "output withheld by the automatic checks: " + "; ".join(reasons),
            ScriptState.WITHHELD,
            step=("withheld", hashlib.sha256(output.data).hexdigest()),
            note="; ".join(reasons),
        )
    elif run.release == "auto":
        release_output(ctx, run_id, reviewer=None)
    else:
        ctx.background(tell, ctx, run_id)


def _authorized(ctx: Connector, run_id: str) -> tuple[ScriptRun, ScriptCode, Negotiation, Any] | None:
    """The guard for one run (None when it denied the run, which has then ended)."""
    run, code, neg = load(ctx, run_id)
    ordinal = code.runs_used + 1
    if ordinal > code.runs_granted:
        reason = f"the approval's {code.runs_granted} runs are used; submit the code again for review"
        end(ctx, run_id, Outcome.DENIED, reason, ScriptState.DENIED)
        return None
    extra = {
        "runsPerApproval": ordinal,
        "release": run.release,
        "reviewRequired": terms_of(neg).review_required,
    }

    def count_run(session: Session) -> None:
        session.execute(
            update(ScriptCode).where(ScriptCode.id == code.id).values(runs_used=ScriptCode.runs_used + 1)
        )

    started = utcnow()
    try:
        if not ctx.runs_scripts:
            raise guard.Denied(
                f"this connector's sandbox is {ctx.backend.name}; reviewed scripts run only on bwrap or "
                "docker",
                neg.dataset_id,
            )
        neg, dataset = guard.authorize(
            ctx, run.consumer_id, header_of(run.id, run.agreement_id), extra, attempt_id=run.id,
            started=started, then=count_run,
        )  # fmt: skip
    except guard.Denied as exc:
        end(ctx, run_id, Outcome.DENIED, str(exc), ScriptState.DENIED)
        return None
    ctx.db.update(ScriptRun, run_id, started_at=started)
    return run, code, neg, dataset


def _hold(
    ctx: Connector, run: ScriptRun, output: Output, reasons: list[str], metrics: dict[str, Any]
) -> None:
    """Keep the output here with what the checks said; one that passed and waits for a reviewer
    moves its job out of the pending phase (a restart ends pending jobs, not those waiting for a
    person)."""
    with ctx.db.transaction() as session:
        stored = session.get(ScriptRun, run.id)
        assert stored is not None
        stored.output = output.data.decode("utf-8", errors="replace")
        stored.output_format = "table" if output.table else "json"
        stored.output_sha256 = hashlib.sha256(output.data).hexdigest()
        stored.checks, stored.metrics = reasons, metrics
        if not reasons and run.release == "review":
            stored.state = ScriptState.RELEASE
            job = session.get(Job, run.id)
            assert job is not None
            job.phase = "release"


def worker_job(ctx: Connector, run: ScriptRun, code: ScriptCode, neg: Negotiation, path: str) -> WorkerJob:
    """The script on one file (the dataset, or its mock sample) with the offer's limits."""
    return WorkerJob(
        "script.run",
        {"source": code.code, "args": run.args},
        [],
        path,
        datasets.offer_limits(ctx, neg.offer_id),
    )


def output_of(header: dict[str, Any]) -> Output:
    if header.get("format") == "table":
        text = str(header.get("table", ""))
        return Output(text.encode("utf-8"), table=True, counts=tuple(header.get("counts", [])))
    # the bytes that would be released: the JSON object as the worker gave it, compactly
    return Output(json.dumps(header["result"], ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def max_bytes(neg: Negotiation) -> int:
    cap = terms_of(neg).output_bytes
    return min(cap, MAX_OUTPUT) if cap is not None else MAX_OUTPUT


def least_count(neg: Negotiation) -> int:
    assert neg.agreement is not None
    least = agreement_policy(neg.agreement["document"]).least(OPERATION, "resultSize")
    return least if least is not None else DEFAULT_K


def end(
    ctx: Connector,
    run_id: str,
    outcome: str,
    reason: str,
    state: str,
    *,
    step: tuple[str, str | None] | None = None,
    reviewer: str | None = None,
    note: str = "",
) -> None:
    """End the job: its usage record (the agreed fee for a released or withheld output), the
    step (if any) and the job's state, in one transaction; then tell the consumer."""
    run, code, neg = load(ctx, run_id)
    assert neg.agreement is not None
    header = header_of(run.id, run.agreement_id)
    fee = agreed_fee(neg.agreement["document"], outcome, None)
    attempt = Attempt(
        outcome,
        reason,
        403 if outcome == Outcome.DENIED else 500,
        neg.dataset_id,
        neg.purpose,
        fee,
        run.started_at or run.created_at,
    )
    record, signed = attempts.sign_record(ctx, run.consumer_id, header, attempt)
    with ctx.db.transaction() as session:
        attempts.finish(session, ctx, run.id, run.consumer_id, header, attempt, record, signed, run.metrics)
        stored = session.get(ScriptRun, run_id)
        assert stored is not None
        stored.state, stored.finished_at = state, utcnow()
        stored.reviewer, stored.note = reviewer or stored.reviewer, note or stored.note
        if step is not None:
            add_step(
                session,
                ctx,
                neg,
                stored,
                code.code_sha256,
                step[0],
                output_sha256=step[1],
                reviewer=reviewer,
                note=note,
            )
    ctx.outbox_wakeup.set()
    ctx.background(tell, ctx, run_id)


def add_step(
    session: Session,
    ctx: Connector,
    neg: Negotiation,
    run: ScriptRun,
    code_sha256: str,
    step: str,
    *,
    output_sha256: str | None = None,
    runs: int | None = None,
    reviewer: str | None = None,
    note: str = "",
) -> None:
    document = build_step(
        id=f"urn:uuid:{uuid.uuid4()}",
        job=run.id,
        agreement=run.agreement_id,
        dataset=neg.dataset_id,
        provider=ctx.id,
        consumer=run.consumer_id,
        step=step,
        code_sha256=code_sha256,
        output_sha256=output_sha256,
        runs=runs,
        reviewer=reviewer,
        note=note[:2000],
        at=format_datetime(utcnow()),
    )
    signed = new_signed(document, ctx.id, ctx.key)
    session.add(OutboxRecord(id=document["id"], job_id=run.id, signed=signed, state=OutboxState.READY))


def news(ctx: Connector, run_id: str, caller: str | None = None) -> dict[str, Any]:
    """What the consumer may know of its job: its state, and at the end its usage record — with
    the output and the step that released it only when it was released."""
    run, _, _ = load(ctx, run_id)
    if caller is not None and caller != run.consumer_id:
        raise Refused(f"{caller} is not the consumer of script job {run_id}", status=403)
    body: dict[str, Any] = {"state": run.state}
    if run.state in SCRIPT_OPEN:
        return body
    with ctx.db.session() as session:
        rows = list(session.scalars(select(OutboxRecord).where(OutboxRecord.job_id == run_id)))
    record = next((r.signed for r in rows if r.signed["document"].get("@type") == RECORD_TYPE), None)
    if record is None:  # ended, but its record not yet written: the consumer hears the state
        return body
    body.update(usage_record=record, detail=record["document"]["reason"])
    if run.state == ScriptState.RELEASED:
        step = next(r.signed for r in rows if r.signed["document"].get("step") == "released")
        body.update(step=step, output=run.output, output_format=run.output_format)
    return body


def tell(ctx: Connector, run_id: str) -> None:
    """Send the consumer the job's news, retrying a consumer that is briefly away (it can also
    ask: GET /dsp/jobs/ID/script)."""
    run, _, neg = load(ctx, run_id)
    body = news(ctx, run_id)
    for attempt, pause in enumerate(NEWS_ATTEMPTS, 1):
        time.sleep(pause)
        try:
            ctx.client.send("POST", f"{neg.peer_endpoint}/jobs/{run.id}/script", json=body)
            return
        except RemoteError as exc:
            if exc.status not in (0, 502, 503, 504) or attempt == len(NEWS_ATTEMPTS):
                log.warning(
                    "consumer %s did not take the news of script job %s: %s", run.consumer_id, run_id, exc
                )
                return


def load(ctx: Connector, run_id: str) -> tuple[ScriptRun, ScriptCode, Negotiation]:
    with ctx.db.session() as session:
        run = session.get(ScriptRun, run_id)
        code = session.get(ScriptCode, run.code_id) if run is not None else None
    if run is None or code is None:
        raise NotFound(f"no script job {run_id!r} at this connector")
    return run, code, negotiation.find(ctx, run.agreement_id, role="provider")


def release_output(ctx: Connector, run_id: str, *, reviewer: str | None, note: str = "") -> None:
    """The output leaves: the usage record, the step with the output's hash, and the output to
    the consumer (connectors.script_review.release checks that it waits for release)."""
    run, _, _ = load(ctx, run_id)
    end(
        ctx,
        run_id,
        Outcome.SUCCEEDED,
        "output released" + (f" by {reviewer}" if reviewer else " (release: auto)"),
        ScriptState.RELEASED,
        step=("released", run.output_sha256),
        reviewer=reviewer,
        note=note,
    )
