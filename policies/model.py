"""The TDS policy model: an ODRL 2.2 subset in JSON.

A policy has ``permission`` and ``prohibition`` rules. Each rule names one ``action`` (a TDS
operation) and a list of atomic ``constraint`` objects ``{leftOperand, operator, rightOperand}``
(ODRL 2.2 Information Model §2.5). Everything is validated when parsed, so evaluation never
meets a malformed policy: an unknown operand, an operator that does not fit the operand's type
or a right operand of the wrong type is refused with the path that is wrong.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from policies import operations
from policies.errors import PolicySyntaxError


class OperandType(Enum):
    STRING = "string"
    INTEGER = "integer"
    DECIMAL = "decimal"
    DATETIME = "dateTime"
    BOOLEAN = "boolean"


# The left operands TDS understands, with the type of value each compares.
LEFT_OPERANDS: dict[str, OperandType] = {
    "purpose": OperandType.STRING,  # the consumer's declared purpose of use
    "dateTime": OperandType.DATETIME,  # the time of the use (UTC)
    "count": OperandType.INTEGER,  # ordinal of this use under the agreement: 1 for the first
    "recipient": OperandType.STRING,  # participant id of the party that receives the result
    "jurisdiction": OperandType.STRING,  # the consumer's jurisdiction, e.g. CN-HA
    "consumerSetSize": OperandType.INTEGER,  # distinct items the consumer brings to a job
    "resultSize": OperandType.INTEGER,  # size of the result: the minimum result size k
    "column": OperandType.STRING,  # the data columns a job reads (use isPartOf for "only these")
    "statistic": OperandType.STRING,  # the statistics an he.aggregate job asks for
    "aggregationSize": OperandType.INTEGER,  # rows a provider aggregates: the minimum k per provider
    "epsilon": OperandType.DECIMAL,  # differential-privacy ε of this job
    "epsilonTotal": OperandType.DECIMAL,  # ε spent under the agreement, this job included
    "idsPerDay": OperandType.INTEGER,  # ids scored under the agreement today (UTC), this job included
    # distinct providers other than the consumer in an he.aggregate job, as the space counts them:
    # one agreement alone would hand the consumer that provider's exact sums
    "providers": OperandType.INTEGER,
    # he.score: the most times any requested id has been scored under the agreement, this job
    # included (averaging repeated scores strips the provider's noise)
    "idRepeats": OperandType.INTEGER,
    # script: bytes of the output a run would release (a result-time operand)
    "outputBytes": OperandType.INTEGER,
    # script: the runs an approval grants when it is given, and this run's ordinal under its
    # approval (1 for the first run of approved code) when a run starts
    "runsPerApproval": OperandType.INTEGER,
    # script: how a run's output is released: "review" (a reviewer releases it) or "auto" (an
    # approved rerun's output is released once the automatic checks pass)
    "release": OperandType.STRING,
    # script: whether the code is reviewed before it runs on the data (false: it runs at once)
    "reviewRequired": OperandType.BOOLEAN,
}

# Left operands whose right operand is one of a few words.
ENUMERATED: dict[str, tuple[str, ...]] = {"release": ("review", "auto")}

# Left operands only known once a result exists; evaluated by the consumer's connector before
# it shows a result, and reported as "deferred" when a request is evaluated.
RESULT_OPERANDS: frozenset[str] = frozenset({"resultSize", "aggregationSize", "outputBytes"})

ORDER_OPERATORS = ("eq", "neq", "lt", "lteq", "gt", "gteq")
SET_OPERATORS = ("isAnyOf", "isNoneOf", "isPartOf")
OPERATORS_BY_TYPE: dict[OperandType, tuple[str, ...]] = {
    OperandType.INTEGER: ORDER_OPERATORS,
    OperandType.DECIMAL: ORDER_OPERATORS,
    OperandType.DATETIME: ORDER_OPERATORS,
    OperandType.STRING: ("eq", "neq", *SET_OPERATORS),
    OperandType.BOOLEAN: ("eq", "neq"),
}

Value = str | int | float | bool | dt.datetime | tuple[str, ...]


@dataclass(frozen=True)
class Constraint:
    left: str
    operator: str
    right: Value

    def describe(self) -> str:
        right = self.right
        if isinstance(right, dt.datetime):
            shown = right.isoformat()
        elif isinstance(right, tuple):
            shown = "[" + ", ".join(right) + "]"
        elif isinstance(right, bool):
            shown = "true" if right else "false"
        else:
            shown = str(right)
        return f"{self.left} {self.operator} {shown}"

    def to_json(self) -> dict[str, Any]:
        right: Any = self.right
        if isinstance(right, dt.datetime):
            right = format_datetime(right)
        elif isinstance(right, tuple):
            right = list(right)
        elif isinstance(right, bool):
            right = {"@value": right, "@type": XSD_BOOLEAN}
        elif isinstance(right, float):
            right = {"@value": repr(right), "@type": XSD_DECIMAL}
        elif isinstance(right, int):
            right = {"@value": right, "@type": XSD_INTEGER}
        return {"leftOperand": self.left, "operator": self.operator, "rightOperand": right}


@dataclass(frozen=True)
class Rule:
    action: str
    constraints: tuple[Constraint, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action}
        if self.constraints:
            out["constraint"] = [c.to_json() for c in self.constraints]
        return out


@dataclass(frozen=True)
class Policy:
    permissions: tuple[Rule, ...] = ()
    prohibitions: tuple[Rule, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"permission": [r.to_json() for r in self.permissions]}
        if self.prohibitions:
            out["prohibition"] = [r.to_json() for r in self.prohibitions]
        return out

    def actions(self) -> tuple[str, ...]:
        """The operations some permission names, in policy order, without repeats."""
        return tuple(dict.fromkeys(rule.action for rule in self.permissions))

    def least(self, action: str, left: str) -> int | None:
        """The smallest whole value of ``left`` that every gt / gteq constraint on it in the
        permissions for ``action`` admits (None: no such constraint)."""
        bounds = [
            c.right + (1 if c.operator == "gt" else 0)
            for c in self.constraint_values(action, left)
            if c.operator in ("gt", "gteq") and isinstance(c.right, int) and not isinstance(c.right, bool)
        ]
        return max(bounds) if bounds else None

    def constraint_values(self, action: str, left: str) -> list[Constraint]:
        """The constraints on ``left`` in every permission for ``action``."""
        return [
            c
            for rule in self.permissions
            if rule.action == action
            for c in rule.constraints
            if c.left == left
        ]


def format_datetime(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def parse_datetime(text: str, path: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise PolicySyntaxError(
            path, f"expected an ISO 8601 date-time such as 2027-06-30T00:00:00Z, got {text!r}"
        ) from exc
    if value.tzinfo is None:
        raise PolicySyntaxError(path, f"date-time {text!r} has no time zone; add Z or +08:00")
    return value.astimezone(dt.UTC)


XSD_INTEGER = "xsd:integer"
XSD_DECIMAL = "xsd:decimal"
XSD_BOOLEAN = "xsd:boolean"


def _parse_right(kind: OperandType, operator: str, raw: object, path: str) -> Value:
    # JSON-LD typed literal {"@value": 2, "@type": "xsd:integer"}: the Dataspace Protocol's
    # schema admits only strings, objects and arrays as right operands, so numbers travel so.
    if isinstance(raw, Mapping):
        if set(raw) - {"@value", "@type"} or "@value" not in raw:
            raise PolicySyntaxError(path, 'expected a value or a typed literal {"@value": …, "@type": …}')
        raw = raw["@value"]
        if kind is OperandType.INTEGER and isinstance(raw, str) and raw.lstrip("-").isdigit():
            raw = int(raw)
        if kind is OperandType.DECIMAL and isinstance(raw, str):
            try:
                raw = float(raw)
            except ValueError:
                raise PolicySyntaxError(path, f"expected a decimal number, got {raw!r}") from None
        if kind is OperandType.BOOLEAN and raw in ("true", "false"):
            raw = raw == "true"
    if operator in SET_OPERATORS:
        if isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, list) or not raw or not all(isinstance(item, str) and item for item in raw):
            raise PolicySyntaxError(path, f"{operator} needs a non-empty list of strings, got {raw!r}")
        return tuple(raw)
    if kind is OperandType.INTEGER:
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise PolicySyntaxError(path, f"expected an integer, got {raw!r}")
        return raw
    if kind is OperandType.DECIMAL:
        if (
            isinstance(raw, bool)
            or not isinstance(raw, int | float)
            or raw != raw
            or abs(raw) == float("inf")
        ):
            raise PolicySyntaxError(path, f"expected a decimal number, got {raw!r}")
        return float(raw)
    if kind is OperandType.BOOLEAN:
        if not isinstance(raw, bool):
            raise PolicySyntaxError(path, f"expected true or false, got {raw!r}")
        return raw
    if kind is OperandType.DATETIME:
        if not isinstance(raw, str):
            raise PolicySyntaxError(path, f"expected an ISO 8601 date-time string, got {raw!r}")
        return parse_datetime(raw, path)
    if not isinstance(raw, str) or not raw:
        raise PolicySyntaxError(path, f"expected a non-empty string, got {raw!r}")
    return raw


def _check_words(left: str, right: Value, path: str) -> None:
    words = ENUMERATED.get(left)
    if words is None:
        return
    given = right if isinstance(right, tuple) else (right,)
    wrong = [w for w in given if w not in words]
    if wrong:
        raise PolicySyntaxError(path, f"{left} is one of {list(words)}, got {wrong[0]!r}")


def parse_constraint(raw: object, path: str) -> Constraint:
    if not isinstance(raw, Mapping):
        raise PolicySyntaxError(path, f"expected an object, got {type(raw).__name__}")
    unknown = set(raw) - {"leftOperand", "operator", "rightOperand", "@type"}
    if unknown:
        raise PolicySyntaxError(
            path,
            f"unknown keys {sorted(unknown)}; a constraint has leftOperand, operator, rightOperand",
        )
    left = raw.get("leftOperand")
    if left not in LEFT_OPERANDS:
        raise PolicySyntaxError(
            f"{path}.leftOperand",
            f"unknown left operand {left!r}; expected one of {sorted(LEFT_OPERANDS)}",
        )
    kind = LEFT_OPERANDS[left]
    operator = raw.get("operator")
    allowed = OPERATORS_BY_TYPE[kind]
    if operator not in allowed:
        raise PolicySyntaxError(
            f"{path}.operator",
            f"operator {operator!r} does not apply to {left} ({kind.value}); expected one of {list(allowed)}",
        )
    if "rightOperand" not in raw:
        raise PolicySyntaxError(path, "missing rightOperand")
    right = _parse_right(kind, operator, raw["rightOperand"], f"{path}.rightOperand")
    _check_words(left, right, f"{path}.rightOperand")
    return Constraint(left=left, operator=operator, right=right)


def _parse_rules(raw: object, path: str) -> tuple[Rule, ...]:
    if raw is None:
        return ()
    if isinstance(raw, Mapping):
        raw = [raw]
    if not isinstance(raw, list):
        raise PolicySyntaxError(path, f"expected a list of rules, got {type(raw).__name__}")
    rules = []
    for i, item in enumerate(raw):
        where = f"{path}[{i}]"
        if not isinstance(item, Mapping):
            raise PolicySyntaxError(where, f"expected an object, got {type(item).__name__}")
        unknown = set(item) - {"action", "constraint", "@type", "target", "assigner", "assignee"}
        if unknown:
            raise PolicySyntaxError(
                where, f"unknown keys {sorted(unknown)}; a rule has action and constraint"
            )
        action = item.get("action")
        if action not in operations.names():
            raise PolicySyntaxError(
                f"{where}.action", f"unknown action {action!r}; expected one of {list(operations.names())}"
            )
        constraints = item.get("constraint", [])
        if not isinstance(constraints, list):
            raise PolicySyntaxError(f"{where}.constraint", "expected a list of constraints")
        rules.append(
            Rule(
                action=action,
                constraints=tuple(
                    parse_constraint(c, f"{where}.constraint[{j}]") for j, c in enumerate(constraints)
                ),
            )
        )
    return tuple(rules)


def parse_policy(raw: object) -> Policy:
    """Parse and validate a policy document; raise :class:`PolicySyntaxError` if malformed."""
    if not isinstance(raw, Mapping):
        raise PolicySyntaxError("$", f"expected a JSON object, got {type(raw).__name__}")
    for unsupported in ("obligation", "duty"):
        if unsupported in raw:
            raise PolicySyntaxError(
                f"$.{unsupported}",
                "duties are not supported yet; express limits as permission constraints",
            )
    permissions = _parse_rules(raw.get("permission"), "$.permission")
    prohibitions = _parse_rules(raw.get("prohibition"), "$.prohibition")
    if not permissions:
        raise PolicySyntaxError(
            "$.permission", "a policy needs at least one permission (nothing is allowed otherwise)"
        )
    return Policy(permissions=permissions, prohibitions=prohibitions)
