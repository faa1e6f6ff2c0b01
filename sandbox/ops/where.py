"""``--where``: a small, safe filter language over a provider's columns (parsed, never eval'd).

    expr   := and ("or" and)*
    and    := unary ("and" unary)*
    unary  := "not" unary | "(" expr ")" | NAME OP VALUE | NAME ["not"] "in" "(" VALUE, ... ")"
    OP     := = == != < <= > >=        VALUE := number | 'text' | "text"

Names are column names (letters, digits, ``_``, ``.``, ``-`` and any non-ASCII letter, or
`back-quoted`). A number literal compares numerically (a cell that is not a number never
matches); a text literal compares the cell's text. The parser is a hand-written recursive
descent because the grammar is a dozen lines and every error must say where it is; sizes and
depth are capped so that a hostile expression cannot exhaust the sandbox.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Union

import numpy as np

MAX_LENGTH = 2000
MAX_DEPTH = 32
MAX_LIST = 200
OPERATORS = ("==", "=", "!=", "<=", ">=", "<", ">")

TOKEN = re.compile(
    r"""\s*(?:
      (?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
    | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<op>==|!=|<=|>=|=|<|>)
    | (?P<punct>[(),])
    | (?P<quoted>`[^`]+`)
    | (?P<word>[^\W\d][\w.\-]*)
    )""",
    re.VERBOSE,
)
KEYWORDS = ("and", "or", "not", "in")


class WhereError(ValueError):
    """The expression is not valid; the message says where and what is expected."""


@dataclass(frozen=True)
class Compare:
    column: str
    op: str
    value: float | str


@dataclass(frozen=True)
class In:
    column: str
    values: tuple[float | str, ...]
    negated: bool


@dataclass(frozen=True)
class Not:
    inner: Expr


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and" | "or"
    parts: tuple[Expr, ...]


Expr = Union[Compare, In, Not, BoolOp]  # noqa: UP007 - a runtime alias over forward references


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out, position = [], 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise WhereError(f"where: unexpected character {text[position:].strip()[:1]!r} at {position}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        start = match.start(kind)
        if kind == "word" and value.lower() in KEYWORDS:
            kind, value = "keyword", value.lower()
        out.append((kind, value, start))
        position = match.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        if len(text) > MAX_LENGTH:
            raise WhereError(f"where: at most {MAX_LENGTH} characters, got {len(text)}")
        self.tokens = _tokens(text)
        self.i = 0
        self.depth = 0

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.i] if self.i < len(self.tokens) else ("end", "", -1)

    def take(self, kind: str, value: str | None = None) -> str:
        token = self.peek()
        if token[0] != kind or (value is not None and token[1] != value):
            wanted = value or kind
            found = "the end" if token[0] == "end" else repr(token[1])
            raise WhereError(
                f"where: expected {wanted} at {token[2] if token[2] >= 0 else 'the end'}, got {found}"
            )
        self.i += 1
        return token[1]

    def expr(self) -> Expr:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise WhereError(f"where: nested more than {MAX_DEPTH} deep")
        parts = [self.conjunction()]
        while self.peek()[:2] == ("keyword", "or"):
            self.i += 1
            parts.append(self.conjunction())
        self.depth -= 1
        return parts[0] if len(parts) == 1 else BoolOp("or", tuple(parts))

    def conjunction(self) -> Expr:
        parts = [self.unary()]
        while self.peek()[:2] == ("keyword", "and"):
            self.i += 1
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else BoolOp("and", tuple(parts))

    def unary(self) -> Expr:
        kind, value, _ = self.peek()
        if (kind, value) == ("keyword", "not"):
            self.i += 1
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise WhereError(f"where: nested more than {MAX_DEPTH} deep")
            inner = self.unary()
            self.depth -= 1
            return Not(inner)
        if (kind, value) == ("punct", "("):
            self.i += 1
            inner = self.expr()
            self.take("punct", ")")
            return inner
        column = self.name()
        kind, value, _ = self.peek()
        if kind == "op":
            self.i += 1
            return Compare(column, "==" if value == "=" else value, self.literal())
        negated = False
        if (kind, value) == ("keyword", "not"):
            self.i += 1
            negated = True
        self.take("keyword", "in")
        self.take("punct", "(")
        values = [self.literal()]
        while self.peek()[:2] == ("punct", ","):
            self.i += 1
            values.append(self.literal())
            if len(values) > MAX_LIST:
                raise WhereError(f"where: an in-list has at most {MAX_LIST} values")
        self.take("punct", ")")
        return In(column, tuple(values), negated)

    def name(self) -> str:
        kind, value, position = self.peek()
        if kind == "word":
            self.i += 1
            return value
        if kind == "quoted":
            self.i += 1
            return value[1:-1]
        found = "the end" if kind == "end" else repr(value)
        raise WhereError(
            f"where: expected a column name at {position if position >= 0 else 'the end'}, got {found}"
        )

    def literal(self) -> float | str:
        kind, value, position = self.peek()
        if kind == "number":
            self.i += 1
            return float(value)
        if kind == "string":
            self.i += 1
            return re.sub(r"\\(.)", r"\1", value[1:-1])
        found = "the end" if kind == "end" else repr(value)
        raise WhereError(
            f"where: expected a number or 'text' at {position if position >= 0 else 'the end'}, got {found}"
        )


def parse(text: str) -> Expr:
    parser = _Parser(text)
    if not parser.tokens:
        raise WhereError("where: the expression is empty")
    expr = parser.expr()
    if parser.peek()[0] != "end":
        _kind, value, position = parser.peek()
        raise WhereError(f"where: unexpected {value!r} at {position}; join conditions with and / or")
    return expr


def columns(expr: Expr) -> set[str]:
    if isinstance(expr, Compare | In):
        return {expr.column}
    if isinstance(expr, Not):
        return columns(expr.inner)
    return set().union(*(columns(p) for p in expr.parts))


def _numeric(cells: np.ndarray) -> np.ndarray:
    if cells.dtype.kind == "f":
        return cells  # already numbers (read by NumPy's own reader)
    out = np.full(len(cells), np.nan)
    for i, cell in enumerate(cells):
        with contextlib.suppress(ValueError):
            out[i] = float(cell)
    return out


def mask(expr: Expr, table: Mapping[str, np.ndarray]) -> np.ndarray:
    """The rows ``expr`` selects, as a boolean array; ``table`` maps column → cells (text)."""
    numbers: dict[str, np.ndarray] = {}

    def numeric(column: str) -> np.ndarray:
        if column not in numbers:
            numbers[column] = _numeric(table[column])
        return numbers[column]

    def walk(node: Expr) -> np.ndarray:
        if isinstance(node, BoolOp):
            results = [walk(p) for p in node.parts]
            return np.logical_and.reduce(results) if node.op == "and" else np.logical_or.reduce(results)
        if isinstance(node, Not):
            return ~walk(node.inner)
        if node.column not in table:
            raise WhereError(f"where: unknown column {node.column!r}; the data has {sorted(table)}")
        if isinstance(node, In):
            hits = np.zeros(len(table[node.column]), dtype=bool)
            for value in node.values:
                cells = numeric(node.column) if isinstance(value, float) else table[node.column]
                hits |= cells == value
            return ~hits if node.negated else hits
        cells = numeric(node.column) if isinstance(node.value, float) else table[node.column]
        with np.errstate(invalid="ignore"):
            result = {
                "==": lambda: cells == node.value,
                "!=": lambda: cells != node.value,
                "<": lambda: cells < node.value,
                "<=": lambda: cells <= node.value,
                ">": lambda: cells > node.value,
                ">=": lambda: cells >= node.value,
            }[node.op]()
        if isinstance(node.value, float) and node.op == "!=":
            result &= ~np.isnan(cells)  # a cell that is not a number never matches
        return np.asarray(result, dtype=bool)

    return walk(expr)
