import pytest

from policies.errors import RuleSetError
from policies.negative_list import check_entry, parse_rules
from space.setup import DEFAULT_NEGATIVE_LIST

RULES = parse_rules(DEFAULT_NEGATIVE_LIST)
ENTRY = {
    "sector": "金融",
    "keywords": ["phone"],
    "semantic_tags": ["phone"],
    "classification": "general",
    "pi_level": "general",
    "jurisdiction": "CN-HA",
}


@pytest.mark.parametrize(
    ("change", "status", "rule"),
    [
        ({}, "allowed", None),
        ({"classification": "core"}, "prohibited", "NL-001"),
        ({"semantic_tags": ["id_card"], "pi_level": "sensitive"}, "prohibited", "NL-002"),
        ({"classification": "important"}, "restricted", "NL-101"),
        ({"sector": "医疗健康"}, "restricted", "NL-102"),
        ({"sector": "HEALTH"}, "restricted", "NL-102"),  # case-insensitive
        ({"pi_level": "sensitive"}, "restricted", "NL-103"),
        ({"semantic_tags": ["id_card"]}, "allowed", None),  # id cards alone are not prohibited
        ({"classification": "core", "sector": "医疗健康"}, "prohibited", "NL-001"),  # prohibit wins
    ],
)
def test_default_list(change: dict, status: str, rule: str | None) -> None:
    verdict = check_entry(RULES, {**ENTRY, **change})
    assert verdict.status == status
    assert (verdict.rule.id if verdict.rule else None) == rule


def test_verdict_names_rule_and_reason() -> None:
    verdict = check_entry(RULES, {**ENTRY, "classification": "core"})
    assert (
        verdict.describe() == "prohibited by rule NL-001: core data (核心数据, GB/T 43697) may not be traded"
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], r'expected \{"rules": \[...\]\}'),
        (
            {"rules": [{"id": "", "effect": "prohibit", "reason": "r", "match": {"sector": ["x"]}}]},
            "id must be",
        ),
        (
            {"rules": [{"id": "a", "effect": "ban", "reason": "r", "match": {"sector": ["x"]}}]},
            "effect must be",
        ),
        (
            {"rules": [{"id": "a", "effect": "prohibit", "reason": "r", "match": {"colour": ["x"]}}]},
            "cannot match on 'colour'",
        ),
        (
            {"rules": [{"id": "a", "effect": "prohibit", "reason": "r", "match": {"sector": "x"}}]},
            "must be a list of strings",
        ),
        (
            {"rules": [{"id": "a", "effect": "prohibit", "reason": "", "match": {"sector": ["x"]}}]},
            "reason must be",
        ),
        (
            {
                "rules": [
                    {"id": "a", "effect": "prohibit", "reason": "r", "match": {"sector": ["x"]}},
                    {"id": "a", "effect": "prohibit", "reason": "r", "match": {"sector": ["x"]}},
                ]
            },
            "unique",
        ),
    ],
)
def test_malformed_lists_are_refused(raw: object, message: str) -> None:
    with pytest.raises(RuleSetError, match=message):
        parse_rules(raw)
