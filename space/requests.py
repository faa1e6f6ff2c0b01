"""The bodies the space takes, as typed objects (node.bodies: strict, closed, frozen): the
operator's acts, the settlement of a period, and the messages of an aggregation. What a field
means beyond its type (a period that is over, an agreement recorded here) is checked by the
service that uses it. Signed documents (registrations, catalog entries, agreements, usage
records) are read by their own validators, whose bytes the signatures cover."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from node.bodies import Body


class Decision(Body):
    decision: str  # bill | void (contracts.leaves.decision says which are accepted)
    reason: str


class Review(Body):
    note: str = ""


class Termination(Body):
    reason: str | None = None


class NewToken(Body):
    role: str
    participant: str | None = None
    label: str = ""


class Settle(Body):
    period: str  # YYYY-MM


class Batch(Body):
    records: list[dict[str, Any]]  # signed usage records, each checked by contracts.usage


class OpenAggregation(Body):
    job: str
    agreements: list[str] = Field(min_length=1)
    context: str  # base64 of the consumer's public TenSEAL context
    fingerprint: str
    size: int


class Contribution(Body):
    agreement: str
    fingerprint: str | None
    ciphertext: str | None = None  # base64; none with the reason there is none
    reason: str | None = None
    min_providers: int = 1
