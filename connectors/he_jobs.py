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

from flask import Response
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from connectors import datasets, jobs, negotiation, repeats
from connectors.context import Connector, log
from connectors.errors import Refused
from connectors.models import Job, Negotiation, OutboxRecord
from contracts.agreements import agreement_policy
from contracts.errors import ContractError
from contracts.offers import agreed_fee
from node.models import utcnow
from node.signing import RemoteError
from policies.evaluate import check_result
from sandbox import framing
from sandbox.errors import SandboxError
from sandbox.interface import WorkerJob
from sandbox.limits import MiB
from sandbox.ops.csvkeys import normalise_key
from sandbox.twopart import Continued

HE_OPERATIONS = ("he.aggregate", "he.score")
WAIT_FOR_PROVIDERS_S = 600
DELIVERY_DELAY_S = 0.1  # countersignatures go out this long after the job's result is stored


# --- checking requests (pure, shared by both sides) -------------------------------------------
def aggregate_params(body: dict[str, Any]) -> dict[str, Any]:
    """The aggregate request's parameters, validated; what travels to every provider."""
    from sandbox.ops import stats, where  # NumPy: only for homomorphic jobs

    params: dict[str, Any] = {
        k: body[k] for k in ("stats", "column", "bins", "features", "target") if body.get(k)
    }
    try:
        layout = stats.Layout.from_params(params)
        if body.get("where"):
            where.parse(str(body["where"]))
            params["where"] = str(body["where"])
    except (stats.StatsError, where.WhereError) as exc:
        raise Refused(str(exc)) from exc
    epsilon, bounds = body.get("epsilon"), body.get("bounds")
    if epsilon is not None:
        if isinstance(epsilon, bool) or not isinstance(epsilon, int | float) or not 0 < epsilon <= 100:
            raise Refused(f"epsilon: expected a number in (0, 100], got {epsilon!r}")
        if (
            not isinstance(bounds, list)
            or len(bounds) != 2
            or not all(isinstance(b, int | float) and not isinstance(b, bool) for b in bounds)
            or not bounds[0] < bounds[1]
        ):
            raise Refused(
                "bounds: differential privacy needs [lower, upper] with lower < upper to clip values"
            )
        params |= {"epsilon": float(epsilon), "bounds": [float(bounds[0]), float(bounds[1])]}
        mechanism = body.get("mechanism", "laplace")
        if mechanism not in ("laplace", "gaussian"):
            raise Refused(f"mechanism: expected laplace or gaussian, got {mechanism!r}")
        if mechanism == "gaussian":
            delta = body.get("delta")
            if (
                isinstance(delta, bool)
                or not isinstance(delta, int | float)
                or not 0 < delta <= 1e-3
                or epsilon >= 1
            ):
                raise Refused("the Gaussian mechanism needs delta in (0, 0.001] and epsilon < 1")
            params |= {"mechanism": "gaussian", "delta": float(delta)}
    params["size"] = layout.size
    return params


def read_columns_used(params: dict[str, Any]) -> list[str]:
    from sandbox.ops import stats, where

    used = stats.Layout.from_params(params).columns
    if params.get("where"):
        used |= where.columns(where.parse(params["where"]))
    return sorted(used)


# --- consumer side ---------------------------------------------------------------------------
def submit(ctx: Connector, body: dict[str, Any]) -> Job:
    op = str(body.get("operation"))
    if op == "he.aggregate":
        agreements = body.get("agreements")
        if (
            not isinstance(agreements, list)
            or not agreements
            or not all(isinstance(a, str) for a in agreements)
        ):
            raise Refused("agreements: name one or more agreements (--agreement, repeatable)")
        if len(set(agreements)) != len(agreements):
            raise Refused("agreements: an agreement is named twice")
        negs = [_consumer_agreement(ctx, a, op) for a in agreements]
        request: dict[str, Any] = {
            "params": aggregate_params(body),
            "agreements": [n.agreement_id for n in negs],
        }
        size = None
    else:
        neg = _consumer_agreement(ctx, str(body.get("agreement", "")), op)
        negs = [neg]
        request = {**_score_request(body), "agreements": [neg.agreement_id]}
        size = len(request["ids"])
    job = Job(
        id=f"urn:uuid:{uuid.uuid4()}",
        role="consumer",
        agreement_id=negs[0].agreement_id,
        peer_id=negs[0].peer_id,
        operation=op,
        status="running",
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
    if neg.agreement_id is None or neg.state != "FINALIZED":
        raise Refused(f"{ref}: the negotiation is {neg.state}, not a finalized agreement")
    if op not in neg.operations:
        raise Refused(f"agreement {neg.agreement_id} does not include {op} (it has {neg.operations})")
    return neg


def _score_request(body: dict[str, Any]) -> dict[str, Any]:
    _, _, ids = jobs.input_keys(body, "ids")
    model_path = Path(str(body.get("model", "")))
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
            content_type=jobs.FRAMES,
            timeout=float(ctx.settings.limits.wall_seconds + 60),
        )
    except RemoteError as exc:
        outcome = "denied" if exc.status == 403 else "failed"
        return {"usage_record": exc.problem.get("usage_record"), "outcome": outcome,
                "reason": exc.problem.get("detail") or str(exc)}, []  # fmt: skip
    reply, blobs = framing.decode(answer.content, ctx.settings.limits.output_mb * MiB)
    # a 200 is a success, or a withheld part (k not met) that the provider's record says so
    return {**reply, "outcome": "withheld" if reply.get("outcome") == "withheld" else "succeeded"}, blobs


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
            kept.append((neg, jobs.countersign(ctx, job_id, operation, neg, record, reply["outcome"])))
        except (ContractError, KeyError, TypeError) as exc:
            problems.append(f"{neg.peer_id}'s usage record refused: {exc}")
    with ctx.db.transaction() as session:
        for _, signed in kept:
            session.add(
                OutboxRecord(id=signed["document"]["id"], job_id=job_id, signed=signed, state="ready")
            )
        stored = session.get(Job, job_id)
        assert stored is not None
        if kept:
            stored.record_id = kept[0][1]["document"]["id"]

    def send() -> None:
        ctx.outbox_wakeup.set()
        for neg, signed in kept:
            ctx.background(jobs.send_countersignature, ctx, neg, job_id, signed)

    def deliver() -> None:
        later = threading.Timer(DELIVERY_DELAY_S, send)
        later.daemon = True
        later.start()

    return problems, deliver


def _nothing() -> None:
    pass


def _fail(ctx: Connector, job_id: str, error: str, metrics: dict[str, Any] | None = None) -> None:
    changes: dict[str, Any] = {"status": "failed", "phase": "done", "error": error, "finished_at": utcnow()}
    if metrics is not None:
        changes["metrics"] = metrics
    jobs._update(ctx, job_id, **changes)


def run_aggregate(ctx: Connector, job_id: str, request: dict[str, Any]) -> None:
    from sandbox.ops import he  # TenSEAL: loaded by the first homomorphic job

    params, negs = request["params"], _negotiations(ctx, request["agreements"])
    clock = time.perf_counter()
    metrics: dict[str, Any] = {"request": dict(request)}
    deliver: Callable[[], None] = _nothing  # until there are countersignatures to deliver
    decryption: Continued | None = None  # the consumer's decryption, once its worker has the key
    try:
        jobs._update(ctx, job_id, phase="keys", backend=ctx.backend.name)
        # key generation reads nothing from anyone: it runs here, and the secret key goes only
        # to this connector's own decryption worker, which loads it while the others compute
        secret, public = he.new_context()
        decryption = ctx.warm.begin(WorkerJob("he.aggregate.finish", params, [secret]))
        fingerprint = he.fingerprint(public)
        ctx.space.open_aggregation(job_id, request["agreements"], public, fingerprint, params["size"])
        jobs._update(ctx, job_id, phase="providers", progress=0.1)
        header = {"job": job_id, "operation": "he.aggregate", "params": params, "fingerprint": fingerprint}
        with ThreadPoolExecutor(max_workers=min(8, len(negs))) as pool:
            replies = list(
                pool.map(lambda n: _ask(ctx, n, {**header, "agreement": n.agreement_id}, [public])[0], negs)
            )
        metrics["providers_s"] = round(time.perf_counter() - clock, 3)
        problems, deliver = _keep_records(ctx, job_id, "he.aggregate", list(zip(negs, replies, strict=True)))
        answers = {
            n.agreement_id: (r.get("contribution") or r.get("reason"))
            for n, r in zip(negs, replies, strict=True)
        }
        if not any(r["outcome"] == "succeeded" for r in replies):
            reasons = "; ".join(f"{a}: {r}" for a, r in answers.items())
            _fail(ctx, job_id, f"no provider contributed: {reasons}", metrics)
            return
        jobs._update(ctx, job_id, phase="total", progress=0.7)
        state = _wait_for_total(ctx, job_id)
        metrics["answers"] = state["answers"]
        if state["total"] is None:
            if state.get("withheld"):
                why = f"the space withheld the total: {state['withheld']}"
            else:
                why = "no provider contributed: " + "; ".join(f"{a}: {r}" for a, r in answers.items())
            _fail(ctx, job_id, why, metrics)
            return
        finished = decryption.send({}, [base64.b64decode(state["total"])])
        metrics["total_s"] = round(time.perf_counter() - clock, 3)
        result = {
            "statistics": finished.header["result"],
            "contributors": state["contributors"],
            "answers": state["answers"],
        }
        error = "; ".join(problems) or None
        jobs._update(ctx, job_id, status="succeeded", phase="done", progress=1.0, result=result, error=error,
                      metrics=metrics, finished_at=utcnow())  # fmt: skip
    except (SandboxError, ContractError, RemoteError, framing.FrameError, KeyError, ValueError) as exc:
        log.warning("he.aggregate job %s failed: %s", job_id, exc)
        _fail(ctx, job_id, f"consumer: {exc}", metrics)
    except Exception as exc:
        log.exception("he.aggregate job %s failed unexpectedly", job_id)
        _fail(ctx, job_id, f"consumer: internal error: {exc}", metrics)
        raise
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
        jobs._update(ctx, job_id, phase="encrypting", backend=ctx.backend.name)
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
        jobs._update(ctx, job_id, phase="provider", progress=0.2)
        reply, blobs = _ask(ctx, neg, header, [public, json.dumps(request["ids"]).encode(), *weights])
        metrics["provider_s"] = round(time.perf_counter() - clock, 3)
        problems, deliver = _keep_records(ctx, job_id, "he.score", [(neg, reply)])
        if reply["outcome"] != "succeeded":
            error = f"{reply['outcome']} by provider: {reply['reason']}"
            jobs._update(
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
        jobs._update(ctx, job_id, phase="decrypting", progress=0.8)
        hits = sum(map(bool, found))
        done = decryption.send({"found": hits}, blobs[1:])
        decrypted = np.frombuffer(done.blobs[0], dtype=he_ops.SCORE_DTYPE)
        if len(decrypted) != hits:
            raise ValueError(f"the decryption gave {len(decrypted)} scores for the {hits} ids found")
        scores = iter((decrypted + request["bias"]).tolist())
        values = [next(scores) if hit else None for hit in found]  # None: not found
        metrics["total_s"] = round(time.perf_counter() - clock, 3)
        jobs._update(ctx, job_id, status="succeeded", phase="done", progress=1.0, metrics=metrics,
                      result={"ids": request["ids"], "values": values}, error="; ".join(problems) or None,
                      finished_at=utcnow())  # fmt: skip
    except (
        SandboxError,
        ContractError,
        RemoteError,
        framing.FrameError,
        KeyError,
        ValueError,
    ) as exc:
        log.warning("he.score job %s failed: %s", job_id, exc)
        _fail(ctx, job_id, f"consumer: {exc}", metrics)
    except Exception as exc:
        log.exception("he.score job %s failed unexpectedly", job_id)
        _fail(ctx, job_id, f"consumer: internal error: {exc}", metrics)
        raise
    finally:
        if decryption is not None:  # its worker is not left waiting for ciphertexts that will not come
            decryption.cancel()
        deliver()


# --- provider side ---------------------------------------------------------------------------
def _score_noise(ctx: Connector, neg: Negotiation, features: list[str]) -> dict[str, Any]:
    """The noise the provider adds in an he.score part: σ per feature from the agreement's
    ``tds:scoreNoise`` (none for a column it does not name) and the flooding σ of the scores."""
    agreed = (neg.agreement or {}).get("document", {}).get("tds:scoreNoise") or {}
    return {
        "noise": {f: float(agreed.get(f, 0.0)) for f in features},
        "flood": ctx.settings.score_flood_sigma,
    }


def _providers(ctx: Connector, job: str) -> int | None:
    """The space's count of distinct providers in aggregation ``job`` (None when it cannot say:
    a policy that asks for a number of providers then refuses the job)."""
    try:
        return ctx.space.aggregation_providers(job)
    except RemoteError as exc:
        log.warning("the space could not count the providers of aggregation %s: %s", job, exc)
        return None


def count_ids(blob: bytes) -> list[str]:
    """The distinct normalised ids of an he.score request's id list; refused unless it is a
    non-empty JSON list of distinct non-empty strings (a repeated id would be scored twice and
    averaging repeats strips the noise that bounds what a model extracts)."""
    try:
        ids = json.loads(blob)
    except ValueError as exc:
        raise Refused("he.score request: the ids are not a JSON list of strings", status=400) from exc
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i.strip() for i in ids):
        raise Refused(
            "he.score request: the ids must be a non-empty JSON list of non-empty strings", status=400
        )
    keys = [normalise_key(i) for i in ids]
    if len(set(keys)) != len(keys):
        raise Refused(
            f"he.score request: {len(keys) - len(set(keys))} ids appear more than once; send each id once",
            status=400,
        )
    return keys


def _repeats(
    ctx: Connector, neg: Negotiation, keys: list[str]
) -> tuple[int, Callable[[Session], None]] | None:
    """For an agreement whose policy bounds idRepeats: (the most times any of ``keys`` was scored
    under it, what counts this job's ids in the reservation's transaction). None otherwise."""
    if neg.agreement is None or not agreement_policy(neg.agreement["document"]).constraint_values(
        "he.score", "idRepeats"
    ):
        return None
    agreement_id = str(neg.agreement_id)
    hashed = repeats.hashes(agreement_id, keys)
    with ctx.db.session() as session:
        most = repeats.most_scored(session, agreement_id, hashed)
    return most, lambda session: repeats.count(session, agreement_id, hashed)


def _ids_today(ctx: Connector, agreement_id: str) -> int:
    midnight = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    with ctx.db.session() as session:
        total = session.scalar(
            select(func.coalesce(func.sum(Job.consumer_set_size), 0)).where(
                Job.role == "provider",
                Job.agreement_id == agreement_id,
                Job.operation == "he.score",
                Job.status == "succeeded",
                Job.created_at >= midnight,
            )
        )
    return int(total or 0)


def _release_epsilon(ctx: Connector, neg_id: str, epsilon: float) -> None:
    with ctx.db.transaction() as session:
        session.execute(
            update(Negotiation)
            .where(Negotiation.id == neg_id)
            .values(epsilon_spent=Negotiation.epsilon_spent - epsilon)
        )


def handle_job(ctx: Connector, caller: str, header: dict[str, Any], blobs: list[bytes]) -> Response:
    """A consumer's he.* request: agreement and policy first, then the sandbox."""
    operation = header["operation"]
    started = utcnow()
    # one connector may provide several agreements of one aggregation: its own job ids then
    job_id = header["job"] if operation == "he.score" else f"urn:uuid:{uuid.uuid4()}"
    neg: Negotiation | None = None
    dataset_id: str | None = None
    status, outcome, reason, fee = 500, "denied", "", 0
    reply: dict[str, Any] = {}
    answer: list[bytes] = []
    epsilon = 0.0
    checked: dict[str, Any] = {}
    keys: list[str] = []
    count_scored: Callable[[Session], None] | None = None  # he.score under an idRepeats bound
    try:
        params = header.get("params")
        if not isinstance(params, dict) or not isinstance(
            header.get("fingerprint", params.get("fingerprint")), str
        ):
            raise Refused("he job request: expected params and the context's fingerprint", status=400)
        if operation == "he.aggregate":
            checked = aggregate_params({**params, "stats": params.get("stats")})
            epsilon = checked.get("epsilon") or 0.0
            extra: dict[str, Any] = {"column": read_columns_used(checked), "statistic": checked["stats"]}
            if "epsilon" in checked:
                extra["epsilon"] = epsilon
        else:
            features = params.get("features")
            if not isinstance(features, list) or not all(isinstance(f, str) and f for f in features):
                raise Refused("he.score request: features must be a list of column names", status=400)
            if not isinstance(header.get("consumer_set_size"), int) or len(blobs) != 2 + len(features):
                raise Refused(
                    "he.score request: expected consumer_set_size and 2 + features blobs", status=400
                )
            # the provider counts the ids itself: a declared size is what the policy checks, the
            # fee is computed from and idsPerDay adds up, so it may not differ from what is sent
            keys = count_ids(blobs[1])
            counted = len(keys)
            if counted != header["consumer_set_size"]:
                raise Refused(
                    f"he.score request: consumer_set_size {header['consumer_set_size']!r} but the request "
                    f"carries {counted} ids; declare the number of ids sent",
                    status=400,
                )
            extra = {"column": sorted(features)}
        try:
            neg = negotiation.find(ctx, str(header.get("agreement")), role="provider")
        except Exception:
            neg = None
        if neg is not None:
            if epsilon:
                # a budget applies to differentially private jobs: a job without ε does not
                # state epsilonTotal, so a policy that budgets ε refuses it (no DP, no job)
                extra["epsilonTotal"] = neg.epsilon_spent + epsilon
            if operation == "he.aggregate":
                extra["providers"] = _providers(ctx, str(header["job"]))
            if operation == "he.score":
                extra["idsPerDay"] = _ids_today(ctx, neg.agreement_id or "") + header["consumer_set_size"]
                scored = _repeats(ctx, neg, keys)
                if scored is not None:
                    extra["idRepeats"] = scored[0] + 1
                    count_scored = scored[1]
        neg, dataset = jobs._authorize(
            ctx, caller, header, extra, attempt_id=job_id, started=started, epsilon=epsilon, then=count_scored
        )
        dataset_id = neg.dataset_id
        limits = datasets.offer_limits(ctx, neg.offer_id)
        try:
            if operation == "he.aggregate":
                outcome, reason, reply = _aggregate(ctx, neg, header, checked, blobs, dataset, limits)
            else:
                computed = ctx.warm.run(
                    WorkerJob(
                        "he.score.part",
                        # the provider's own terms last: a consumer's params cannot set them
                        {
                            **params,
                            "id_column": dataset.key_column,
                            **_score_noise(ctx, neg, list(params["features"])),
                        },
                        blobs,
                        dataset.path,
                        limits,
                    )
                )
                outcome, reason, answer = "succeeded", "completed", computed.blobs
                reply = {"found": computed.header["found"]}
        except (SandboxError, RemoteError) as exc:
            by_consumer = isinstance(exc, SandboxError) and jobs.consumers_fault(exc)
            if not by_consumer:
                jobs._release_use(ctx, neg.id)
                if epsilon:
                    _release_epsilon(ctx, neg.id, epsilon)
            outcome, reason = "failed", str(exc)
            status = 422 if by_consumer else 500
        # withheld (k not met): the use and its ε count and the agreed fee is due, as for a
        # success, unless the offer waived it (the README's outcome table); the part is not given
        fee = agreed_fee(neg.agreement["document"], outcome, header.get("consumer_set_size"))  # type: ignore[index]
    except jobs._Denied as exc:
        outcome, reason, dataset_id, status = "denied", str(exc), exc.dataset, 403
    if operation == "he.aggregate" and outcome != "succeeded" and "contributed nothing" not in reason:
        _decline(ctx, header, reason)
    attempt = jobs.Attempt(outcome, reason, status, dataset_id, neg.purpose if neg else None, fee, started)
    signed = jobs.record_attempt(ctx, caller, header, attempt, job_id=job_id)
    return Response(framing.encode({"usage_record": signed, **reply}, answer), mimetype=jobs.FRAMES)


def _decline(ctx: Connector, header: dict[str, Any], reason: str) -> None:
    """Tells the space this agreement gives nothing, so that the others' total is not held up.
    A request that is not really this provider's to answer is refused there; that is fine."""
    body = {"agreement": header["agreement"], "fingerprint": header.get("fingerprint"), "ciphertext": None}
    try:
        ctx.space.contribute(header["job"], {**body, "reason": f"refused: {reason}"[:2000]})
    except RemoteError as exc:
        log.info("the space did not take the refusal of %s: %s", header["job"], exc)


def _aggregate(
    ctx: Connector,
    neg: Negotiation,
    header: dict[str, Any],
    params: dict[str, Any],
    blobs: list[bytes],
    dataset: Any,
    limits: Any,
) -> tuple[str, str, dict[str, Any]]:
    """Computes this provider's part and hands it (or the reason there is none) to the space."""
    computed = ctx.warm.run(
        WorkerJob(
            "he.aggregate.part", {**params, "fingerprint": header["fingerprint"]}, blobs, dataset.path, limits
        )
    )
    policy = agreement_policy(neg.agreement["document"])  # type: ignore[index]
    below = check_result(tuple(policy.constraint_values("he.aggregate", "aggregationSize")),
                         {"aggregationSize": computed.header["rows"]})  # fmt: skip
    body: dict[str, Any] = {"agreement": neg.agreement_id, "fingerprint": header["fingerprint"]}
    # the space adds this part only with as many distinct providers as the policy asks for
    body["min_providers"] = policy.least("he.aggregate", "providers") or 1
    if below:
        # the count itself is not told: it is one of the statistics being protected
        reason = "fewer rows than the agreement's minimum (aggregationSize); contributed nothing"
        ctx.space.contribute(header["job"], {**body, "ciphertext": None, "reason": reason})
        return "withheld", reason, {"contribution": reason, "outcome": "withheld"}
    ctx.space.contribute(header["job"], {**body, "ciphertext": base64.b64encode(computed.blobs[0]).decode()})
    return "succeeded", "completed", {"contribution": "contributed"}
