"""What a policy says of reviewed scripts beyond permit or deny: whether code is reviewed before
it runs, how an approved rerun's output is released, how large an output may be and how many
runs one approval may grant.

These operands name the provider's terms, so an absent constraint means the cautious term: code
is reviewed, every output waits for a reviewer, an approval grants one run. A term is lifted only
by a ``script`` permission that constrains it and admits the lifted value (``reviewRequired eq
false``, ``release eq auto``, ``runsPerApproval lteq 5``). The connector then states the term it
applied in each step's policy context, so the permission that applies checks it like any other
operand (policies.evaluate).
"""

from __future__ import annotations

from dataclasses import dataclass

from policies.evaluate import compare
from policies.limits import most
from policies.model import Constraint, Policy

ACTION = "script"


@dataclass(frozen=True)
class ScriptTerms:
    review_required: bool
    release: str  # "review" | "auto"
    output_bytes: int | None  # the most bytes an output may have (None: the connector's cap)
    runs_per_approval: int  # the most runs one approval may grant


def _admits(constraints: list[Constraint], value: object) -> bool:
    return bool(constraints) and all(compare(c.operator, value, c.right) for c in constraints)


def terms(policy: Policy) -> ScriptTerms:
    """The terms of the most lenient ``script`` permission for each operand (each is checked
    again against the permission that applies when the step's context is evaluated)."""
    rules = [rule for rule in policy.permissions if rule.action == ACTION]

    def on(left: str) -> list[list[Constraint]]:
        return [[c for c in rule.constraints if c.left == left] for rule in rules]

    review_required = not any(_admits(cs, False) for cs in on("reviewRequired"))
    release = "auto" if any(_admits(cs, "auto") for cs in on("release")) else "review"
    sizes = [most(cs) for cs in on("outputBytes") if cs]
    runs = [most(cs) for cs in on("runsPerApproval") if cs]
    return ScriptTerms(
        review_required=review_required,
        release=release,
        output_bytes=max((s for s in sizes if s is not None), default=None),
        runs_per_approval=max((r for r in runs if r is not None), default=1),
    )
