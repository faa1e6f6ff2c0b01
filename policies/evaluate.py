"""Policy evaluation: a pure function of a policy, an action and the request context.

Semantics (ODRL 2.2 §2.6, narrowed to what TDS needs):

* a permission applies when its action is the requested one and every constraint is
  satisfied; a constraint on a result-time operand (``resultSize``) is *deferred*: it does not
  block the request and is returned so the consumer's connector can enforce it on the result;
* a prohibition applies when its action is the requested one and every constraint is
  satisfied or cannot be checked because the request does not state its operand (a
  prohibition fails closed: "no jobs with epsilon > 1" also stops a job that names no epsilon;
  one without constraints always applies); a constraint deferred to a later check (a job
  operand at negotiation) keeps the prohibition for that check;
* the request is permitted when at least one permission applies and no prohibition does.

A prohibition can therefore only remove permits, never add them. Every decision carries one
reason per constraint examined, so a denial says exactly which constraint failed and why.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from policies.model import RESULT_OPERANDS, Constraint, Policy, Value
from policies.reasons import SEPARATOR, say

# Operands a job supplies but a contract negotiation cannot know yet.
# what only a job knows: its use count, sizes, columns, statistics, privacy budget, daily volume
NEGOTIATION_DEFERRABLE: frozenset[str] = RESULT_OPERANDS | {
    "count", "consumerSetSize", "column", "statistic", "epsilon", "epsilonTotal", "idsPerDay",
    "providers", "idRepeats", "runsPerApproval", "release", "reviewRequired",
}  # fmt: skip


class Outcome(Enum):
    SATISFIED = "satisfied"
    VIOLATED = "violated"
    DEFERRED = "deferred"
    MISSING = "missing"  # the context lacks the value: treated as violated


@dataclass(frozen=True)
class ConstraintResult:
    rule: str  # e.g. "permission[0]"
    constraint: Constraint
    outcome: Outcome
    message: str

    def to_json(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "constraint": self.constraint.describe(),
            "outcome": self.outcome.value,
            "message": self.message,
        }


@dataclass(frozen=True)
class Decision:
    permitted: bool
    action: str
    reasons: tuple[ConstraintResult, ...] = field(default=())
    summary: str = ""

    @property
    def deferred(self) -> tuple[Constraint, ...]:
        return tuple(r.constraint for r in self.reasons if r.outcome is Outcome.DEFERRED)

    def to_json(self) -> dict[str, object]:
        return {
            "permitted": self.permitted,
            "action": self.action,
            "summary": self.summary,
            "reasons": [r.to_json() for r in self.reasons],
        }


def _hierarchical_part_of(value: str, container: str) -> bool:
    """``CN-HA`` is part of ``CN``; ``risk-control.credit`` is part of ``risk-control``."""
    return value == container or value.startswith((container + "-", container + "."))


def compare(operator: str, value: object, right: Value) -> bool:
    """Apply one ODRL operator. ``value`` comes from the context, ``right`` from the policy."""
    if operator in ("isAnyOf", "isNoneOf", "isPartOf"):
        assert isinstance(right, tuple)
        values = list(value) if isinstance(value, list | tuple | set | frozenset) else [value]
        if operator == "isAnyOf":
            return any(v in right for v in values)
        if operator == "isNoneOf":
            return not any(v in right for v in values)
        return bool(values) and all(
            isinstance(v, str) and any(_hierarchical_part_of(v, r) for r in right) for v in values
        )
    if isinstance(right, bool) and not isinstance(value, bool):
        return operator == "neq"  # true is not 1, false is not 0
    if operator == "eq":
        return value == right
    if operator == "neq":
        return value != right
    # order operators: the model guarantees right is int or datetime
    if isinstance(right, dt.datetime) and not isinstance(value, dt.datetime):
        return False
    if isinstance(right, float) and (isinstance(value, bool) or not isinstance(value, int | float)):
        return False
    if (
        isinstance(right, int)
        and not isinstance(right, bool)
        and (isinstance(value, bool) or not isinstance(value, int))
    ):
        return False
    if operator == "lt":
        return value < right  # type: ignore[operator]
    if operator == "lteq":
        return value <= right  # type: ignore[operator]
    if operator == "gt":
        return value > right  # type: ignore[operator]
    if operator == "gteq":
        return value >= right  # type: ignore[operator]
    raise ValueError(f"unknown operator {operator!r}")  # unreachable after parse_policy


def _show(value: object) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return repr(value)


def check_constraint(
    rule: str,
    constraint: Constraint,
    context: Mapping[str, object],
    deferrable: frozenset[str] = RESULT_OPERANDS,
) -> ConstraintResult:
    if constraint.left not in context or context[constraint.left] is None:
        if constraint.left in deferrable:
            return ConstraintResult(
                rule,
                constraint,
                Outcome.DEFERRED,
                say("on-result", constraint=constraint.describe()),
            )
        return ConstraintResult(
            rule,
            constraint,
            Outcome.MISSING,
            say("unstated", constraint=constraint.describe(), left=constraint.left),
        )
    value = context[constraint.left]
    if compare(constraint.operator, value, constraint.right):
        return ConstraintResult(
            rule,
            constraint,
            Outcome.SATISFIED,
            say("violated", constraint=constraint.describe(), left=constraint.left, value=_show(value)),
        )
    return ConstraintResult(
        rule,
        constraint,
        Outcome.VIOLATED,
        say("violated", constraint=constraint.describe(), left=constraint.left, value=_show(value)),
    )


def evaluate(
    policy: Policy,
    action: str,
    context: Mapping[str, object],
    deferrable: frozenset[str] = RESULT_OPERANDS,
) -> Decision:
    """Decide whether ``action`` is permitted in ``context`` under ``policy``.

    A constraint whose left operand is in ``deferrable`` and absent from ``context`` is
    deferred rather than failed: negotiation defers the operands only a job knows
    (:data:`NEGOTIATION_DEFERRABLE`); a job defers only the result-time ones.
    """
    reasons: list[ConstraintResult] = []
    permitted_by: str | None = None
    for i, rule in enumerate(policy.permissions):
        if rule.action != action:
            continue
        label = f"permission[{i}]"
        results = [check_constraint(label, c, context, deferrable) for c in rule.constraints]
        reasons.extend(results)
        if permitted_by is None and all(r.outcome in (Outcome.SATISFIED, Outcome.DEFERRED) for r in results):
            permitted_by = label
    if permitted_by is None:
        failed = [r.message for r in reasons if r.outcome in (Outcome.VIOLATED, Outcome.MISSING)]
        if not any(rule.action == action for rule in policy.permissions):
            summary = say("no-permission", action=action, actions=list(policy.actions()))
        else:
            summary = say("not-permitted", action=action, failed=SEPARATOR.join(failed))
        return Decision(False, action, tuple(reasons), summary)
    for i, rule in enumerate(policy.prohibitions):
        if rule.action != action:
            continue
        label = f"prohibition[{i}]"
        results = [check_constraint(label, c, context, deferrable) for c in rule.constraints]
        reasons.extend(results)
        if all(r.outcome in (Outcome.SATISFIED, Outcome.MISSING) for r in results):
            matched = SEPARATOR.join(r.message for r in results) or "always"
            return Decision(
                False, action, tuple(reasons), say("prohibited", action=action, label=label, matched=matched)
            )
    return Decision(True, action, tuple(reasons), say("permitted", action=action, label=permitted_by))


def check_result(
    decision_constraints: tuple[Constraint, ...], result_context: Mapping[str, object]
) -> list[str]:
    """Check the deferred (result-time) constraints; return the message of each one violated."""
    return [
        r.message
        for r in (check_constraint("result", c, result_context) for c in decision_constraints)
        if r.outcome is not Outcome.SATISFIED
    ]


def withheld_reason(
    decision_constraints: tuple[Constraint, ...], result_context: Mapping[str, object]
) -> str | None:
    """Why a result is withheld, naming the constraints it does not meet but not the result:
    the reason reaches the record, the log and the consumer, and the size of a withheld result is
    what k protects. None when the result may be shown."""
    unmet = [c.describe() for c in decision_constraints if check_result((c,), result_context)]
    if not unmet:
        return None
    return say("withheld", unmet=SEPARATOR.join(unmet))
