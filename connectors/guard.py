"""The provider's guard: before any protocol message of a job is processed, the agreement and
its policy are checked, and the use is reserved.

:func:`gather` collects what the check needs (the local agreement, the space's word on it, the
consumer's membership, whether the dataset is still held); :func:`decide` is the check itself, a
pure function of those facts, tested without a database or a space (as python-tuf keeps its
trusted-metadata state machine apart from fetching); :func:`authorize` runs the two, then
reserves the use and its ε. Every refusal is a :class:`Denied`, which the job's usage record
carries.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.orm import Session

from connectors import attempts, datasets, negotiation
from connectors.context import Connector
from connectors.errors import NotFound
from connectors.models import Negotiation
from contracts.agreements import State, agreement_policy
from node.models import utcnow
from node.signing import RemoteError
from policies import export_list
from policies.evaluate import evaluate
from policies.export_list import ExportRule
from policies.model import RESULT_OPERANDS
from policies.reasons import say
from sandbox.errors import LimitExceeded, SandboxError, WorkerFailed


class Denied(Exception):
    """A job refused by the guard, with the reason its usage record gives."""

    def __init__(self, reason: str, dataset: str | None = None) -> None:
        super().__init__(reason)
        self.dataset = dataset


@dataclass(frozen=True)
class SpaceWord:
    """What the space said of the agreement: ``in force``, ``terminated`` (with the reason),
    ``not recorded``, or ``unanswered`` (with why)."""

    state: str
    detail: str = ""


@dataclass(frozen=True)
class Facts:
    """Everything :func:`decide` looks at. The space's word is asked only about an agreement this
    consumer holds in FINALIZED state (no caller makes the provider query the space about one
    that is not its own), and the consumer's jurisdiction and the dataset only once the space
    says the agreement is in force (a space that cannot answer refuses the job, whatever else)."""

    caller: str
    agreement: str
    operation: str
    now: dt.datetime
    negotiation: Negotiation | None
    space: SpaceWord | None = None
    jurisdiction: str | None = None
    dataset_held: bool = False
    consumer_set_size: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # the space's export list and the held dataset's catalog fields it matches on
    exports: tuple[ExportRule, ...] = ()
    dataset_fields: dict[str, str] | None = None
    # operands a later step states (a script's run ordinal and release, checked when it runs)
    later: frozenset[str] = frozenset()


def decide(facts: Facts) -> None:
    """Raise :class:`Denied` with the first reason the job may not run; return if it may.

    The order is the one a consumer can act on: the agreement (known, theirs, in force at both
    ends), the operation, the policy (issue 12 §3; the context of policies.evaluate), the data."""
    neg = facts.negotiation
    if neg is None:
        raise Denied(say("unknown-agreement", agreement=facts.agreement))
    if neg.peer_id != facts.caller:
        raise Denied(say("not-consumer", caller=facts.caller, agreement=neg.agreement_id))
    if neg.state == State.TERMINATED:
        raise Denied(say("terminated", agreement=neg.agreement_id, reason=neg.reason), neg.dataset_id)
    if neg.state != State.FINALIZED:
        raise Denied(say("not-finalized", agreement=neg.agreement_id, state=neg.state), neg.dataset_id)
    if neg.agreement is None:
        raise Denied(say("unsigned", agreement=neg.agreement_id), neg.dataset_id)
    space = facts.space or SpaceWord("unanswered", "not asked")
    if space.state == "not recorded":
        raise Denied(say("not-recorded", agreement=neg.agreement_id), neg.dataset_id)
    if space.state == "unanswered":
        raise Denied(say("unconfirmed", agreement=neg.agreement_id, detail=space.detail), neg.dataset_id)
    if space.state == "terminated":
        raise Denied(space.detail, neg.dataset_id)
    if facts.operation not in neg.operations:
        raise Denied(
            say("operation-outside", operation=facts.operation, operations=neg.operations), neg.dataset_id
        )
    context = {
        "purpose": neg.purpose,
        "recipient": facts.caller,
        "jurisdiction": facts.jurisdiction,
        "dateTime": facts.now,
        "count": neg.uses + 1,
        "consumerSetSize": facts.consumer_set_size,
        **facts.extra,
    }
    decision = evaluate(
        agreement_policy(neg.agreement["document"]), facts.operation, context, RESULT_OPERANDS | facts.later
    )
    if not decision.permitted:
        raise Denied(decision.summary, neg.dataset_id)
    if not facts.dataset_held:
        raise Denied(say("dataset-gone", dataset=neg.dataset_id), neg.dataset_id)
    # the export list, whatever the offer and the agreement say (policies.export_list)
    verdict = export_list.check(
        facts.exports, facts.dataset_fields or {}, facts.jurisdiction or "", neg.purpose
    )
    if not verdict.allowed:
        raise Denied(verdict.describe(), neg.dataset_id)


def ask_space(ctx: Connector, neg: Negotiation) -> SpaceWord:
    """The space's word on the agreement, asked before every job and without a cache: an
    operator's termination changes only the space's record, and a job under it must end at once
    everywhere (issue 12 §3). A termination learnt this way is recorded here too."""
    agreement_id = str(neg.agreement_id)
    try:
        recorded = ctx.space.agreement(agreement_id)
    except RemoteError as exc:
        if exc.status == 404:
            return SpaceWord("not recorded")
        return SpaceWord("unanswered", f"HTTP {exc.status}" if exc.status else "unreachable")
    if recorded.get("state") == State.TERMINATED:
        reason = negotiation.termination_reason(agreement_id, recorded)
        negotiation.terminated_at_the_space(ctx, neg, reason)
        return SpaceWord("terminated", reason)
    return SpaceWord("in force")


def gather(
    ctx: Connector, caller: str, header: dict[str, Any], extra: dict[str, Any] | None = None
) -> tuple[Facts, Any]:
    """The facts for :func:`decide`, and the local dataset (None when it is not held)."""
    agreement = str(header["agreement"])
    try:
        neg: Negotiation | None = negotiation.find(ctx, agreement, role="provider")
    except NotFound:
        neg = None
    facts = Facts(
        caller,
        agreement,
        header["operation"],
        utcnow(),
        neg,
        consumer_set_size=header.get("consumer_set_size"),
        extra=dict(extra or {}),
    )
    usable = (
        neg is not None
        and neg.peer_id == caller
        and neg.state == State.FINALIZED
        and neg.agreement is not None
    )
    if neg is None or not usable:
        return facts, None
    space = ask_space(ctx, neg)
    if space.state != "in force":  # decide denies on the space's word: nothing more to ask it
        return replace(facts, space=space), None
    try:
        exports = ctx.space.export_list()
    except RemoteError as exc:
        detail = f"its export list: HTTP {exc.status}" if exc.status else "its export list: unreachable"
        return replace(facts, space=SpaceWord("unanswered", detail)), None
    dataset = datasets.by_catalog_id(ctx, neg.dataset_id)
    gathered = replace(
        facts,
        space=space,
        jurisdiction=ctx.space.member(caller)["jurisdiction"],
        dataset_held=dataset is not None,
        exports=exports,
        dataset_fields=None
        if dataset is None
        else {
            "classification": dataset.classification,
            "pi_level": dataset.pi_level,
            "sector": dataset.sector,
        },
    )
    return gathered, dataset


def authorize(
    ctx: Connector,
    caller: str,
    header: dict[str, Any],
    extra: dict[str, Any] | None = None,
    *,
    attempt_id: str,
    started: dt.datetime,
    epsilon: float = 0.0,
    then: Callable[[Session], None] | None = None,
) -> tuple[Negotiation, Any]:
    """Check agreement and policy (with the job's ``extra`` context: columns, statistics, ε …);
    then reserve the use (and ``epsilon``) and write the pending attempt ``attempt_id`` in one
    transaction (connectors.attempts), with ``then`` run in it too; return (negotiation, local
    dataset) or raise :class:`Denied`."""
    facts, dataset = gather(ctx, caller, header, extra)
    decide(facts)
    neg = facts.negotiation
    assert neg is not None  # decide denies a job without one
    # reserve the use: compare-and-set, so concurrent jobs cannot both take the last use
    with ctx.db.transaction() as session:
        taken = attempts.reserve(session, neg, attempt_id, caller, header, epsilon, started)
        if taken and then is not None:
            then(session)
    if not taken:
        raise Denied(
            "another job took this use (or privacy budget) at the same moment; retry", neg.dataset_id
        )
    return neg, dataset


def consumers_fault(exc: SandboxError) -> bool:
    """Did the job fail on the consumer's request after the policy check (bad parameters, a
    column that is not numeric)? Then the use counts and any ε is spent, without a fee (the
    README's outcome table): a failure must not be a free probe. A failure of the provider's own
    (its sandbox, limits, data, an internal error) gives both back."""
    return isinstance(exc, WorkerFailed) and exc.kind == "request"


def failure_status(exc: Exception) -> int:
    """The one HTTP status of a job that failed after the guard, for every operation: a sandbox
    limit is 507 (RFC 4918 §11.5, as for PSI since the sandbox landed), the consumer's own bad
    request 422, anything else (the provider's sandbox, the space) 500."""
    if isinstance(exc, LimitExceeded):
        return 507
    if isinstance(exc, SandboxError) and consumers_fault(exc):
        return 422
    return 500
