"""The upper bounds a policy puts on an integer operand: how many uses an agreement admits per
operation (``count``), and the script terms' sizes and runs (policies.script_terms)."""

from __future__ import annotations

from policies.model import Constraint, Policy


def most(constraints: list[Constraint]) -> int | None:
    """The largest whole value every lt / lteq / eq constraint admits (None: none bounds it)."""
    bounds = [
        int(c.right) - (1 if c.operator == "lt" else 0)
        for c in constraints
        if c.operator in ("lt", "lteq", "eq") and isinstance(c.right, int) and not isinstance(c.right, bool)
    ]
    return min(bounds) if bounds else None


def use_limits(policy: Policy) -> dict[str, int | None]:
    """Each permitted operation's most uses under the agreement (``count`` is the agreement's
    ordinal of a use, across its operations): the most lenient of its permissions, None when
    one of them sets no bound. An operation that a prohibition names still shows its
    permissions' bound; the guard refuses it whatever its count."""
    limits: dict[str, int | None] = {}
    for rule in policy.permissions:
        bound = most([c for c in rule.constraints if c.left == "count"])
        if rule.action in limits:
            known = limits[rule.action]
            limits[rule.action] = None if known is None or bound is None else max(known, bound)
        else:
            limits[rule.action] = bound
    return limits
