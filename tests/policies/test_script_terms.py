"""The script operands: parsing (outputBytes, runsPerApproval, release, reviewRequired),
evaluation, and the terms a policy sets for reviewed scripts."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.errors import PolicySyntaxError
from policies.evaluate import Outcome, check_result, evaluate
from policies.model import RESULT_OPERANDS, parse_policy
from policies.script_terms import ScriptTerms, terms


def c(left: str, op: str, right: object) -> dict:
    return {"leftOperand": left, "operator": op, "rightOperand": right}


def script(*constraints: dict) -> dict:
    return {"action": "script", "constraint": list(constraints)}


def test_a_policy_without_script_terms_gets_the_cautious_ones() -> None:
    policy = parse_policy({"permission": [script(c("purpose", "eq", "research"))]})
    assert terms(policy) == ScriptTerms(
        review_required=True, release="review", output_bytes=None, runs_per_approval=1
    )


def test_each_term_is_lifted_by_a_constraint_that_admits_it() -> None:
    policy = parse_policy(
        {
            "permission": [
                script(
                    c("reviewRequired", "eq", {"@value": "false", "@type": "xsd:boolean"}),
                    c("release", "isAnyOf", ["review", "auto"]),
                    c("outputBytes", "lteq", {"@value": 65536, "@type": "xsd:integer"}),
                    c("runsPerApproval", "lt", {"@value": 6, "@type": "xsd:integer"}),
                )
            ]
        }
    )
    assert terms(policy) == ScriptTerms(
        review_required=False, release="auto", output_bytes=65536, runs_per_approval=5
    )


def test_a_constraint_that_keeps_the_cautious_term_does_not_lift_it() -> None:
    policy = parse_policy(
        {"permission": [script(c("reviewRequired", "eq", True), c("release", "eq", "review"))]}
    )
    assert (terms(policy).review_required, terms(policy).release) == (True, "review")


def test_terms_of_other_actions_do_not_count() -> None:
    policy = parse_policy(
        {
            "permission": [
                {"action": "psi.cardinality", "constraint": [c("outputBytes", "lteq", 10)]},
                script(),
            ]
        }
    )
    assert terms(policy).output_bytes is None


def test_the_most_lenient_permission_sets_each_term() -> None:
    policy = parse_policy(
        {
            "permission": [
                script(c("outputBytes", "lteq", 1000), c("runsPerApproval", "lteq", 2)),
                script(c("outputBytes", "lteq", 4000), c("runsPerApproval", "eq", 3)),
            ]
        }
    )
    assert (terms(policy).output_bytes, terms(policy).runs_per_approval) == (4000, 3)


@pytest.mark.parametrize(
    ("constraint", "path", "message"),
    [
        (c("release", "eq", "later"), "rightOperand", "release is one of ['review', 'auto'], got 'later'"),
        (
            c("release", "isAnyOf", ["auto", "never"]),
            "rightOperand",
            "release is one of ['review', 'auto'], got 'never'",
        ),
        (c("reviewRequired", "eq", "yes"), "rightOperand", "expected true or false, got 'yes'"),
        (c("reviewRequired", "eq", 0), "rightOperand", "expected true or false, got 0"),
        (
            c("reviewRequired", "lt", True),
            "operator",
            "operator 'lt' does not apply to reviewRequired (boolean); expected one of ['eq', 'neq']",
        ),
        (c("outputBytes", "lteq", "64k"), "rightOperand", "expected an integer, got '64k'"),
        (c("runsPerApproval", "lteq", 2.5), "rightOperand", "expected an integer, got 2.5"),
    ],
)
def test_bad_script_operands_are_refused_with_the_path(constraint: dict, path: str, message: str) -> None:
    with pytest.raises(PolicySyntaxError) as caught:
        parse_policy({"permission": [script(constraint)]})
    assert caught.value.path == f"$.permission[0].constraint[0].{path}"
    assert message in str(caught.value)


def test_a_boolean_round_trips_as_a_typed_literal() -> None:
    doc = {"permission": [script(c("reviewRequired", "eq", False))]}
    out = parse_policy(doc).to_json()
    assert out["permission"][0]["constraint"][0]["rightOperand"] == {"@value": False, "@type": "xsd:boolean"}
    assert parse_policy(out) == parse_policy(doc)


def test_true_is_not_one_when_a_run_is_checked() -> None:
    policy = parse_policy({"permission": [script(c("reviewRequired", "eq", True))]})
    assert evaluate(policy, "script", {"reviewRequired": True}).permitted
    assert not evaluate(policy, "script", {"reviewRequired": 1}).permitted
    assert not evaluate(policy, "script", {"reviewRequired": False}).permitted


def test_run_ordinal_and_release_are_checked_like_other_operands() -> None:
    policy = parse_policy(
        {"permission": [script(c("runsPerApproval", "lteq", 3), c("release", "isAnyOf", ["review", "auto"]))]}
    )
    assert evaluate(policy, "script", {"runsPerApproval": 3, "release": "auto"}).permitted
    denied = evaluate(policy, "script", {"runsPerApproval": 4, "release": "auto"})
    assert denied.summary == "script not permitted: runsPerApproval lteq 3: runsPerApproval is 4"


def test_output_bytes_is_checked_on_the_output() -> None:
    assert "outputBytes" in RESULT_OPERANDS
    policy = parse_policy({"permission": [script(c("outputBytes", "lteq", 100))]})
    decision = evaluate(policy, "script", {})
    assert decision.permitted
    assert [r.outcome for r in decision.reasons] == [Outcome.DEFERRED]
    assert check_result(decision.deferred, {"outputBytes": 100}) == []
    assert check_result(decision.deferred, {"outputBytes": 101}) == [
        "outputBytes lteq 100: outputBytes is 101"
    ]


@given(st.lists(st.integers(min_value=1, max_value=10**9), min_size=1, max_size=4))
def test_the_output_cap_is_the_bound_every_constraint_of_a_rule_admits(bounds: list[int]) -> None:
    policy = parse_policy({"permission": [script(*(c("outputBytes", "lteq", b) for b in bounds))]})
    cap = terms(policy).output_bytes
    assert cap == min(bounds)
    decision = evaluate(policy, "script", {})
    assert check_result(decision.deferred, {"outputBytes": cap}) == []
    assert check_result(decision.deferred, {"outputBytes": cap + 1}) != []
