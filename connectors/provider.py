"""The provider's side of every job, one skeleton for every operation family:

authorize (connectors.guard: agreement, policy, then the use and its ε reserved) → compute in
the sandbox (the family's step) → record the attempt (connectors.records: the signed usage
record with the job's end) → answer.

A family supplies only its compute step, which returns a :class:`Computed`. A failure after the
guard is the consumer's when its own request was bad (the use and ε stay spent, no fee) and the
provider's otherwise (both given back); either way the attempt is recorded, as is a denial.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from connectors import attempts, guard, records
from connectors.attempts import Attempt
from connectors.context import Connector
from connectors.models import Negotiation
from contracts.offers import agreed_fee
from contracts.usage import Outcome
from node.models import utcnow
from node.signing import RemoteError
from policies.reasons import say
from sandbox.errors import SandboxError


@dataclass
class Computed:
    """A compute step's end: the outcome (succeeded or withheld) and what goes back to the
    consumer beside the usage record."""

    outcome: str = Outcome.SUCCEEDED
    reason: str = say("completed")
    reply: dict[str, Any] = field(default_factory=dict)
    blobs: list[bytes] = field(default_factory=list)
    provider_set_size: int | None = None
    metrics: dict[str, Any] | None = None


Compute = Callable[[Negotiation, Any], Computed]
Answer = tuple[dict[str, Any], list[bytes]]  # a reply header and its blobs, framed by the web layer


@dataclass(frozen=True)
class Guarded:
    """What the guard is given beyond the request: the job's own policy context (columns,
    statistics, ε …), the ε it spends, and a step to run in the reservation's transaction."""

    extra: dict[str, Any] | None = None
    epsilon: float = 0.0
    then: Callable[[Session], None] | None = None


def provide(
    ctx: Connector,
    caller: str,
    header: dict[str, Any],
    compute: Compute,
    *,
    attempt_id: str,
    guarded: Guarded | None = None,
    on_end: Callable[[str, str], None] | None = None,
) -> Answer:
    """Run one job request through the skeleton; returns the reply header (with the signed
    ``usage_record``) and its blobs, or raises the attempt's problem (denied, failed) carrying
    the record. ``on_end(outcome, reason)`` runs before the record is written."""
    guarded = guarded or Guarded()
    started = utcnow()
    neg: Negotiation | None = None
    dataset_id: str | None = None
    status, fee = 500, 0
    # what isolated the run, also for a job that never reached the sandbox
    done = Computed(metrics={"sandbox": [ctx.backend.name], "sandbox_peak_rss_mb": 0.0})
    try:
        neg, dataset = guard.authorize(
            ctx, caller, header, guarded.extra, attempt_id=attempt_id, started=started,
            epsilon=guarded.epsilon, then=guarded.then,
        )  # fmt: skip
        dataset_id = neg.dataset_id
        try:
            done = compute(neg, dataset)
        except (SandboxError, RemoteError) as exc:
            if not (isinstance(exc, SandboxError) and guard.consumers_fault(exc)):
                attempts.give_back(ctx, neg.id, guarded.epsilon)
            done = Computed(Outcome.FAILED, str(exc), metrics=done.metrics)
            status = guard.failure_status(exc)
        # withheld (k not met): the use and its ε count and the agreed fee is due, as for a
        # success, unless the offer waived it (the README's outcome table)
        fee = agreed_fee(neg.agreement["document"], done.outcome, header.get("consumer_set_size"))  # type: ignore[index]
    except guard.Denied as exc:
        done = Computed(Outcome.DENIED, str(exc), metrics=done.metrics)
        dataset_id, status = exc.dataset, 403
    if on_end is not None:
        on_end(done.outcome, done.reason)
    attempt = Attempt(done.outcome, done.reason, status, dataset_id, neg.purpose if neg else None, fee,
                      started, done.provider_set_size)  # fmt: skip
    signed = records.record_attempt(ctx, caller, header, attempt, job_id=attempt_id, metrics=done.metrics)
    return {"usage_record": signed, **done.reply}, done.blobs
