"""The uses a policy admits per operation (policies.limits)."""

from hypothesis import given
from hypothesis import strategies as st

from policies.limits import most, use_limits
from policies.model import parse_constraint, parse_policy


def rule(action: str, *constraints: tuple[str, str, object]) -> dict:
    return {"action": action, "constraint": [
        {"leftOperand": left, "operator": op, "rightOperand": right} for left, op, right in constraints
    ]}  # fmt: skip


def test_each_operation_gets_its_most_lenient_bound() -> None:
    policy = parse_policy({"permission": [
        rule("psi.cardinality", ("count", "lteq", 10), ("purpose", "eq", "risk-control")),
        rule("psi.cardinality", ("count", "lt", 21)),  # a second permission: either admits a use
        rule("psi.intersection", ("count", "lteq", 5), ("count", "lt", 4)),  # both bind: the tighter
        rule("script", ("purpose", "eq", "risk-control")),  # no count: no limit
        rule("he.score", ("count", "gt", 2)),  # a lower bound only
    ]})  # fmt: skip
    assert use_limits(policy) == {
        "psi.cardinality": 20,
        "psi.intersection": 3,
        "script": None,
        "he.score": None,
    }


def test_an_unbounded_permission_lifts_the_limit() -> None:
    policy = parse_policy(
        {"permission": [rule("psi.cardinality", ("count", "lteq", 3)), rule("psi.cardinality")]}
    )
    assert use_limits(policy) == {"psi.cardinality": None}


@given(st.integers(min_value=1, max_value=10**6), st.sampled_from(["lt", "lteq", "eq"]))
def test_the_bound_is_the_largest_admitted_value(value: int, operator: str) -> None:
    constraint = parse_constraint({"leftOperand": "count", "operator": operator, "rightOperand": value}, "c")
    bound = most([constraint])
    assert bound == (value - 1 if operator == "lt" else value)
