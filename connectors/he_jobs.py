"""Homomorphic jobs: he.aggregate across providers and he.score with one provider.

he.aggregate — the consumer's connector makes a CKKS key pair in its sandbox (the secret key
stays in this process's memory for the job), opens an aggregation at the space with the public
context, and asks each provider to contribute. Each provider checks agreement and policy
(columns, statistics, ε per job and in total) before anything parses the request, computes its
additive parts over the rows it holds in its sandbox — clipped and noised when ε is given —
checks the minimum rows k, and sends its ciphertext (or the reason it gives none) to the space,
not to the consumer. The space adds the ciphertexts; the consumer decrypts the total alone.

he.score — the consumer encrypts its model's weights (each repeated across the slots); the
provider computes encrypted w·x for the ids it holds; the consumer decrypts and adds the bias.
Ids the provider does not hold come back as not found.

Every attempt at a provider ends in a signed usage record, countersigned by the consumer.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from connectors import job_store, negotiation, records
from connectors.consumer_input import input_keys
from connectors.context import Connector
from connectors.errors import Refused
from connectors.he_params import aggregate_params
from connectors.models import Job, JobStatus, Negotiation, OutboxRecord, OutboxState
from connectors.requests import AggregateJob, ScoreJob
from contracts.agreements import State
from contracts.errors import ContractError
from contracts.usage import Outcome
from node.models import utcnow
from node.signing import RemoteError
from sandbox import framing
from sandbox.interface import WorkerJob
from sandbox.limits import MiB
from sandbox.twopart import Continued

WAIT_FOR_PROVIDERS_S = 600
DELIVERY_DELAY_S = 0.1  # countersignatures go out this long after the job's result is stored


# --- consumer side ---------------------------------------------------------------------------
def submit(ctx: Connector, asked: ScoreJob | AggregateJob) -> Job:
    op = asked.operation
    if isinstance(asked, AggregateJob):
        if len(set(asked.agreements)) != len(asked.agreements):
            raise Refused("agreements: an agreement is named twice")
        negs = [_consumer_agreement(ctx, a, op) for a in asked.agreements]
        request: dict[str, Any] = {
            "params": aggregate_params(asked.model_dump(exclude_none=True)),
            "agreements": [n.agreement_id for n in negs],
        }
        size = None
    else:
        neg = _consumer_agreement(ctx, asked.agreement, op)
        negs = [neg]
        request = {**_score_request(asked), "agreements": [neg.agreement_id]}
        size = len(request["ids"])
    job = Job(
        id=f"urn:uuid:{uuid.uuid4()}",
        role="consumer",
        agreement_id=negs[0].agreement_id,
        peer_id=negs[0].peer_id,
        operation=op,
        status=JobStatus.RUNNING,
        phase="queued",
        consumer_set_size=size,
        metrics={"request": {k: v for k, v in request.items() if k != "ids"}},
    )
    with ctx.db.transaction() as session:
        session.add(job)
    runner = run_aggregate if op == "he.aggregate" else run_score
    ctx.background(runner, ctx, job.id, request)
    return job


def _consumer_agreement(ctx: Connector, ref: str, op: str) -> Negotiation:
    neg = negotiation.find(ctx, ref, role="consumer")
    if neg.agreement_id is None or neg.state != State.FINALIZED:
        raise Refused(f"{ref}: the negotiation is {neg.state}, not a finalized agreement")
    if op not in neg.operations:
        raise Refused(f"agreement {neg.agreement_id} does not include {op} (it has {neg.operations})")
    return neg


def _score_request(asked: ScoreJob) -> dict[str, Any]:
    _, _, ids = input_keys(asked.ids, asked.column, "ids")
    model_path = Path(asked.model)
    try:
        model = json.loads(model_path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise Refused(f"model {model_path}: cannot read it as JSON ({exc})") from exc
    weights, features, bias = model.get("weights"), model.get("features"), model.get("bias", 0.0)
    if (
        not isinstance(weights, list)
        or not isinstance(features, list)
        or not weights
        or len(weights) != len(features)
        or not all(isinstance(w, int | float) and not isinstance(w, bool) for w in [*weights, bias])
        or not all(isinstance(f, str) and f for f in features)
    ):
        raise Refused(
            'model: expected {"features": [names…], "weights": [numbers…] of the same length, "bias": n}'
        )
    return {"ids": ids, "weights": [float(w) for w in weights], "features": features, "bias": float(bias)}


def _negotiations(ctx: Connector, agreements: list[str]) -> list[Negotiation]:
    return [negotiation.find(ctx, a, role="consumer") for a in agreements]


def _ask(
    ctx: Connector, neg: Negotiation, header: dict[str, Any], blobs: list[bytes]
) -> tuple[dict[str, Any], list[bytes]]:
    """One provider's answer: (reply header with its usage record, blobs); a refusal's record
    comes back in the problem, as for PSI jobs."""
    try:
        answer = ctx.client.send(
            "POST",
            f"{neg.peer_endpoint}/jobs",
            content=framing.encode(header, blobs),
            content_type=framing.MEDIA_TYPE,
            timeout=float(ctx.settings.limits.wall_seconds + 60),
        )
    except RemoteError as exc:
        outcome = Outcome.DENIED if exc.status == 403 else Outcome.FAILED
        return {"usage_record": exc.problem.get("usage_record"), "outcome": outcome,
                "reason": exc.problem.get("detail") or str(exc)}, []  # fmt: skip
    reply, blobs = framing.decode(answer.content, ctx.settings.limits.output_mb * MiB)
    # a 200 is a success, or a withheld part (k not met) that the provider's record says so
    return {
        **reply,
        "outcome": Outcome.WITHHELD if reply.get("outcome") == Outcome.WITHHELD else Outcome.SUCCEEDED,
    }, blobs


def _keep_records(
    ctx: Connector, job_id: str, operation: str, answers: list[tuple[Negotiation, dict[str, Any]]]
) -> tuple[list[str], Callable[[], None]]:
    """Countersigns each provider's record into the outbox; returns the problems met and what
    delivers the countersignatures — called once the job's result is in, and sending
    :data:`DELIVERY_DELAY_S` later, so that delivery (signing, the providers' and the space's
    ledger work) does not slow down the job's last steps or the answer to whoever waits for it
    (stored → answered: median 8 → 6 ms, at most 18 → 12 ms). The records are in the outbox
    already; a crash in between loses nothing."""
    problems = []
    kept = []
    for neg, reply in answers:
        record = reply.get("usage_record")
        if record is None:
            problems.append(f"{neg.peer_id}: {reply.get('reason')}")
            continue
        try:
            kept.append((neg, records.countersign(ctx, job_id, operation, neg, record, reply["outcome"])))
        except (ContractError, KeyError, TypeError) as exc:
            problems.append(f"{neg.peer_id}'s usage record refused: {exc}")
    with ctx.db.transaction() as session:
        for _, signed in kept:
            session.add(
                OutboxRecord(
                    id=signed["document"]["id"], job_id=job_id, signed=signed, state=OutboxState.READY
                )
            )
        stored = session.get(Job, job_id)
        assert stored is not None
        if kept:
            stored.record_id = kept[0][1]["document"]["id"]

    def send() -> None:
        ctx.outbox_wakeup.set()
        for neg, signed in kept:
            ctx.background(records.send_countersignature, ctx, neg, job_id, signed)

    def deliver() -> None:
        later = threading.Timer(DELIVERY_DELAY_S, send)
        later.daemon = True
        later.start()

    return problems, deliver


def _nothing() -> None:
    pass


def run_aggregate(ctx: Connector, job_id: str, request: dict[str, Any]) -> None:
    from sandbox.ops import he  # TenSEAL: loaded by the first homomorphic job

    params, negs = request["params"], _negotiations(ctx, request["agreements"])
    clock = time.perf_counter()
    metrics: dict[str, Any] = {"request": dict(request)}
    deliver: Callable[[], None] = _nothing  # until there are countersignatures to deliver
    decryption: Continued | None = None  # the consumer's decryption, once its worker has the key
    try:
        with job_store.ending_failed(ctx, job_id, metrics):
            job_store.update(ctx, job_id, phase="keys", backend=ctx.backend.name)
            # key generation reads nothing from anyone: it runs here, and the secret key goes only
            # to this connector's own decryption worker, which loads it while the others compute
            secret, public = he.new_context()
            decryption = ctx.warm.begin(WorkerJob("he.aggregate.finish", params, [secret]))
            fingerprint = he.fingerprint(public)
            ctx.space.open_aggregation(job_id, request["agreements"], public, fingerprint, params["size"])
            job_store.update(ctx, job_id, phase="providers", progress=0.1)
            header = {
                "job": job_id,
                "operation": "he.aggregate",
                "params": params,
                "fingerprint": fingerprint,
            }
            with ThreadPoolExecutor(max_workers=min(8, len(negs))) as pool:
                replies = list(
                    pool.map(
                        lambda n: _ask(ctx, n, {**header, "agreement": n.agreement_id}, [public])[0], negs
                    )
                )
            metrics["providers_s"] = round(time.perf_counter() - clock, 3)
            problems, deliver = _keep_records(
                ctx, job_id, "he.aggregate", list(zip(negs, replies, strict=True))
            )
            answers = {
                n.agreement_id: (r.get("contribution") or r.get("reason"))
                for n, r in zip(negs, replies, strict=True)
            }
            if not any(r["outcome"] == Outcome.SUCCEEDED for r in replies):
                reasons = "; ".join(f"{a}: {r}" for a, r in answers.items())
                # every provider's policy said no: the job was denied, as any operation's is
                denied = all(r["outcome"] == Outcome.DENIED for r in replies)
                job_store.fail(ctx, job_id, f"no provider contributed: {reasons}", metrics,
                               JobStatus.DENIED if denied else JobStatus.FAILED)  # fmt: skip
                return
            job_store.update(ctx, job_id, phase="total", progress=0.7)
            state = _wait_for_total(ctx, job_id)
            metrics["answers"] = state["answers"]
            if state["total"] is None:
                if state.get("withheld"):
                    why = f"the space withheld the total: {state['withheld']}"
                else:
                    why = "no provider contributed: " + "; ".join(f"{a}: {r}" for a, r in answers.items())
                job_store.fail(ctx, job_id, why, metrics)
                return
            finished = decryption.send(
                {"contributors": state["contributors"]}, [base64.b64decode(state["total"])]
            )
            metrics["total_s"] = round(time.perf_counter() - clock, 3)
            peers = {n.agreement_id: n.peer_id for n in negs}
            result = {
                "statistics": finished.header["result"],
                "contributors": state["contributors"],
                "answers": state["answers"],
                # the same answers by provider, as people name them (answers: by agreement)
                "providers": {peers.get(a, a): answer for a, answer in state["answers"].items()},
            }
            if "noise_std" in finished.header:  # with ε: each statistic's noise standard deviation
                result["noise_std"] = finished.header["noise_std"]
            error = "; ".join(problems) or None
            job_store.update(ctx, job_id, status=JobStatus.SUCCEEDED, phase="done", progress=1.0,
                             result=result, error=error, metrics=metrics, finished_at=utcnow())  # fmt: skip
    finally:
        if decryption is not None:
            decryption.cancel()
        deliver()


def _wait_for_total(ctx: Connector, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_FOR_PROVIDERS_S
    while True:
        state = ctx.space.aggregation(job_id)
        if state["status"] == "complete":
            return state
        if time.monotonic() > deadline:
            raise ValueError(
                f"the providers did not all answer within {WAIT_FOR_PROVIDERS_S} s: {state['answers']}"
            )
        time.sleep(0.05)


def run_score(ctx: Connector, job_id: str, request: dict[str, Any]) -> None:
    import numpy as np

    from sandbox.ops import he
    from sandbox.ops import he_jobs as he_ops

    (neg,) = _negotiations(ctx, request["agreements"])
    clock = time.perf_counter()
    metrics: dict[str, Any] = {"request": {k: v for k, v in request.items() if k != "ids"}}
    deliver: Callable[[], None] = _nothing  # until there are countersignatures to deliver
    decryption: Continued | None = None  # the consumer's decryption, once its worker has the key
    try:
        with job_store.ending_failed(ctx, job_id, metrics):
            job_store.update(ctx, job_id, phase="encrypting", backend=ctx.backend.name)
            secret, public = he.new_context()  # as for he.aggregate: the consumer's own keys and model
            # the decryption's worker loads the key while the provider computes (sandbox/twopart.py)
            decryption = ctx.warm.begin(WorkerJob("he.score.finish", {}, [secret]))
            weights = he.encrypt_weights(he.load_secret(secret), request["weights"])
            header = {
                "job": job_id,
                "agreement": neg.agreement_id,
                "operation": "he.score",
                "consumer_set_size": len(request["ids"]),
                "params": {"features": request["features"], "fingerprint": he.fingerprint(public)},
            }
            job_store.update(ctx, job_id, phase="provider", progress=0.2)
            reply, blobs = _ask(ctx, neg, header, [public, json.dumps(request["ids"]).encode(), *weights])
            metrics["provider_s"] = round(time.perf_counter() - clock, 3)
            problems, deliver = _keep_records(ctx, job_id, "he.score", [(neg, reply)])
            if reply["outcome"] != Outcome.SUCCEEDED:
                error = f"{reply['outcome']} by provider: {reply['reason']}"
                job_store.update(
                    ctx,
                    job_id,
                    status=reply["outcome"],
                    phase="done",
                    finished_at=utcnow(),
                    metrics=metrics,
                    error=error,
                )
                return
            found = json.loads(blobs[0])
            if not isinstance(found, list) or len(found) != len(request["ids"]):
                raise ValueError("the provider's found-list does not match the ids sent")
            job_store.update(ctx, job_id, phase="decrypting", progress=0.8)
            hits = sum(map(bool, found))
            done = decryption.send({"found": hits}, blobs[1:])
            decrypted = np.frombuffer(done.blobs[0], dtype=he_ops.SCORE_DTYPE)
            if len(decrypted) != hits:
                raise ValueError(f"the decryption gave {len(decrypted)} scores for the {hits} ids found")
            scores = iter((decrypted + request["bias"]).tolist())
            values = [next(scores) if hit else None for hit in found]  # None: not found
            metrics["total_s"] = round(time.perf_counter() - clock, 3)
            job_store.update(ctx, job_id, status=JobStatus.SUCCEEDED, phase="done", progress=1.0,
                             metrics=metrics, result={"ids": request["ids"], "values": values},
                             error="; ".join(problems) or None, finished_at=utcnow())  # fmt: skip
    finally:
        if decryption is not None:  # its worker is not left waiting for ciphertexts that will not come
            decryption.cancel()
        deliver()
