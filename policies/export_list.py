"""The space's export (negative) list (数据出境负面清单): data that may not be agreed to a consumer
outside given jurisdictions, whatever an offer says, and the export scenarios allowed with
conditions (the Henan plan, item 28).

The operator keeps it as a JSON file beside the negative list. A rule matches a dataset by its
catalog fields (``classification``, ``pi_level``, ``sector``: a value in the rule's list, case
folded); a consumer is inside a jurisdiction when its ISO 3166 code is that code or one of its
subdivisions (``CN-HA`` is inside ``CN``). A matching rule refuses a consumer outside its
``jurisdictions`` unless one of its ``scenarios`` admits it: the consumer inside one of the
scenario's jurisdictions and the agreement's purpose among its purposes, under the condition
the scenario states (recorded with the decision).

File shape::

    {"rules": [{"id": "EX-001", "reason": "…", "match": {"classification": ["core"]},
                "jurisdictions": ["CN"],
                "scenarios": [{"id": "EX-001-S1", "jurisdictions": ["HK", "MO"],
                               "purposes": ["cross-border-payment"], "condition": "…"}]}]}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from policies.errors import RuleSetError
from policies.negative_list import rule_fields

MATCH_FIELDS = ("classification", "pi_level", "sector")


@dataclass(frozen=True)
class Scenario:
    id: str
    jurisdictions: tuple[str, ...]
    purposes: tuple[str, ...]
    condition: str


@dataclass(frozen=True)
class ExportRule:
    id: str
    reason: str
    match: Mapping[str, tuple[str, ...]]
    jurisdictions: tuple[str, ...]
    scenarios: tuple[Scenario, ...] = ()


@dataclass(frozen=True)
class ExportVerdict:
    allowed: bool
    rule: ExportRule | None = None
    scenario: Scenario | None = None
    jurisdiction: str = ""

    def describe(self) -> str:
        if self.rule is None:
            return "no export-list rule applies"
        if self.allowed and self.scenario is not None:
            return f"allowed by export-list scenario {self.scenario.id}: {self.scenario.condition}"
        if self.allowed:
            return f"export-list rule {self.rule.id} applies; {self.jurisdiction} is inside it"
        return (
            f"refused by export-list rule {self.rule.id}: {self.rule.reason}; the consumer's jurisdiction "
            f"{self.jurisdiction} is outside {', '.join(self.rule.jurisdictions)}"
        )


def _codes(where: str, name: str, values: object) -> tuple[str, ...]:
    if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
        raise RuleSetError(f"{where}: {name} must be a non-empty list of ISO 3166 codes such as CN or CN-HA")
    return tuple(v.upper() for v in values)


def _scenario(where: str, raw: object) -> Scenario:
    if not isinstance(raw, Mapping):
        raise RuleSetError(f"{where}: expected an object")
    sid, purposes, condition = raw.get("id"), raw.get("purposes"), raw.get("condition")
    if not isinstance(sid, str) or not sid:
        raise RuleSetError(f"{where}: id must be a non-empty string, got {sid!r}")
    if not isinstance(purposes, list) or not purposes or not all(isinstance(p, str) and p for p in purposes):
        raise RuleSetError(f"{where}: purposes must be a non-empty list of purposes")
    if not isinstance(condition, str) or not condition:
        raise RuleSetError(f"{where}: condition must say under what condition the scenario allows export")
    return Scenario(sid, _codes(where, "jurisdictions", raw.get("jurisdictions")), tuple(purposes), condition)


def parse_rules(raw: object) -> tuple[ExportRule, ...]:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("rules"), list):
        raise RuleSetError('export list: expected {"rules": [...]} at the top level')
    rules, seen = [], set[str]()
    for i, item in enumerate(raw["rules"]):
        where = f"export list rules[{i}]"
        rule_id, reason, parsed = rule_fields(where, item, seen, MATCH_FIELDS)
        scenarios = item.get("scenarios", [])
        if not isinstance(scenarios, list):
            raise RuleSetError(f"{where}: scenarios must be a list")
        rules.append(
            ExportRule(
                rule_id,
                reason,
                parsed,
                _codes(where, "jurisdictions", item.get("jurisdictions")),
                tuple(_scenario(f"{where}.scenarios[{j}]", s) for j, s in enumerate(scenarios)),
            )
        )
    return tuple(rules)


def inside(jurisdiction: str, codes: tuple[str, ...]) -> bool:
    """Whether ``jurisdiction`` is one of ``codes`` or a subdivision of one (CN-HA inside CN)."""
    code = jurisdiction.upper()
    return any(code == c or code.startswith(c + "-") for c in codes)


def check(
    rules: tuple[ExportRule, ...], dataset: Mapping[str, Any], jurisdiction: str, purpose: str | None
) -> ExportVerdict:
    """The first matching rule that refuses the consumer, else the last one that applied."""
    applied = ExportVerdict(True, jurisdiction=jurisdiction)
    for rule in rules:
        if not all(str(dataset.get(key, "")).casefold() in values for key, values in rule.match.items()):
            continue
        if inside(jurisdiction, rule.jurisdictions):
            applied = ExportVerdict(True, rule, None, jurisdiction)
            continue
        admitted = next(
            (s for s in rule.scenarios if inside(jurisdiction, s.jurisdictions) and purpose in s.purposes),
            None,
        )
        if admitted is None:
            return ExportVerdict(False, rule, None, jurisdiction)
        applied = ExportVerdict(True, rule, admitted, jurisdiction)
    return applied
