"""The space's negative list: categories of data that may not be published, or only after review.

The operator keeps the list as a JSON file. Each rule matches catalog-entry fields and has an
effect: ``prohibit`` (the entry is refused, naming the rule) or ``restrict`` (the entry waits for
operator review). Prohibitions win over restrictions; among equals the first listed rule wins.

File shape::

    {"rules": [{"id": "NL-001", "effect": "prohibit", "reason": "…",
                "match": {"semantic_tags": ["id_card"], "classification": ["core"]}}]}

A rule matches when every field in ``match`` matches: a list field of the entry (keywords,
semantic tags) matches when it shares a value with the rule's list, a scalar field when its
value is in the rule's list. Matching is case-insensitive.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from policies.errors import RuleSetError

MATCH_FIELDS = ("sector", "keywords", "semantic_tags", "classification", "pi_level", "jurisdiction")
Effect = Literal["prohibit", "restrict"]


@dataclass(frozen=True)
class ListRule:
    id: str
    effect: Effect
    reason: str
    match: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class Verdict:
    status: Literal["allowed", "restricted", "prohibited"]
    rule: ListRule | None = None

    def describe(self) -> str:
        if self.rule is None:
            return "allowed"
        return f"{self.status} by rule {self.rule.id}: {self.rule.reason}"


def rule_fields(
    where: str, item: object, seen: set[str], fields: tuple[str, ...]
) -> tuple[str, str, dict[str, tuple[str, ...]]]:
    """The id (unique among ``seen``), reason and match of one rule of an operator's list — this
    one or the export list (policies.export_list) — matching only on ``fields``."""
    if not isinstance(item, Mapping):
        raise RuleSetError(f"{where}: expected an object")
    rule_id, reason, match = item.get("id"), item.get("reason"), item.get("match")
    if not isinstance(rule_id, str) or not rule_id or rule_id in seen:
        raise RuleSetError(f"{where}: id must be a unique non-empty string, got {rule_id!r}")
    seen.add(rule_id)
    if not isinstance(reason, str) or not reason:
        raise RuleSetError(f"{where}: reason must be a non-empty string")
    if not isinstance(match, Mapping) or not match:
        raise RuleSetError(f"{where}: match must be a non-empty object")
    parsed: dict[str, tuple[str, ...]] = {}
    for key, values in match.items():
        if key not in fields:
            raise RuleSetError(f"{where}: cannot match on {key!r}; expected one of {fields}")
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise RuleSetError(f"{where}: match.{key} must be a list of strings")
        parsed[key] = tuple(v.casefold() for v in values)
    return rule_id, reason, parsed


def parse_rules(raw: object) -> tuple[ListRule, ...]:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("rules"), list):
        raise RuleSetError('negative list: expected {"rules": [...]} at the top level')
    rules = []
    seen: set[str] = set()
    for i, item in enumerate(raw["rules"]):
        where = f"negative list rules[{i}]"
        rule_id, reason, match = rule_fields(where, item, seen, MATCH_FIELDS)
        effect = item.get("effect")
        if effect not in ("prohibit", "restrict"):
            raise RuleSetError(f"{where}: effect must be 'prohibit' or 'restrict', got {effect!r}")
        rules.append(ListRule(rule_id, effect, reason, match))
    return tuple(rules)


def _field_values(entry: Mapping[str, Any], key: str) -> set[str]:
    value = entry.get(key)
    if value is None:
        return set()
    if isinstance(value, list | tuple | set):
        return {str(v).casefold() for v in value}
    return {str(value).casefold()}


def _matches(rule: ListRule, entry: Mapping[str, Any]) -> bool:
    return all(_field_values(entry, key) & set(values) for key, values in rule.match.items())


def check_entry(rules: tuple[ListRule, ...], entry: Mapping[str, Any]) -> Verdict:
    """Classify a catalog entry (its ``semantic_tags`` gathered from the schema) against the list."""
    matched = [rule for rule in rules if _matches(rule, entry)]
    for effect, status in (("prohibit", "prohibited"), ("restrict", "restricted")):
        for rule in matched:
            if rule.effect == effect:
                return Verdict(status, rule)  # type: ignore[arg-type]
    return Verdict("allowed")
