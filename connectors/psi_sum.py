"""psi.sum jobs: the consumer learns |A ∩ B| and the sum of a column of the provider's rows whose
key is in A ∩ B, per category of a provider's column if asked, each category only if its count
meets the offer's k — which the provider checks, on counts only it decrypts. The protocol and
what each party sees: sandbox.ops.psi_sum and the README's trust model.

Two round trips, as the provider-counted PSI (connectors.psi_counted):

1. consumer → ``POST /dsp/jobs`` (operation ``psi.sum``, ``sum``, ``by``): k_c·H(x). The provider
   checks agreement and policy — the summed and category columns must be allowed (``column
   isPartOf``) — reserves the use, and answers with its set, its answer and its encrypted
   columns; it keeps its BFV secret key for the connector's ``psi_wait_s`` seconds.
2. consumer → ``POST /dsp/jobs/<job>/sum``: one masked ciphertext per category. The provider
   decrypts, checks each count against k and against what the run allows (at most |A| and the
   category's size), and answers with the masked sums of the categories it releases and the
   usage record: ``succeeded``, or ``withheld`` when no category meets k.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from connectors import attempts, datasets, guard, job_store, negotiation, provider, records, waiting
from connectors.attempts import Attempt
from connectors.consumer_input import input_keys
from connectors.context import Connector
from connectors.errors import Refused
from connectors.models import Job, JobStatus, Negotiation
from connectors.requests import PsiJob
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
from sandbox.errors import SandboxError
from sandbox.interface import WorkerJob
from sandbox.limits import MiB
from sandbox.ops.sum_rows import unmasked, unscaled

OPERATION = "psi.sum"
ENGINE = "ecdh-x25519"  # the protocol needs the provider's set in its own order: this engine's format


def columns(header: dict[str, Any]) -> list[str]:
    """The provider's columns a psi.sum request reads beside the key (the policy's ``column``)."""
    return [c for c in (header.get("sum"), header.get("by")) if isinstance(c, str)]


# --- provider side ----------------------------------------------------------------------------
def start(ctx: Connector, caller: str, header: dict[str, Any], blobs: list[bytes]) -> provider.Answer:
    """Step 1 at the provider: policy, reservation, its set and encrypted columns."""
    waiting.end_expired(ctx)
    if not isinstance(header.get("sum"), str) or header.get("engine") != ENGINE:
        raise Refused(f"psi.sum request: expected the summed column (sum) and engine {ENGINE!r}", status=400)
    started, neg, dataset_id = utcnow(), None, None
    try:
        neg, dataset = guard.authorize(
            ctx, caller, header, {"column": columns(header)}, attempt_id=header["job"], started=started
        )
        dataset_id = neg.dataset_id
        params = {
            "column": dataset.key_column,
            "sum": header["sum"],
            "by": header.get("by"),
            "consumer_set_size": header["consumer_set_size"],
        }
        computed = ctx.backend.run(
            WorkerJob(
                "psi.sum.provider", params, blobs, dataset.path, datasets.offer_limits(ctx, neg.offer_id)
            )
        )
    except guard.Denied as exc:
        waiting.refuse(
            ctx, caller, header, Attempt(Outcome.DENIED, str(exc), 403, exc.dataset, None, 0, started)
        )
    except SandboxError as exc:
        assert neg is not None
        if not guard.consumers_fault(exc):
            attempts.give_back(ctx, neg.id, 0.0)
        status = guard.failure_status(exc)
        waiting.refuse(
            ctx,
            caller,
            header,
            Attempt(Outcome.FAILED, str(exc), status, dataset_id, neg.purpose, 0, started),
        )
    found = computed.header
    setup, response, public, secret, ciphertexts = computed.blobs
    kept = {
        "secret": secret,
        "labels": found["labels"],
        "sizes": found["category_sizes"],
        "places": found["places"],
    }
    size = int(found["provider_set_size"])
    wait = waiting.keep(
        ctx, Waiting(caller, header, neg.id, neg.purpose, dataset_id, neg.offer_id, size, started, kept)
    )
    reply = {
        "continue": True,
        "provider_set_size": size,
        "categories": len(found["labels"]),
        "wait_s": wait,
        "sandbox_peak_rss_mb": computed.peak_rss_mb,
    }
    return reply, [setup, response, public, ciphertexts]


def finish(ctx: Connector, caller: str, job_id: str, body: bytes) -> provider.Answer:
    """Step 2 at the provider: decrypt, check the counts and k, release, record."""
    try:
        header, blobs = framing.decode(body, ctx.settings.max_body_mb * MiB)
    except framing.FrameError as exc:
        raise Refused(f"sum request: {exc}", status=400) from exc
    if header.get("job") != job_id or not blobs:
        raise Refused(f"sum request: expected the job id {job_id} and a ciphertext per category", status=400)
    run = waiting.take(ctx, caller, job_id)
    neg = negotiation.find(ctx, run.header["agreement"], role="provider")
    kept, asked = run.kept, int(run.header["consumer_set_size"])
    outcome, reason, status, released, withheld, peak = Outcome.FAILED, "", 500, [], 0, None
    try:
        computed = ctx.backend.run(
            WorkerJob(
                "psi.sum.reveal",
                {"categories": len(kept["labels"])},
                [kept["secret"], *blobs],
                None,
                datasets.offer_limits(ctx, run.offer_id),
            )
        )
    except SandboxError as exc:
        if not guard.consumers_fault(exc):
            attempts.give_back(ctx, run.neg_id, 0.0)
        reason, status = str(exc), guard.failure_status(exc)
    else:
        counts, masked, peak = computed.header["counts"], computed.header["masked"], computed.peak_rss_mb
        if any(c > min(asked, n) for c, n in zip(counts, kept["sizes"], strict=True)) or sum(counts) > asked:
            reason, status = (
                "the consumer's sums are not what the protocol gives: a category's count exceeds the "
                "consumer's set or the category; nothing is released",
                422,
            )
        else:
            policy = agreement_policy(neg.agreement["document"])  # type: ignore[index]
            bounds = tuple(policy.constraint_values(OPERATION, "resultSize"))
            for index, count in enumerate(counts):
                if withheld_reason(bounds, {"resultSize": count}):
                    withheld += 1
                else:
                    released.append(
                        {
                            "index": index,
                            "label": kept["labels"][index],
                            "count": count,
                            "masked": masked[index],
                        }
                    )
            if released:
                outcome, reason = Outcome.SUCCEEDED, say("completed")
            else:
                outcome = Outcome.WITHHELD
                reason = withheld_reason(bounds, {"resultSize": min(counts)}) or say("completed")
    fee = agreed_fee(neg.agreement["document"], outcome, asked)  # type: ignore[index]
    attempt = Attempt(
        outcome, reason, status, run.dataset_id, run.purpose, fee, run.started, run.provider_set_size
    )
    signed = records.record_attempt(ctx, caller, run.header, attempt, job_id=job_id)
    reply = {
        "usage_record": signed,
        "released": released,
        "withheld_categories": withheld,
        "places": kept["places"],
        "provider_set_size": run.provider_set_size,
        "sandbox_peak_rss_mb": peak,
    }
    return reply, []


# --- consumer side ----------------------------------------------------------------------------
def submit(ctx: Connector, request: PsiJob) -> Job:
    neg = negotiation.find(ctx, request.agreement, role="consumer")
    if neg.agreement_id is None:
        raise Refused(f"negotiation {neg.id} is {neg.state} and has no agreement yet")
    if not request.sum:
        raise Refused("psi.sum needs the provider's column to sum (--sum COLUMN)")
    if request.epsilon is not None:
        raise Refused("epsilon: psi.sum takes none; its provider checks k on exact counts")
    path, column, keys = input_keys(request.input, request.column, "input")
    job = Job(
        id=f"urn:uuid:{uuid.uuid4()}",
        role="consumer",
        agreement_id=neg.agreement_id,
        peer_id=neg.peer_id,
        operation=OPERATION,
        status=JobStatus.RUNNING,
        phase="queued",
        input_path=str(path.resolve()),
        key_column=column,
        consumer_set_size=len(keys),
        metrics={"request": {"sum": request.sum, "by": request.by}},
    )
    with ctx.db.transaction() as session:
        session.add(job)
    ctx.background(run_consumer, ctx, job.id, request.sum, request.by)
    return job


def run_consumer(ctx: Connector, job_id: str, summed: str, by: str | None) -> None:
    job = job_store.get(ctx, job_id)
    neg = negotiation.find(ctx, job.agreement_id, role="consumer")
    clock = time.perf_counter()
    timeout, cap = float(ctx.settings.limits.wall_seconds + 60), ctx.settings.limits.output_mb * MiB
    with job_store.ending_failed(ctx, job_id):
        job_store.update(ctx, job_id, phase="encrypting", backend=ctx.backend.name)
        first = ctx.backend.run(
            WorkerJob(
                "psi.client_request",
                {"column": job.key_column, "reveal_intersection": False, "engine": ENGINE},
                [],
                job.input_path,
            ),
            job_store.phase_progress(ctx, job_id, 0.0, 0.3),
        )
        size = first.header["consumer_set_size"]
        job_store.update(ctx, job_id, phase="provider", consumer_set_size=size, progress=0.3)
        header = {
            "job": job.id,
            "agreement": job.agreement_id,
            "operation": OPERATION,
            "consumer_set_size": size,
            "engine": ENGINE,
            "sum": summed,
            "by": by,
        }
        try:
            answer = ctx.client.send(
                "POST",
                f"{neg.peer_endpoint}/jobs",
                content=framing.encode(header, first.blobs[:1]),
                content_type=framing.MEDIA_TYPE,
                timeout=timeout,
            )
            reply, blobs = framing.decode(answer.content, cap)
            provider_size, categories = int(reply["provider_set_size"]), int(reply["categories"])
            job_store.update(ctx, job_id, phase="summing", provider_set_size=provider_size, progress=0.5)
            params = {
                "key": first.header["key"],
                "expected": size,
                "provider_set_size": provider_size,
                "categories": categories,
            }
            second = ctx.backend.run(
                WorkerJob("psi.sum.client", params, blobs), job_store.phase_progress(ctx, job_id, 0.5, 0.4)
            )
            job_store.update(ctx, job_id, phase="provider decrypting", progress=0.9)
            answer = waiting.send_second(ctx, neg.peer_endpoint, job.id, "sum", second.blobs, timeout)
        except RemoteError as exc:
            records.provider_refused(ctx, job, exc)
            return
        final, _ = framing.decode(answer.content, cap)
        metrics = {
            "total_s": round(time.perf_counter() - clock, 3),
            "consumer_sandbox_peak_rss_mb": max(first.peak_rss_mb, second.peak_rss_mb),
            "provider_sandbox_peak_rss_mb": max(
                float(reply.get("sandbox_peak_rss_mb") or 0), float(final.get("sandbox_peak_rss_mb") or 0)
            ),
        }
        _finish(ctx, job, neg, final, second.header, by, metrics)


def _finish(
    ctx: Connector,
    job: Job,
    neg: Negotiation,
    final: dict[str, Any],
    ours: dict[str, Any],
    by: str | None,
    metrics: dict[str, Any],
) -> None:
    signed_record = final.get("usage_record")
    if waiting.finished_withheld(ctx, job, neg, signed_record, metrics):
        return
    masks, places, rows = ours["masks"], final.get("places"), []
    if isinstance(places, bool) or not isinstance(places, int) or not 0 <= places <= 6:
        raise ContractError(f"the provider's decimal places: expected 0 to 6, got {places!r}")
    for entry in final.get("released") or []:
        index = entry.get("index")
        if not isinstance(index, int) or not 0 <= index < len(masks):
            raise ContractError(
                f"the provider's released category: expected an index below {len(masks)}, got {index!r}"
            )
        value = unscaled(unmasked(int(entry["masked"]), masks[index]), places)
        rows.append({"category": entry["label"], "count": int(entry["count"]), "sum": value})
    result: dict[str, Any] = {"cardinality": ours["cardinality"], "column": job.metrics["request"]["sum"]}  # type: ignore[index]
    if by is None and rows:
        result.update(count=rows[0]["count"], sum=rows[0]["sum"])
    elif by is not None:
        result.update(by=by, categories=rows, withheld_categories=int(final.get("withheld_categories") or 0))
    records.finish(
        ctx, job, neg, signed_record, status=JobStatus.SUCCEEDED, error=None, result=result, metrics=metrics
    )
