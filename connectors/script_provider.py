"""The provider's side of reviewed scripts (issue 14), from a consumer's submission to the
review request: the code is admitted (agreement and policy first, then a sandbox that contains
scripts, the code's SHA-256, code that compiles) or denied with a record, as every job is; code
approved with runs left runs at once (connectors.script_run); other code is tried on the mock
sample in the sandbox and queued for a reviewer (connectors.script_review), unless the policy
says ``reviewRequired: false``.
"""

from __future__ import annotations

import difflib
import hashlib
import time
import uuid
from dataclasses import replace
from typing import Any, NoReturn

from sqlalchemy import select

from connectors import datasets, guard, records, script_review, script_run
from connectors.attempts import Attempt
from connectors.context import Connector
from connectors.errors import Refused
from connectors.models import Job, Negotiation, ScriptCode, ScriptRun, ScriptState
from connectors.output_checks import Forbidden, check
from connectors.requests import ScriptSubmission
from contracts.usage import Outcome
from node.models import utcnow
from sandbox.errors import SandboxError, WorkerFailed
from sandbox.ops import script

MOCK_SHOWN = 64 * 1024  # characters of a mock run's output kept for the reviewer


def on_submit(ctx: Connector, caller: str, body: ScriptSubmission) -> dict[str, Any]:
    """A consumer's script: admitted (agreement, policy, sandbox, hash, code) or denied with a
    record; then run at once if its code is approved with runs left, else tried on the mock
    sample and queued for review."""
    started = utcnow()
    with ctx.db.session() as session:
        if session.get(Job, body.job) is not None or session.get(ScriptRun, body.job) is not None:
            raise Refused(f"job id {body.job} was already used; a job runs once", status=409)
    header = script_run.header_of(body.job, body.agreement)
    try:
        neg = _admit(ctx, caller, body, header)
        code, preapproved = _code_for(ctx, neg, caller, body)
    except guard.Denied as exc:
        _deny(ctx, caller, header, str(exc), exc.dataset, started)
    policy_terms = script_run.terms_of(neg)
    run = ScriptRun(
        id=body.job,
        code_id=code.id,
        agreement_id=str(neg.agreement_id),
        consumer_id=caller,
        state=ScriptState.RUNNING if preapproved else ScriptState.MOCK_RUN,
        args=body.args,
        reason=body.reason,
        columns=body.columns,
        diff=_diff(ctx, neg, code),
        release="auto" if preapproved and policy_terms.release == "auto" else "review",
    )
    with ctx.db.transaction() as session:
        session.add(run)
        script_run.add_step(session, ctx, neg, run, code.code_sha256, "submitted", note=body.reason)
    ctx.outbox_wakeup.set()
    if preapproved:
        ctx.background(script_run.run_on_data, ctx, run.id)
    elif not policy_terms.review_required:
        script_review.approve(
            ctx, run.id, reviewer=None, runs=1, note="the policy does not require a review", check=False
        )
    else:
        ctx.background(_mock_run, ctx, run.id)
    return {"job": run.id, "state": run.state, "code_sha256": code.code_sha256}


def _admit(ctx: Connector, caller: str, body: ScriptSubmission, header: dict[str, Any]) -> Negotiation:
    """The agreement and its policy first (the guard), then what this connector can run."""
    facts, _ = guard.gather(ctx, caller, header)
    if facts.negotiation is not None and facts.negotiation.agreement is not None:
        policy_terms = script_run.terms_of(facts.negotiation)
        facts.extra.update(reviewRequired=policy_terms.review_required)
    # the run's ordinal under its approval and how its output is released are checked at the run
    guard.decide(replace(facts, later=frozenset({"runsPerApproval", "release"})))
    neg = facts.negotiation
    assert neg is not None  # decide denies a job without one
    if not ctx.runs_scripts:
        raise guard.Denied(
            f"this connector's sandbox is {ctx.backend.name}; reviewed scripts run only on bwrap or docker",
            neg.dataset_id,
        )
    if script_run.sha256(body.code) != body.code_sha256:
        raise guard.Denied(
            f"code_sha256 {body.code_sha256[:64]!r} is not the SHA-256 of the code sent "
            f"({script_run.sha256(body.code)}): the code changed on its way, or the hash is wrong",
            neg.dataset_id,
        )
    try:
        script.check_source(body.code)
    except WorkerFailed as exc:
        raise guard.Denied(str(exc), neg.dataset_id) from exc
    return neg


def _deny(
    ctx: Connector, caller: str, header: dict[str, Any], reason: str, dataset: str | None, started: Any
) -> NoReturn:
    """Record the denial (its usage record, signed) and raise it as the problem carrying it."""
    attempt = Attempt(Outcome.DENIED, reason, 403, dataset, None, 0, started)
    records.record_attempt(ctx, caller, header, attempt, job_id=header["job"])
    raise AssertionError("record_attempt raises every denial")  # pragma: no cover


def _code_for(
    ctx: Connector, neg: Negotiation, caller: str, body: ScriptSubmission
) -> tuple[ScriptCode, bool]:
    """The code's row under this agreement (new, or the one with its hash), and whether it is
    approved with runs left; code once rejected stays rejected."""
    with ctx.db.transaction() as session:
        code = session.scalar(
            select(ScriptCode).where(
                ScriptCode.agreement_id == neg.agreement_id, ScriptCode.code_sha256 == body.code_sha256
            )
        )
        if code is None:
            code = ScriptCode(
                id=f"urn:uuid:{uuid.uuid4()}",
                agreement_id=str(neg.agreement_id),
                consumer_id=caller,
                code_sha256=body.code_sha256,
                code=body.code,
                state="review",
                runs_granted=0,
                runs_used=0,
            )
            session.add(code)
        elif code.state == "rejected":
            raise guard.Denied(
                f"this code ({body.code_sha256[:12]}) was rejected by {code.reviewer}: {code.note}; "
                "change it and submit it again",
                neg.dataset_id,
            )
        preapproved = code.state == "approved" and code.runs_used < code.runs_granted
        if code.state == "approved" and not preapproved:
            code.state = "review"  # its runs are used: the same code is reviewed again
        session.flush()
        session.expunge(code)
    return code, preapproved


def _diff(ctx: Connector, neg: Negotiation, code: ScriptCode) -> str:
    """The code against the last version of this consumer's code approved under the agreement
    (an approval whose runs are used still counts: that code ran on the data)."""
    with ctx.db.session() as session:
        last = session.scalar(
            select(ScriptCode)
            .where(ScriptCode.agreement_id == neg.agreement_id, ScriptCode.decided_at.is_not(None))
            .where(ScriptCode.state != "rejected", ScriptCode.id != code.id)
            .order_by(ScriptCode.decided_at.desc())
        )
    if last is None:
        return ""
    return "".join(
        difflib.unified_diff(
            last.code.splitlines(keepends=True),
            code.code.splitlines(keepends=True),
            f"approved {last.code_sha256[:12]}",
            f"submitted {code.code_sha256[:12]}",
        )
    )


def _mock_run(ctx: Connector, run_id: str) -> None:
    """Run the code on the mock sample, in the sandbox, with the offer's limits; keep what the
    reviewer needs (output or error, seconds, peak memory, what the checks say), then queue
    the review request."""
    run, code, neg = script_run.load(ctx, run_id)
    found = datasets.by_offer(ctx, neg.offer_id)
    shown: dict[str, Any] = {}
    output_hash = None
    if found is None:
        shown = {"error": "the dataset is no longer published here"}
    else:
        began = time.monotonic()
        try:
            result = ctx.backend.run(
                script_run.worker_job(ctx, run, code, neg, str(datasets.mock_path(found[0])))
            )
        except SandboxError as exc:
            shown = {"error": str(exc), "seconds": round(time.monotonic() - began, 3)}
        else:
            output = script_run.output_of(result.header)
            output_hash = hashlib.sha256(output.data).hexdigest()
            text = output.data.decode("utf-8", errors="replace")
            shown = {
                "output": text[:MOCK_SHOWN],
                "format": "table" if output.table else "json",
                "bytes": len(output.data),
                "seconds": round(time.monotonic() - began, 3),
                "peak_rss_mb": round(result.peak_rss_mb, 1),
                "checks": check(
                    output,
                    max_bytes=script_run.max_bytes(neg),
                    declared_columns=tuple(run.columns) if run.columns is not None else None,
                    k=script_run.least_count(neg),
                    forbidden=Forbidden(),  # the mock holds no real value
                ),
            }
    with ctx.db.transaction() as session:
        stored = session.get(ScriptRun, run_id)
        assert stored is not None
        stored.mock, stored.state = shown, ScriptState.REVIEW
        script_run.add_step(
            session,
            ctx,
            neg,
            stored,
            code.code_sha256,
            "mock-run",
            output_sha256=output_hash,
            note=str(shown.get("error", "")),
        )
    ctx.outbox_wakeup.set()
    ctx.background(script_run.tell, ctx, run_id)


def recover(ctx: Connector) -> int:
    """At start-up, after connectors.attempts.recover: a mock run that was cut off runs again;
    a run on the data that was cut off ended failed there (its use given back), which the job
    and the consumer now learn; an approved job that never started starts. Returns the count."""
    with ctx.db.session() as session:
        cut = list(
            session.scalars(
                select(ScriptRun).where(ScriptRun.state.in_((ScriptState.MOCK_RUN, ScriptState.RUNNING)))
            )
        )
        ended = {
            job.id
            for job in session.scalars(select(Job).where(Job.id.in_([r.id for r in cut])))
            if job.phase == "done"
        }
    for run in cut:
        if run.state == ScriptState.MOCK_RUN:
            ctx.background(_mock_run, ctx, run.id)
        elif run.id in ended:
            ctx.db.update(ScriptRun, run.id, state=ScriptState.FAILED, finished_at=utcnow())
            ctx.background(script_run.tell, ctx, run.id)
        else:
            ctx.background(script_run.run_on_data, ctx, run.id)
    return len(cut)
