"""psi.cardinality counted by the provider, released with differential-privacy noise.

In the standard run (connectors.psi_jobs) the consumer learns the exact intersection size and
enforces the offer's minimum result size k itself, so a consumer that pads its set with random
strings learns whether one phone number is held. Here the provider learns the count inside its
sandbox and releases it with discrete Laplace noise of the job's ε (sandbox.ops.dp), spends ε
from the agreement's budget and enforces k on the noisy count; a policy requires this mode by
constraining ``epsilon`` on psi.cardinality (a job without ε then does not satisfy it).

The roles of one ECDH-PSI run are swapped, which takes two round trips:

1. consumer: its set encrypted under a fresh key k_c, as a RAW setup ``enc_c(A)``, sent with
   the job (``POST /dsp/jobs``, mode ``counted``, ``epsilon``). The provider checks agreement
   and policy and reserves the use and ε (as every job does), encrypts its own set under a
   fresh k_p and answers with the request ``enc_p(B)``. It keeps k_p and the setup for
   the connector's ``psi_wait_s`` seconds;
2. consumer: ``enc_c(enc_p(B))``, sorted as one (so the provider cannot tell which of its items
   matched), to ``POST /dsp/jobs/<job>/count``. The provider's sandbox removes k_p, compares
   with the setup, adds the noise, and only the noisy count leaves it. The answer is that
   count and the usage record: ``succeeded``, or ``withheld`` when the noisy count is below k.

What each party learns: the consumer, the noisy count and |B| (the catalog publishes the row
count); the provider, |A| and the noisy count it releases — a provider that modifies its own
connector can read the exact count in its sandbox, which the standard run never shows it
(README: trust model).
"""

from __future__ import annotations

import math
import time
from typing import Any

from connectors import attempts, datasets, guard, job_store, negotiation, provider, records, waiting
from connectors.attempts import Attempt
from connectors.context import Connector
from connectors.errors import NotFound, Refused
from connectors.models import Job, JobStatus, Negotiation
from connectors.waiting import Waiting
from contracts.agreements import agreement_policy
from contracts.errors import ContractError
from contracts.offers import agreed_fee
from contracts.usage import Outcome
from node.models import utcnow
from node.signing import RemoteError
from policies.evaluate import withheld_reason
from policies.reasons import say
from sandbox import framing
from sandbox.errors import LimitExceeded, SandboxError
from sandbox.interface import WorkerJob
from sandbox.limits import MiB
from sandbox.ops import psi_engines

MODE = "counted"
OPERATION = "psi.cardinality"
MAX_EPSILON = 10.0  # e^-10: noise of ±0.0001 rows — above this, ε is not a privacy parameter


def check_epsilon(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= MAX_EPSILON:
        raise Refused(f"epsilon: expected a number in (0, {MAX_EPSILON:g}], got {value!r}")
    if not math.isfinite(value):
        raise Refused(f"epsilon: expected a finite number, got {value!r}")
    return float(value)


# --- provider side ----------------------------------------------------------------------------
def start(ctx: Connector, caller: str, header: dict[str, Any], blobs: list[bytes]) -> provider.Answer:
    """Step 1 at the provider: policy, reservation, and its own set encrypted under k_p."""
    waiting.end_expired(ctx)
    epsilon = check_epsilon(header.get("epsilon"))
    if header["operation"] != OPERATION:
        raise Refused(f"mode {MODE}: only {OPERATION} is counted by the provider", status=400)
    started = utcnow()
    neg = None
    dataset_id: str | None = None
    try:
        context: dict[str, Any] = {"epsilon": epsilon}
        try:  # the budget as it stands; the reservation fails if it changes before it is taken
            spent = negotiation.find(ctx, str(header["agreement"]), role="provider").epsilon_spent
            context["epsilonTotal"] = spent + epsilon
        except NotFound:
            pass  # the guard refuses an unknown agreement, saying so
        neg, dataset = guard.authorize(
            ctx, caller, header, context, attempt_id=header["job"], started=started, epsilon=epsilon
        )
        dataset_id = neg.dataset_id
        computed = ctx.backend.run(
            WorkerJob(
                "psi.client_request",
                {
                    "column": dataset.key_column,
                    "reveal_intersection": False,
                    "engine": header.get("engine", psi_engines.DEFAULT),
                },
                [],
                dataset.path,
                datasets.offer_limits(ctx, neg.offer_id),
            )
        )
    except guard.Denied as exc:
        waiting.refuse(
            ctx, caller, header, Attempt(Outcome.DENIED, str(exc), 403, exc.dataset, None, 0, started)
        )
    except SandboxError as exc:  # its own data or limits: the provider's fault
        assert neg is not None
        attempts.give_back(ctx, neg.id, epsilon)
        status = 507 if isinstance(exc, LimitExceeded) else 500
        waiting.refuse(
            ctx,
            caller,
            header,
            Attempt(Outcome.FAILED, str(exc), status, dataset_id, neg.purpose, 0, started),
        )
    size = int(computed.header["consumer_set_size"])  # the provider's own items, as the client
    kept = {"key": computed.header["key"], "setup": blobs[0]}
    wait = waiting.keep(
        ctx, Waiting(caller, header, neg.id, neg.purpose, dataset_id, neg.offer_id, size, started, kept)
    )
    reply = {"continue": True, "provider_set_size": size, "wait_s": wait}
    return reply, [computed.blobs[0]]


def count(ctx: Connector, caller: str, job_id: str, body: bytes) -> provider.Answer:
    """Step 2 at the provider: the noisy count, k, the record."""
    try:
        header, blobs = framing.decode(body, ctx.settings.max_body_mb * MiB)
    except framing.FrameError as exc:
        raise Refused(f"count request: {exc}", status=400) from exc
    if len(blobs) != 1 or header.get("job") != job_id:
        raise Refused(f"count request: expected the job id {job_id} and one blob (the response)", status=400)
    run = waiting.take(ctx, caller, job_id)
    neg = negotiation.find(ctx, run.header["agreement"], role="provider")
    epsilon = float(run.header["epsilon"])
    outcome, reason, status, noisy = Outcome.FAILED, "", 500, None
    try:
        computed = ctx.backend.run(
            WorkerJob(
                "psi.noisy_count",
                {
                    "key": run.kept["key"],
                    "expected": run.provider_set_size,
                    "setup_size": run.header["consumer_set_size"],
                    "epsilon": epsilon,
                    "engine": run.header.get("engine", psi_engines.DEFAULT),
                },
                [run.kept["setup"], blobs[0]],
                None,
                datasets.offer_limits(ctx, run.offer_id),
            )
        )
    except SandboxError as exc:
        if not guard.consumers_fault(exc):
            attempts.give_back(ctx, run.neg_id, epsilon)
        outcome, reason = Outcome.FAILED, str(exc)
        status = guard.failure_status(exc)
    else:
        noisy = int(computed.header["cardinality"])
        policy = agreement_policy(neg.agreement["document"])  # type: ignore[index]
        withheld = withheld_reason(
            tuple(policy.constraint_values(OPERATION, "resultSize")), {"resultSize": noisy}
        )
        outcome, reason = (Outcome.WITHHELD, withheld) if withheld else (Outcome.SUCCEEDED, say("completed"))
    fee = agreed_fee(neg.agreement["document"], outcome, run.header["consumer_set_size"])  # type: ignore[index]
    attempt = Attempt(
        outcome, reason, status, run.dataset_id, run.purpose, fee, run.started, run.provider_set_size
    )
    signed = records.record_attempt(ctx, caller, run.header, attempt, job_id=job_id)
    reply = {
        "usage_record": signed,
        "cardinality": noisy if outcome == Outcome.SUCCEEDED else None,
        "epsilon": epsilon,
        "provider_set_size": run.provider_set_size,
    }
    return reply, []


# --- consumer side ----------------------------------------------------------------------------
def run_consumer(ctx: Connector, job_id: str, epsilon: float) -> None:
    job = job_store.get(ctx, job_id)
    neg = negotiation.find(ctx, job.agreement_id, role="consumer")
    engine = ctx.settings.psi_engine
    clock = time.perf_counter()
    with job_store.ending_failed(ctx, job_id):
        job_store.update(ctx, job_id, phase="encrypting", backend=ctx.backend.name)
        first = ctx.backend.run(
            WorkerJob("psi.server_setup", {"column": job.key_column, "engine": engine}, [], job.input_path),
            job_store.phase_progress(ctx, job_id, 0.0, 0.3),
        )
        size = first.header["consumer_set_size"]
        job_store.update(ctx, job_id, phase="provider", consumer_set_size=size, progress=0.3)
        header = {
            "job": job.id,
            "agreement": job.agreement_id,
            "operation": OPERATION,
            "consumer_set_size": size,
            "mode": MODE,
            "epsilon": epsilon,
            "engine": engine,
        }
        timeout = float(ctx.settings.limits.wall_seconds + 60)
        cap = ctx.settings.limits.output_mb * MiB
        try:
            answer = ctx.client.send(
                "POST",
                f"{neg.peer_endpoint}/jobs",
                content=framing.encode(header, first.blobs),
                content_type=framing.MEDIA_TYPE,
                timeout=timeout,
            )
            reply, request = framing.decode(answer.content, cap)
            provider_size = int(reply["provider_set_size"])
            job_store.update(
                ctx, job_id, phase="encrypting theirs", provider_set_size=provider_size, progress=0.5
            )
            second = ctx.backend.run(
                WorkerJob(
                    "psi.server_process",
                    {"key": first.header["key"], "expected": provider_size, "engine": engine},
                    request,
                ),
                job_store.phase_progress(ctx, job_id, 0.5, 0.3),
            )
            job_store.update(ctx, job_id, phase="provider counting", progress=0.8)
            answer = waiting.send_second(ctx, neg.peer_endpoint, job.id, "count", second.blobs, timeout)
        except RemoteError as exc:
            records.provider_refused(ctx, job, exc)
            return
        reply, _ = framing.decode(answer.content, cap)
        metrics = {
            "total_s": round(time.perf_counter() - clock, 3),
            "consumer_sandbox_peak_rss_mb": max(first.peak_rss_mb, second.peak_rss_mb),
        }
        _finish(ctx, job, neg, reply, epsilon, metrics)


def _finish(
    ctx: Connector, job: Job, neg: Negotiation, reply: dict[str, Any], epsilon: float, metrics: dict[str, Any]
) -> None:
    """End the consumer's job with the provider's count, or withheld as its record says."""
    signed_record = reply.get("usage_record")
    if waiting.finished_withheld(ctx, job, neg, signed_record, metrics):
        return
    noisy = reply.get("cardinality")
    if isinstance(noisy, bool) or not isinstance(noisy, int) or noisy < 0:
        raise ContractError(f"the provider's count: expected a whole number ≥ 0, got {noisy!r}")
    result = {"cardinality": noisy, "epsilon": epsilon, "noise": "discrete Laplace, added by the provider"}
    records.finish(
        ctx, job, neg, signed_record, status=JobStatus.SUCCEEDED, error=None, result=result, metrics=metrics
    )
