"""Request bodies parsed at the edge (node.bodies): every wrong field named, with what was
expected and what came, and a JSON pointer to it; nothing coerced."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import Field

from node.bodies import Body, Message, parse, problems_of
from node.problems import Problem


class Offer(Body):
    name: str
    amount_fen: int
    tags: list[str] = Field(default_factory=list)
    price: dict[str, int] | None = None


class Ping(Message):
    kind: str = Field(alias="@type")


def refusal(data: object) -> Problem:
    with pytest.raises(Problem) as refused:
        parse(Offer, data, "offer")
    return refused.value


def test_a_good_body_becomes_a_typed_frozen_object() -> None:
    offer = parse(Offer, {"name": "x", "amount_fen": 5, "tags": ["a"]})
    assert (offer.name, offer.amount_fen, offer.tags, offer.price) == ("x", 5, ["a"], None)
    with pytest.raises(ValueError, match="frozen"):
        offer.name = "y"  # type: ignore[misc]


def test_every_wrong_field_is_named_with_what_was_expected_and_what_came() -> None:
    problem = refusal({"amount_fen": 39.5, "tags": ["a", 3], "nmae": "x", "price": {"a/b~": "1"}})
    assert (problem.status, problem.kind) == (400, "body")
    assert problem.detail == (
        "offer: name: required; amount_fen: expected a valid integer, got 39.5; "
        "tags[1]: expected a valid string, got 3; price.a/b~: expected a valid integer, got '1'; "
        "nmae: unknown field; expected any of name, amount_fen, tags, price"
    )
    assert [e["pointer"] for e in problem.extra["errors"]] == [
        "/name",
        "/amount_fen",
        "/tags/1",
        "/price/a~1b~0",
        "/nmae",
    ]


def test_nothing_is_coerced() -> None:
    assert problems_of(Offer, {"name": "x", "amount_fen": True}) == [
        "amount_fen: expected a valid integer, got True"
    ]
    assert problems_of(Offer, {"name": "x", "amount_fen": "5"}) == [
        "amount_fen: expected a valid integer, got '5'"
    ]
    assert problems_of(Offer, {"name": 5, "amount_fen": 5}) == ["name: expected a valid string, got 5"]


def test_a_long_value_is_shown_cut_short() -> None:
    (said,) = problems_of(Offer, {"name": "x" * 500, "amount_fen": "y" * 500})
    assert said.startswith("amount_fen: expected a valid integer, got 'yyy") and said.endswith("…")
    assert len(said) < 140


def test_a_protocol_message_lets_further_terms_through() -> None:
    ping = parse(Ping, {"@type": "Ping", "@context": ["https://w3id.org/dspace/2025/1/context.jsonld"]})
    assert ping.kind == "Ping"
    assert problems_of(Ping, {}) == ["@type: required"]


@given(st.dictionaries(st.text(max_size=5), st.none() | st.booleans() | st.integers() | st.text(max_size=5)))
def test_any_body_is_taken_or_refused_with_a_reason(data: dict[str, object]) -> None:
    said = problems_of(Offer, data)
    if not said:
        assert parse(Offer, data).amount_fen == data["amount_fen"]
    else:
        assert all(": " in line for line in said)
