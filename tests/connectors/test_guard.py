"""The provider's guard as a pure function: connectors.guard.decide, without a database, a space
or a connector; and the one HTTP status of a failure after it."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.guard import Denied, Facts, SpaceWord, decide, failure_status
from connectors.models import Negotiation
from policies.export_list import parse_rules
from sandbox.errors import LimitExceeded, SandboxError, WorkerFailed

NOW = dt.datetime(2031, 5, 6, 7, 8, tzinfo=dt.UTC)  # any instant: the facts carry "now"


def agreement(*constraints: dict[str, Any]) -> dict[str, Any]:
    return {"document": {"permission": [{"action": "psi.cardinality", "constraint": list(constraints)}]}}


def neg(**changes: Any) -> Negotiation:
    fields: dict[str, Any] = {
        "id": "n1", "role": "provider", "consumer_pid": "c1", "peer_id": "bank", "peer_endpoint": "http://x",
        "offer_id": "o1", "dataset_id": "ds1", "purpose": "risk-control", "operations": ["psi.cardinality"],
        "state": "FINALIZED", "agreement_id": "a1", "reason": None, "uses": 0, "epsilon_spent": 0.0,
        "agreement": agreement({"leftOperand": "count", "operator": "lteq", "rightOperand": 2}),
    }  # fmt: skip
    return Negotiation(**{**fields, **changes})


def facts(**changes: Any) -> Facts:
    base = Facts("bank", "a1", "psi.cardinality", NOW, neg(), SpaceWord("in force"), "CN-HA", True, 100)
    return replace(base, **changes)


def denial(f: Facts) -> tuple[str, str | None]:
    with pytest.raises(Denied) as caught:
        decide(f)
    return str(caught.value), caught.value.dataset


def test_a_job_that_meets_every_check_may_run() -> None:
    assert decide(facts()) is None


@pytest.mark.parametrize(
    ("changes", "reason", "dataset"),
    [
        ({"negotiation": None}, "unknown agreement a1", None),
        ({"caller": "telco"}, "telco is not the consumer of agreement a1", None),
        ({"negotiation": neg(state="TERMINATED", reason="breach")},
         "agreement a1 was terminated: breach", "ds1"),
        ({"negotiation": neg(state="REQUESTED")}, "agreement a1 is REQUESTED, not FINALIZED", "ds1"),
        ({"negotiation": neg(agreement=None)},
         "agreement a1 is FINALIZED but this connector holds no signed agreement for it", "ds1"),
        ({"space": SpaceWord("not recorded")}, "agreement a1 is not recorded at the space", "ds1"),
        (
            {"space": SpaceWord("unanswered", "HTTP 503")},
            "the space cannot confirm that agreement a1 is in force (HTTP 503); "
            "jobs under it are refused until the space answers",
            "ds1",
        ),
        ({"space": None}, "the space cannot confirm that agreement a1 is in force (not asked); "
                          "jobs under it are refused until the space answers", "ds1"),
        ({"space": SpaceWord("terminated", "terminated by the operator: fraud")},
         "terminated by the operator: fraud", "ds1"),
        (
            {"operation": "psi.intersection"},
            "operation psi.intersection is not in the agreement (it permits ['psi.cardinality'])",
            "ds1",
        ),
        ({"negotiation": neg(uses=2)}, "psi.cardinality not permitted: count lteq 2: count is 3", "ds1"),
        ({"dataset_held": False}, "dataset ds1 is no longer held here", "ds1"),
    ],
)  # fmt: skip
def test_each_denial_says_why(changes: dict[str, Any], reason: str, dataset: str | None) -> None:
    assert denial(facts(**changes)) == (reason, dataset)


def test_the_job_context_reaches_the_policy() -> None:
    """What the family adds (columns, ε …) and what the request declares are evaluated too."""
    bounded = neg(
        agreement=agreement({"leftOperand": "consumerSetSize", "operator": "lteq", "rightOperand": 50})
    )
    assert denial(facts(negotiation=bounded)) == (
        "psi.cardinality not permitted: consumerSetSize lteq 50: consumerSetSize is 100",
        "ds1",
    )
    columns = neg(
        agreement=agreement({"leftOperand": "column", "operator": "isPartOf", "rightOperand": ["age"]})
    )
    assert decide(facts(negotiation=columns, extra={"column": ["age"]})) is None
    assert denial(facts(negotiation=columns, extra={"column": ["income"]}))[0].startswith(
        "psi.cardinality not permitted: column isPartOf"
    )


@given(uses=st.integers(0, 10), limit=st.integers(0, 10), state=st.sampled_from(["FINALIZED", "TERMINATED"]))
def test_a_use_beyond_the_agreed_count_never_runs(uses: int, limit: int, state: str) -> None:
    count = {"leftOperand": "count", "operator": "lteq", "rightOperand": limit}
    bounded = neg(uses=uses, state=state, agreement=agreement(count))
    allowed = state == "FINALIZED" and uses + 1 <= limit
    if allowed:
        assert decide(facts(negotiation=bounded)) is None
    else:
        with pytest.raises(Denied):
            decide(facts(negotiation=bounded))


def test_a_failure_has_one_status_for_every_operation() -> None:
    assert failure_status(LimitExceeded("memory", "over 512 MiB")) == 507
    assert failure_status(WorkerFailed("request", "column 'age' is not numeric")) == 422
    assert failure_status(WorkerFailed("data", "bad dataset")) == 500
    assert failure_status(SandboxError("the sandbox did not start")) == 500
    assert failure_status(RuntimeError("space unreachable")) == 500


def test_the_export_list_holds_whatever_the_agreement_permits() -> None:
    rules = parse_rules(
        {"rules": [{"id": "EX-7", "reason": "subscriber data stays in CN", "match": {"sector": ["telecom"]},
                    "jurisdictions": ["CN"], "scenarios": [{"id": "EX-7-S", "jurisdictions": ["HK"],
                    "purposes": ["cross-border-payment"], "condition": "a security assessment"}]}]}
    )  # fmt: skip
    listed = {"classification": "general", "pi_level": "general", "sector": "telecom"}
    assert decide(facts(exports=rules, dataset_fields=listed)) is None  # CN-HA is inside CN
    assert denial(facts(exports=rules, dataset_fields=listed, jurisdiction="HK")) == (
        "refused by export-list rule EX-7: subscriber data stays in CN; the consumer's jurisdiction HK "
        "is outside CN",
        "ds1",
    )
    scenario = facts(
        exports=rules,
        dataset_fields=listed,
        jurisdiction="HK",
        negotiation=neg(purpose="cross-border-payment"),
    )
    assert decide(scenario) is None
    assert (
        decide(facts(exports=rules, dataset_fields={**listed, "sector": "health"}, jurisdiction="US")) is None
    )
