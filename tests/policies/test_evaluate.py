import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.errors import PolicySyntaxError
from policies.evaluate import NEGOTIATION_DEFERRABLE, Outcome, check_result, compare, evaluate
from policies.model import Constraint, Policy, Rule, parse_policy

NOW = dt.datetime(2026, 11, 27, 8, 0, tzinfo=dt.UTC)


def policy(*constraints: dict, action: str = "psi.cardinality", prohibition: list | None = None) -> Policy:
    doc: dict = {"permission": [{"action": action, "constraint": list(constraints)}]}
    if prohibition is not None:
        doc["prohibition"] = prohibition
    return parse_policy(doc)


def c(left: str, op: str, right: object) -> dict:
    return {"leftOperand": left, "operator": op, "rightOperand": right}


BASE = {
    "purpose": "risk-control",
    "recipient": "bank",
    "jurisdiction": "CN-HA",
    "dateTime": NOW,
    "count": 1,
    "consumerSetSize": 1000,
}


@pytest.mark.parametrize(
    ("operator", "value", "right", "expected"),
    [
        ("eq", 5, 5, True),
        ("eq", 5, 6, False),
        ("neq", 5, 6, True),
        ("neq", 5, 5, False),
        ("lt", 4, 5, True),
        ("lt", 5, 5, False),
        ("lteq", 5, 5, True),
        ("lteq", 6, 5, False),
        ("gt", 6, 5, True),
        ("gt", 5, 5, False),
        ("gteq", 5, 5, True),
        ("gteq", 4, 5, False),
        ("isAnyOf", "a", ("a", "b"), True),
        ("isAnyOf", "c", ("a", "b"), False),
        ("isNoneOf", "c", ("a", "b"), True),
        ("isNoneOf", "a", ("a", "b"), False),
        ("isPartOf", "CN-HA", ("CN",), True),
        ("isPartOf", "CN", ("CN",), True),
        ("isPartOf", "CNX", ("CN",), False),
        ("isPartOf", "US-CA", ("CN",), False),
        ("isPartOf", "risk-control.credit", ("risk-control",), True),
        ("lt", "5", 6, False),  # a string never compares to a number
        ("lteq", True, 6, False),  # nor does a boolean
    ],
)
def test_every_operator(operator: str, value: object, right: object, expected: bool) -> None:
    assert compare(operator, value, right) is expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("constraint", "context_change", "permitted"),
    [
        (c("purpose", "eq", "risk-control"), {}, True),
        (c("purpose", "isAnyOf", ["marketing"]), {}, False),
        (c("recipient", "eq", "bank"), {}, True),
        (c("recipient", "neq", "bank"), {}, False),
        (c("jurisdiction", "isPartOf", ["CN"]), {}, True),
        (c("jurisdiction", "isNoneOf", ["CN-HA"]), {}, False),
        (c("dateTime", "lt", "2027-01-01T00:00:00Z"), {}, True),
        (c("dateTime", "lt", "2026-11-27T07:59:59Z"), {}, False),
        (c("dateTime", "gteq", "2026-11-27T16:00:00+08:00"), {}, True),  # same instant in +08:00
        (c("count", "lteq", 2), {"count": 2}, True),
        (c("count", "lteq", 2), {"count": 3}, False),
        (c("consumerSetSize", "lteq", 1000), {}, True),
        (c("consumerSetSize", "lteq", 999), {}, False),
        (c("consumerSetSize", "gteq", 10), {"consumerSetSize": 9}, False),
    ],
)
def test_every_left_operand(constraint: dict, context_change: dict, permitted: bool) -> None:
    decision = evaluate(policy(constraint), "psi.cardinality", {**BASE, **context_change})
    assert decision.permitted is permitted
    assert len(decision.reasons) == 1
    expected = Outcome.SATISFIED if permitted else Outcome.VIOLATED
    assert decision.reasons[0].outcome is expected


def test_denial_names_the_failing_constraint_and_the_value() -> None:
    decision = evaluate(
        policy(c("purpose", "eq", "risk-control"), c("count", "lteq", 2)),
        "psi.cardinality",
        {**BASE, "count": 3},
    )
    assert not decision.permitted
    assert decision.summary == "psi.cardinality not permitted: count lteq 2: count is 3"
    assert [r.outcome for r in decision.reasons] == [Outcome.SATISFIED, Outcome.VIOLATED]


def test_action_without_permission_is_denied_listing_what_is_permitted() -> None:
    decision = evaluate(policy(), "psi.intersection", BASE)
    assert not decision.permitted
    assert decision.summary == "no permission for psi.intersection; the policy permits ['psi.cardinality']"


def test_missing_context_value_denies() -> None:
    decision = evaluate(policy(c("jurisdiction", "eq", "CN-HA")), "psi.cardinality", {"purpose": "x"})
    assert not decision.permitted
    assert decision.reasons[0].outcome is Outcome.MISSING
    assert "the request does not state jurisdiction" in decision.summary


def test_result_size_is_deferred_then_checked_on_the_result() -> None:
    decision = evaluate(policy(c("resultSize", "gteq", 100)), "psi.cardinality", BASE)
    assert decision.permitted
    assert decision.deferred == (Constraint("resultSize", "gteq", 100),)
    assert check_result(decision.deferred, {"resultSize": 100}) == []
    assert check_result(decision.deferred, {"resultSize": 99}) == ["resultSize gteq 100: resultSize is 99"]


def test_negotiation_defers_job_time_operands() -> None:
    p = policy(c("count", "lteq", 1), c("consumerSetSize", "lteq", 10), c("purpose", "eq", "risk-control"))
    context = {"purpose": "risk-control"}
    assert not evaluate(p, "psi.cardinality", context).permitted
    assert evaluate(p, "psi.cardinality", context, NEGOTIATION_DEFERRABLE).permitted


def test_prohibition_applies_when_all_its_constraints_hold() -> None:
    prohibited = policy(
        prohibition=[{"action": "psi.cardinality", "constraint": [c("jurisdiction", "isPartOf", ["CN-HA"])]}]
    )
    decision = evaluate(prohibited, "psi.cardinality", BASE)
    assert not decision.permitted
    assert decision.summary.startswith("psi.cardinality prohibited by prohibition[0]")
    other = evaluate(prohibited, "psi.cardinality", {**BASE, "jurisdiction": "CN-BJ"})
    assert other.permitted


def test_prohibition_whose_operand_the_request_does_not_state_fails_closed() -> None:
    # "no job with epsilon above 1" stops a job that names no epsilon at all (issue 12 §2)
    prohibited = policy(prohibition=[{"action": "psi.cardinality", "constraint": [c("epsilon", "gt", 1.0)]}])
    silent = evaluate(prohibited, "psi.cardinality", BASE)
    assert not silent.permitted
    assert silent.summary == (
        "psi.cardinality prohibited by prohibition[0]: epsilon gt 1.0: the request does not state epsilon"
    )
    assert evaluate(prohibited, "psi.cardinality", {**BASE, "epsilon": 0.5}).permitted
    assert not evaluate(prohibited, "psi.cardinality", {**BASE, "epsilon": 2.0}).permitted
    # at negotiation a job operand is deferred: the prohibition waits for the job
    assert evaluate(prohibited, "psi.cardinality", BASE, NEGOTIATION_DEFERRABLE).permitted


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "policy $: expected a JSON object, got list"),
        ({}, "policy $.permission: a policy needs at least one permission"),
        ({"permission": [{"action": "download"}]}, "unknown action 'download'"),
        (
            {"permission": [{"action": "psi.cardinality", "constraint": [c("spatial", "eq", "x")]}]},
            "unknown left operand 'spatial'",
        ),
        (
            {"permission": [{"action": "psi.cardinality", "constraint": [c("count", "isAnyOf", [1])]}]},
            "operator 'isAnyOf' does not apply to count",
        ),
        (
            {"permission": [{"action": "psi.cardinality", "constraint": [c("count", "lteq", "3")]}]},
            "expected an integer, got '3'",
        ),
        (
            {
                "permission": [
                    {"action": "psi.cardinality", "constraint": [c("dateTime", "lt", "2027-01-01")]}
                ]
            },
            "has no time zone",
        ),
        (
            {"permission": [{"action": "psi.cardinality", "constraint": [c("dateTime", "lt", "soon")]}]},
            "expected an ISO 8601 date-time",
        ),
        (
            {"permission": [{"action": "psi.cardinality", "constraint": [c("purpose", "isAnyOf", [])]}]},
            "isAnyOf needs a non-empty list of strings",
        ),
        ({"permission": [{"action": "psi.cardinality", "duty": []}]}, "unknown keys ['duty']"),
        ({"permission": [{"action": "psi.cardinality"}], "obligation": []}, "duties are not supported yet"),
    ],
)
def test_malformed_policies_are_refused_with_the_path(document: object, message: str) -> None:
    with pytest.raises(
        PolicySyntaxError, match=message.replace("[", r"\[").replace("$", r"\$").replace("(", r"\(")
    ):
        parse_policy(document)


def test_round_trip_through_json() -> None:
    p = policy(c("purpose", "isAnyOf", ["a", "b"]), c("dateTime", "lt", "2027-01-01T00:00:00+08:00"))
    assert parse_policy(p.to_json()) == p
    assert p.to_json()["permission"][0]["constraint"][1]["rightOperand"] == "2026-12-31T16:00:00Z"


# --- property: a prohibition never widens access ------------------------------------------
operands = st.sampled_from(["purpose", "count", "consumerSetSize", "jurisdiction"])


@st.composite
def constraints(draw: st.DrawFn) -> dict:
    left = draw(operands)
    if left in ("count", "consumerSetSize"):
        return c(
            left, draw(st.sampled_from(["lt", "lteq", "gt", "gteq", "eq", "neq"])), draw(st.integers(0, 5))
        )
    values = draw(st.lists(st.sampled_from(["a", "b", "CN", "CN-HA"]), min_size=1, max_size=3))
    return c(left, draw(st.sampled_from(["isAnyOf", "isNoneOf", "isPartOf"])), values)


rules = st.builds(
    lambda action, cs: {"action": action, "constraint": cs},
    st.sampled_from(["psi.cardinality", "psi.intersection"]),
    st.lists(constraints(), max_size=3),
)
contexts = st.fixed_dictionaries(
    {
        "purpose": st.sampled_from(["a", "b", "c"]),
        "count": st.integers(0, 6),
        "consumerSetSize": st.integers(0, 6),
        "jurisdiction": st.sampled_from(["CN", "CN-HA", "US"]),
    }
)


@given(
    st.lists(rules, min_size=1, max_size=3),
    st.lists(rules, max_size=2),
    rules,
    contexts,
    st.sampled_from(["psi.cardinality", "psi.intersection"]),
)
def test_adding_a_prohibition_never_turns_a_deny_into_a_permit(
    permissions: list, prohibitions: list, extra: dict, context: dict, action: str
) -> None:
    before = parse_policy({"permission": permissions, "prohibition": prohibitions})
    after = parse_policy({"permission": permissions, "prohibition": [*prohibitions, extra]})
    if not evaluate(before, action, context).permitted:
        assert not evaluate(after, action, context).permitted


@given(
    st.lists(rules, min_size=1, max_size=3),
    contexts,
    st.sampled_from(["psi.cardinality", "psi.intersection"]),
)
def test_evaluation_is_deterministic(permissions: list, context: dict, action: str) -> None:
    p = parse_policy({"permission": permissions})
    assert evaluate(p, action, context) == evaluate(p, action, context)


def test_rule_helpers() -> None:
    p = Policy(permissions=(Rule("psi.cardinality", (Constraint("resultSize", "gteq", 5),)),))
    assert p.constraint_values("psi.cardinality", "resultSize") == [Constraint("resultSize", "gteq", 5)]
    assert p.constraint_values("psi.intersection", "resultSize") == []


def test_decimal_operands_for_a_privacy_budget() -> None:
    policy = parse_policy(
        {
            "permission": [
                {
                    "action": "he.aggregate",
                    "constraint": [
                        {
                            "leftOperand": "epsilon",
                            "operator": "lteq",
                            "rightOperand": {"@value": "0.5", "@type": "xsd:decimal"},
                        },
                        {"leftOperand": "epsilonTotal", "operator": "lteq", "rightOperand": 2},
                    ],
                }
            ]
        }
    )
    assert policy.to_json()["permission"][0]["constraint"][1]["rightOperand"] == {
        "@value": "2.0",
        "@type": "xsd:decimal",
    }
    assert evaluate(policy, "he.aggregate", {"epsilon": 0.5, "epsilonTotal": 1.5}).permitted
    denied = evaluate(policy, "he.aggregate", {"epsilon": 0.75, "epsilonTotal": 2.25})
    assert denied.summary.endswith(
        "epsilon lteq 0.5: epsilon is 0.75; epsilonTotal lteq 2.0: epsilonTotal is 2.25"
    )
    assert not evaluate(policy, "he.aggregate", {"epsilon": True, "epsilonTotal": 1}).permitted
    with pytest.raises(PolicySyntaxError, match="expected a decimal number, got 'a lot'"):
        parse_policy({"permission": [{"action": "he.aggregate", "constraint": [
            {"leftOperand": "epsilon", "operator": "lteq", "rightOperand": "a lot"}]}]})  # fmt: skip
