"""Request bodies, parsed once at the edge into typed objects.

A body model is a pydantic v2 model with strict types (no ``"5"`` for 5, no ``true`` for 1, no
float for a whole number), unknown fields refused (a misspelt option is an error, not a silent
default) and frozen instances. :func:`parse` turns a validation failure into one RFC 9457 problem
whose detail names every wrong field, what was expected and what came, and whose ``errors``
member lists them with a JSON pointer each (RFC 9457 §3's example of an extension member).

Signed documents (agreements, usage records, catalog entries) are not body models: their bytes
are what the signatures cover, so their own validators in ``contracts`` read them as they came.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from node.problems import Problem

MAX_SHOWN = 80  # characters of a wrong value shown back in a refusal


class Body(BaseModel):
    """A request body: strict, closed, frozen."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)


class Message(Body):
    """A Dataspace Protocol message: JSON-LD, so terms this node does not read are let through
    (DSP 2025-1 §2: a message may carry further terms of its context)."""

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True, populate_by_name=True)


B = TypeVar("B", bound=BaseModel)


def parse(model: type[B], data: Any, what: str = "request body") -> B:
    """``data`` as a ``model``, or a 400 problem saying which fields are wrong and how."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [{"pointer": _pointer(e["loc"]), "detail": _say(e, model)} for e in exc.errors()]
        raise Problem(
            400,
            "Bad request",
            f"{what}: " + "; ".join(e["detail"] for e in errors),
            kind="body",
            errors=errors,
        ) from exc


def problems_of(model: type[BaseModel], data: Any) -> list[str]:
    """What is wrong with ``data`` as a ``model`` (empty if nothing): for refusals that are not
    HTTP answers, such as a framed job header."""
    try:
        model.model_validate(data)
    except ValidationError as exc:
        return [_say(e, model) for e in exc.errors()]
    return []


def _field(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def _pointer(loc: tuple[int | str, ...]) -> str:
    """RFC 6901 JSON pointer to the field (``~`` and ``/`` escaped)."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in loc) or "/"


def _say(error: Any, model: type[BaseModel]) -> str:
    """One error as "field: expected …, got …" (pydantic's message, reworded for a person)."""
    field = _field(tuple(error["loc"]))
    kind = error["type"]
    if kind == "missing":
        return f"{field}: required"
    if kind == "extra_forbidden":
        known = fields(model) if len(error["loc"]) == 1 else []
        return f"{field}: unknown field" + (f"; expected any of {', '.join(known)}" if known else "")
    message = str(error["msg"])
    for prefix in ("Input should be ", "Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = ("expected " if prefix == "Input should be " else "") + message[len(prefix) :]
    shown = repr(error.get("input"))
    if len(shown) > MAX_SHOWN:
        shown = shown[: MAX_SHOWN - 1] + "…"
    return f"{field}: {message[0].lower() + message[1:]}, got {shown}"


def fields(model: type[BaseModel]) -> list[str]:
    """The names a body of ``model`` may carry, for help texts and refusals."""
    return [info.alias or name for name, info in model.model_fields.items()]
