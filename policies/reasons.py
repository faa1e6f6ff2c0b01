"""The words of the reasons a use is granted or refused, one template each: a policy's
decision (policies.evaluate), the guard's checks of the agreement before it (connectors.guard)
and a connector's fixed words for an ending (completed, interrupted, withheld).

Their writers fill these templates; the reasons reach usage records, whose parties sign the
English text. A reader in another language gets them back through
:func:`parse` — the template's id and its fields — and shows its own words for that id with the
same fields (the space's console does, space/console/formatting.py), so a reason has a message
id without the signed record changing shape.
"""

from __future__ import annotations

import re

# In the order parse tries them: fixed words, then a decision's reasons (which hold constraints'
# reasons), the guard's, and a single constraint's last
TEMPLATES: dict[str, str] = {
    "completed": "completed",
    "interrupted-provider": "the provider's connector stopped during the job; the use is given back",
    "withheld-by-consumer": (
        "result withheld by the consumer's connector: the agreement's minimum result size is not met"
    ),
    "withheld": "result withheld: {unmet} not met (the result is not told)",
    "not-permitted": "{action} not permitted: {failed}",
    "no-permission": "no permission for {action}; the policy permits {actions}",
    "prohibited": "{action} prohibited by {label}: {matched}",
    "permitted": "{action} permitted by {label}",
    "unknown-agreement": "unknown agreement {agreement}",
    "not-consumer": "{caller} is not the consumer of agreement {agreement}",
    "terminated": "agreement {agreement} was terminated: {reason}",
    "unsigned": "agreement {agreement} is FINALIZED but this connector holds no signed agreement for it",
    "not-finalized": "agreement {agreement} is {state}, not FINALIZED",
    "not-recorded": "agreement {agreement} is not recorded at the space",
    "unconfirmed": (
        "the space cannot confirm that agreement {agreement} is in force ({detail}); "
        "jobs under it are refused until the space answers"
    ),
    "operation-outside": "operation {operation} is not in the agreement (it permits {operations})",
    "dataset-gone": "dataset {dataset} is no longer held here",
    "unstated": "{constraint}: the request does not state {left}",
    "on-result": "{constraint}: checked on the result",
    "violated": "{constraint}: {left} is {value}",
}
SEPARATOR = "; "  # between the failed constraints of one decision


def say(template: str, **fields: object) -> str:
    return TEMPLATES[template].format(**fields)


def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", template)
    regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>.+?)" for i, p in enumerate(parts))
    return re.compile(f"\\A{regex}\\Z", re.DOTALL)


PATTERNS = {name: _pattern(text) for name, text in TEMPLATES.items()}


def parse(text: str) -> tuple[str, dict[str, str]] | None:
    """(template id, fields) of a reason written from :data:`TEMPLATES` (the first template, in
    their order, that matches it whole), or None."""
    for name, pattern in PATTERNS.items():
        found = pattern.match(text)
        if found:
            return name, found.groupdict()
    return None
