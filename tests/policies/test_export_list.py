"""The export list (policies.export_list): parsing refuses malformed rules with what is
accepted; a rule refuses a consumer outside its jurisdictions unless a scenario admits it."""

from __future__ import annotations

import re

import pytest

from policies.errors import RuleSetError
from policies.export_list import check, inside, parse_rules

RULES = parse_rules(
    {
        "rules": [
            {
                "id": "EX-001",
                "reason": "important data stays in mainland China",
                "match": {"classification": ["Important"]},
                "jurisdictions": ["cn"],
                "scenarios": [
                    {"id": "EX-001-S1", "jurisdictions": ["HK"], "purposes": ["cross-border-payment"],
                     "condition": "a passed security assessment"}
                ],
            },
            {"id": "EX-002", "reason": "health data stays in Henan", "match": {"sector": ["health"]},
             "jurisdictions": ["CN-HA"]},
        ]
    }
)  # fmt: skip


def test_inside_a_jurisdiction_is_the_code_or_a_subdivision() -> None:
    assert inside("CN-HA", ("CN",)) and inside("cn", ("CN",)) and inside("CN-HA", ("CN-HA",))
    assert not inside("CNX", ("CN",)) and not inside("HK", ("CN",)) and not inside("CN", ("CN-HA",))


def test_a_rule_refuses_outside_its_jurisdictions_unless_a_scenario_admits() -> None:
    important = {"classification": "important", "pi_level": "general", "sector": "finance"}
    assert check(RULES, important, "CN-HA", "risk-control").allowed
    refused = check(RULES, important, "US", "risk-control")
    assert not refused.allowed
    assert refused.describe() == (
        "refused by export-list rule EX-001: important data stays in mainland China; "
        "the consumer's jurisdiction US is outside CN"
    )
    assert not check(RULES, important, "HK", "risk-control").allowed  # a scenario's purpose only
    admitted = check(RULES, important, "HK", "cross-border-payment")
    assert admitted.allowed and admitted.describe() == (
        "allowed by export-list scenario EX-001-S1: a passed security assessment"
    )
    assert check(RULES, {"classification": "general", "sector": "finance"}, "US", None).describe() == (
        "no export-list rule applies"
    )
    health = {"classification": "general", "sector": "health"}
    assert check(RULES, health, "CN-HA", None).allowed and not check(RULES, health, "CN-BJ", None).allowed


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], 'export list: expected {"rules": [...]} at the top level'),
        ({"rules": [{"id": "", "reason": "r", "match": {"sector": ["x"]}, "jurisdictions": ["CN"]}]},
         "export list rules[0]: id must be a unique non-empty string, got ''"),
        ({"rules": [{"id": "A", "reason": "r", "match": {"keywords": ["x"]}, "jurisdictions": ["CN"]}]},
         "export list rules[0]: cannot match on 'keywords'; expected one of ('classification', 'pi_level', "
         "'sector')"),
        ({"rules": [{"id": "A", "reason": "r", "match": {"sector": ["x"]}, "jurisdictions": []}]},
         "export list rules[0]: jurisdictions must be a non-empty list of ISO 3166 codes such as CN or "
         "CN-HA"),
        ({"rules": [{"id": "A", "reason": "r", "match": {"sector": ["x"]}, "jurisdictions": ["CN"],
                     "scenarios": [{"id": "S", "jurisdictions": ["HK"], "purposes": ["p"]}]}]},
         "export list rules[0].scenarios[0]: condition must say under what condition the scenario "
         "allows export"),
    ],
)  # fmt: skip
def test_malformed_rules_are_refused_saying_what_is_accepted(raw: object, message: str) -> None:
    with pytest.raises(RuleSetError, match=re.escape(message)):
        parse_rules(raw)
