"""A provider's reviewers and a consumer's script: the review requests (the code, its diff
against the last approved version, the reason, the mock run, the policy's output rules), and
the four decisions — approve the code for a number of runs or reject it, release the output or
withhold it — each a signed step (connectors.script_run)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from connectors import script_run
from connectors.context import Connector
from connectors.errors import Conflict, Refused
from connectors.models import ScriptCode, ScriptRun, ScriptState
from contracts.usage import Outcome
from node.models import utcnow


def reviews(ctx: Connector, state: str | None = None) -> list[dict[str, Any]]:
    """The script jobs that wait for a reviewer (or those in ``state``), oldest first."""
    wanted = [state] if state else [ScriptState.REVIEW, ScriptState.RELEASE]
    with ctx.db.session() as session:
        rows = session.scalars(
            select(ScriptRun).where(ScriptRun.state.in_(wanted)).order_by(ScriptRun.created_at)
        )
        return [summary(row) for row in rows]


def summary(run: ScriptRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "agreement": run.agreement_id,
        "consumer": run.consumer_id,
        "state": run.state,
        "reason": run.reason,
        "created_at": run.created_at.isoformat(),
    }


def show(ctx: Connector, run_id: str) -> dict[str, Any]:
    """Everything a reviewer reads: the code, its diff, the reason and arguments, the mock run,
    the policy's output rules, and the output once it waits for release."""
    run, code, neg = script_run.load(ctx, run_id)
    policy_terms = script_run.terms_of(neg)
    return {
        **summary(run),
        "code": code.code,
        "code_sha256": code.code_sha256,
        "code_state": code.state,
        "runs_granted": code.runs_granted,
        "runs_used": code.runs_used,
        "diff": run.diff,
        "args": run.args,
        "columns": run.columns,
        "mock": run.mock,
        "rules": {
            "output_bytes": script_run.max_bytes(neg),
            "k": script_run.least_count(neg),
            "release": policy_terms.release,
            "runs_per_approval": policy_terms.runs_per_approval,
            "review_required": policy_terms.review_required,
        },
        "output": run.output if run.state == ScriptState.RELEASE else None,
        "output_format": run.output_format,
        "output_sha256": run.output_sha256,
        "checks": run.checks,
        "reviewer": run.reviewer,
        "note": run.note,
        "metrics": run.metrics,
    }


def approve(
    ctx: Connector, run_id: str, *, reviewer: str | None, runs: int, note: str = "", check: bool = True
) -> dict[str, Any]:
    """Approve the code of a job waiting for review for ``runs`` runs (runsPerApproval bounds
    them), record the step, and start the job on the data."""
    run, code, neg = script_run.load(ctx, run_id)
    if check and run.state != ScriptState.REVIEW:
        raise Conflict(f"script job {run_id} is {run.state}; only a job in review can be approved")
    most = script_run.terms_of(neg).runs_per_approval
    if not 1 <= runs <= most:
        raise Refused(f"runs: the policy grants 1 to {most} runs per approval (runsPerApproval); got {runs}")
    with ctx.db.transaction() as session:
        changed = session.execute(
            update(ScriptCode)
            .where(ScriptCode.id == code.id, ScriptCode.state == "review")
            .values(
                state="approved",
                runs_granted=runs,
                runs_used=0,
                reviewer=reviewer,
                note=note,
                decided_at=utcnow(),
            )
        )
        if changed.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict(f"the code of script job {run_id} was decided at the same moment; reload it")
        stored = session.get(ScriptRun, run_id)
        assert stored is not None
        stored.state, stored.reviewer, stored.note = ScriptState.RUNNING, reviewer, note
        script_run.add_step(
            session, ctx, neg, stored, code.code_sha256, "approved", runs=runs, reviewer=reviewer, note=note
        )
    ctx.outbox_wakeup.set()
    ctx.background(script_run.tell, ctx, run_id)  # the consumer sees its job running
    ctx.background(script_run.run_on_data, ctx, run_id)
    return show(ctx, run_id)


def reject(ctx: Connector, run_id: str, *, reviewer: str, note: str) -> dict[str, Any]:
    """Reject the code: the job ends denied, with the reviewer's note, and this code stays
    rejected under the agreement."""
    run, code, _ = script_run.load(ctx, run_id)
    if run.state != ScriptState.REVIEW:
        raise Conflict(f"script job {run_id} is {run.state}; only a job in review can be rejected")
    if not note.strip():
        raise Refused("note: say why the code is rejected; the consumer reads it")
    with ctx.db.transaction() as session:
        session.execute(
            update(ScriptCode)
            .where(ScriptCode.id == code.id)
            .values(state="rejected", reviewer=reviewer, note=note, decided_at=utcnow())
        )
    script_run.end(
        ctx,
        run_id,
        Outcome.DENIED,
        f"code rejected by {reviewer}: {note}",
        ScriptState.REJECTED,
        step=("rejected", None),
        reviewer=reviewer,
        note=note,
    )
    return show(ctx, run_id)


def release(ctx: Connector, run_id: str, *, reviewer: str, note: str = "") -> dict[str, Any]:
    """Release an output that passed the checks and waits for a reviewer."""
    run, _, _ = script_run.load(ctx, run_id)
    if run.state != ScriptState.RELEASE:
        raise Conflict(
            f"script job {run_id} is {run.state}; only an output waiting for release can be released"
        )
    script_run.release_output(ctx, run_id, reviewer=reviewer, note=note)
    return show(ctx, run_id)


def withhold(ctx: Connector, run_id: str, *, reviewer: str, note: str) -> dict[str, Any]:
    run, _, _ = script_run.load(ctx, run_id)
    if run.state != ScriptState.RELEASE:
        raise Conflict(
            f"script job {run_id} is {run.state}; only an output waiting for release can be withheld"
        )
    if not note.strip():
        raise Refused("note: say why the output is withheld; the consumer reads it")
    script_run.end(
        ctx,
        run_id,
        Outcome.WITHHELD,
        f"output withheld by {reviewer}: {note}",
        ScriptState.WITHHELD,
        step=("withheld", run.output_sha256),
        reviewer=reviewer,
        note=note,
    )
    return show(ctx, run_id)
