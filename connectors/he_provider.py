"""The provider's side of homomorphic jobs: the guard's context for each, and the compute steps
that run inside connectors.provider's skeleton.

he.aggregate: the provider computes its additive parts over the rows it holds (clipped and
noised when ε is given), checks the minimum rows k, and sends its ciphertext (or the reason it
gives none) to the space, never to the consumer. he.score: it computes encrypted w·x for the
ids it holds, with the agreement's noise, and answers which ids it found.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connectors import datasets, negotiation, provider, repeats
from connectors.context import Connector, log
from connectors.errors import NotFound, Refused
from connectors.he_params import aggregate_params, read_columns_used
from connectors.models import Job, JobStatus, Negotiation
from connectors.provider import Computed, Guarded
from contracts.agreements import agreement_policy
from contracts.usage import Outcome
from node.models import utcnow
from node.signing import RemoteError
from policies.evaluate import check_result
from policies.reasons import say
from sandbox.interface import WorkerJob
from sandbox.ops.csvkeys import normalise_key


def handle_job(ctx: Connector, caller: str, header: dict[str, Any], blobs: list[bytes]) -> provider.Answer:
    """A consumer's he.* request: its parameters checked (a malformed one is refused before any
    use is taken), then the skeleton: agreement and policy first, then the sandbox."""
    params = header.get("params")
    if not isinstance(params, dict) or not isinstance(
        header.get("fingerprint", params.get("fingerprint")), str
    ):
        raise Refused("he job request: expected params and the context's fingerprint", status=400)
    try:
        neg: Negotiation | None = negotiation.find(ctx, str(header.get("agreement")), role="provider")
    except NotFound:
        neg = None  # the guard denies the job, naming the agreement
    if header["operation"] == "he.aggregate":
        # one connector may provide several agreements of one aggregation: its own job ids then
        checked = aggregate_params({**params, "stats": params.get("stats")})
        return provider.provide(
            ctx, caller, header, _aggregate_step(ctx, header, checked, blobs),
            attempt_id=f"urn:uuid:{uuid.uuid4()}", guarded=_aggregate_guard(ctx, header, checked, neg),
            on_end=lambda outcome, reason: _decline_unless_given(ctx, header, outcome, reason),
        )  # fmt: skip
    guarded = _score_guard(ctx, header, params, blobs, neg)
    return provider.provide(
        ctx, caller, header, _score_step(ctx, params, blobs), attempt_id=header["job"], guarded=guarded
    )


def _aggregate_guard(
    ctx: Connector, header: dict[str, Any], checked: dict[str, Any], neg: Negotiation | None
) -> Guarded:
    epsilon = checked.get("epsilon") or 0.0
    extra: dict[str, Any] = {"column": read_columns_used(checked), "statistic": checked["stats"]}
    if "epsilon" in checked:
        extra["epsilon"] = epsilon
    if neg is not None:
        if epsilon:
            # a budget applies to differentially private jobs: a job without ε does not state
            # epsilonTotal, so a policy that budgets ε refuses it (no DP, no job)
            extra["epsilonTotal"] = neg.epsilon_spent + epsilon
        extra["providers"] = _providers(ctx, str(header["job"]))
    return Guarded(extra, epsilon)


def _score_guard(
    ctx: Connector,
    header: dict[str, Any],
    params: dict[str, Any],
    blobs: list[bytes],
    neg: Negotiation | None,
) -> Guarded:
    features = params.get("features")
    if not isinstance(features, list) or not all(isinstance(f, str) and f for f in features):
        raise Refused("he.score request: features must be a list of column names", status=400)
    if not isinstance(header.get("consumer_set_size"), int) or len(blobs) != 2 + len(features):
        raise Refused("he.score request: expected consumer_set_size and 2 + features blobs", status=400)
    # the provider counts the ids itself: a declared size is what the policy checks, the fee is
    # computed from and idsPerDay adds up, so it may not differ from what is sent
    keys = count_ids(blobs[1])
    if len(keys) != header["consumer_set_size"]:
        raise Refused(
            f"he.score request: consumer_set_size {header['consumer_set_size']!r} but the request "
            f"carries {len(keys)} ids; declare the number of ids sent",
            status=400,
        )
    extra: dict[str, Any] = {"column": sorted(features)}
    count_scored: Callable[[Session], None] | None = None  # under an idRepeats bound
    if neg is not None:
        extra["idsPerDay"] = _ids_today(ctx, neg.agreement_id or "") + header["consumer_set_size"]
        scored = _repeats(ctx, neg, keys)
        if scored is not None:
            extra["idRepeats"] = scored[0] + 1
            count_scored = scored[1]
    return Guarded(extra, then=count_scored)


def _score_step(ctx: Connector, params: dict[str, Any], blobs: list[bytes]) -> provider.Compute:
    def step(neg: Negotiation, dataset: Any) -> Computed:
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
                datasets.offer_limits(ctx, neg.offer_id),
            )
        )
        return Computed(reply={"found": computed.header["found"]}, blobs=computed.blobs)

    return step


def _aggregate_step(
    ctx: Connector, header: dict[str, Any], params: dict[str, Any], blobs: list[bytes]
) -> provider.Compute:
    def step(neg: Negotiation, dataset: Any) -> Computed:
        limits = datasets.offer_limits(ctx, neg.offer_id)
        outcome, reason, reply = _aggregate(ctx, neg, header, params, blobs, dataset, limits)
        return Computed(outcome, reason, reply)

    return step


def _decline_unless_given(ctx: Connector, header: dict[str, Any], outcome: str, reason: str) -> None:
    if outcome != Outcome.SUCCEEDED and "contributed nothing" not in reason:
        _decline(ctx, header, reason)


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
                Job.status == JobStatus.SUCCEEDED,
                Job.created_at >= midnight,
            )
        )
    return int(total or 0)


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
        return JobStatus.WITHHELD, reason, {"contribution": reason, "outcome": Outcome.WITHHELD}
    ctx.space.contribute(header["job"], {**body, "ciphertext": base64.b64encode(computed.blobs[0]).decode()})
    return JobStatus.SUCCEEDED, say("completed"), {"contribution": "contributed"}
