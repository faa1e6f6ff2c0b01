"""A decision's reasons come from templates and parse back into their id and fields."""

import re

from hypothesis import given
from hypothesis import strategies as st

from policies.evaluate import evaluate, withheld_reason
from policies.model import parse_policy
from policies.reasons import TEMPLATES, parse, say

WORDS = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20)


def test_every_decision_reason_parses_back() -> None:
    policy = parse_policy({"permission": [{"action": "psi.cardinality", "constraint": [
        {"leftOperand": "count", "operator": "lteq", "rightOperand": 1},
        {"leftOperand": "purpose", "operator": "eq", "rightOperand": "risk-control"}]}]})  # fmt: skip
    denied = evaluate(policy, "psi.cardinality", {"count": 2})
    assert parse(denied.summary) == ("not-permitted", {
        "action": "psi.cardinality",
        "failed": "count lteq 1: count is 2; purpose eq risk-control: the request does not state purpose",
    })  # fmt: skip
    assert parse(evaluate(policy, "he.score", {}).summary) == (
        "no-permission",
        {"action": "he.score", "actions": "['psi.cardinality']"},
    )
    granted = evaluate(policy, "psi.cardinality", {"count": 1, "purpose": "risk-control"})
    assert parse(granted.summary) == ("permitted", {"action": "psi.cardinality", "label": "permission[0]"})
    k = parse_policy({"permission": [{"action": "psi.cardinality", "constraint": [
        {"leftOperand": "resultSize", "operator": "gteq", "rightOperand": 501}]}]})  # fmt: skip
    reason = withheld_reason(k.permissions[0].constraints, {"resultSize": 3})
    assert parse(reason or "") == ("withheld", {"unmet": "resultSize gteq 501"})


@given(st.sampled_from(sorted(TEMPLATES)), st.data())
def test_a_template_filled_with_any_words_parses_to_some_template(name: str, data: st.DataObject) -> None:
    fields = {f: data.draw(WORDS) for f in re.findall(r"\{(\w+)\}", TEMPLATES[name])}
    found = parse(say(name, **fields))
    assert found is not None and say(found[0], **found[1]) == say(name, **fields)  # it reads back


def test_each_template_filled_plainly_parses_to_itself() -> None:
    for name, text in TEMPLATES.items():
        fields = {f: f"v{i}" for i, f in enumerate(re.findall(r"\{(\w+)\}", text))}
        assert parse(say(name, **fields)) == (name, fields), name
