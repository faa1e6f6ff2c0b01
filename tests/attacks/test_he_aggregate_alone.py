"""he.aggregate-of-one-provider: the consumer alone chooses an aggregation's agreements, so an
aggregation of one agreement (or of one real provider beside one that contributes nothing)
hands it that provider's exact sums. A provider's policy may ask for a number of distinct
providers other than the consumer (``providers``, counted by the space); the space adds the
provider's part only if at least that many actually contributed. And a policy that budgets
privacy loss (epsilonTotal) refuses jobs without differential privacy."""

from __future__ import annotations

import uuid
from typing import Any

from tds.local import negotiate, publish_dataset
from tests.integration.test_he_jobs import ALLOWED, STATS, K, c, offer, run


def agreement(world: dict[str, Any], provider: str, terms: dict[str, Any]) -> str:
    name = f"{provider}-{uuid.uuid4().hex[:8]}"
    csv = world["root"] / f"{provider}.csv"
    entry = publish_dataset(world["apis"][provider], name, csv, terms, key_column="patient", title=name)
    neg = negotiate(world["lab"], entry["offers"][0]["id"], ["he.aggregate"], purpose="public-health")
    assert neg["state"] == "FINALIZED", neg
    return str(neg["agreement_id"])


def aggregate(world: dict[str, Any], *agreements: str) -> dict[str, Any]:
    body = {
        "operation": "he.aggregate",
        "stats": ["count", "sum"],
        "column": "x",
        "agreements": list(agreements),
    }
    return run(world["lab"], body)


def test_a_provider_that_asks_for_two_providers_is_not_aggregated_alone(world: dict[str, Any]) -> None:
    two = agreement(world, "hos1", offer(ALLOWED, STATS, K, c("providers", "gteq", 2)))
    alone = aggregate(world, two)
    assert alone["status"] == "denied"  # its only provider's policy said no
    assert "providers gteq 2: providers is 1" in alone["error"]
    # the same provider twice (a second agreement with it) is still one provider: the part
    # under the agreement that asks for two is not given; the other agreement's part is
    twice = aggregate(world, two, world["second"])
    assert twice["summary"]["contributors"] == 1
    answers = world["lab"].get(f"/api/jobs/{twice['id']}/result")["answers"]
    assert "providers gteq 2: providers is 1" in answers[two]
    together = aggregate(world, two, world["agreements"]["hos2"])
    assert together["status"] == "succeeded"
    assert together["summary"]["contributors"] == 2


def test_the_space_adds_a_part_only_with_as_many_providers_as_it_asked_for(world: dict[str, Any]) -> None:
    two = agreement(world, "hos1", offer(ALLOWED, STATS, K, c("providers", "gteq", 2)))
    # hos2 is counted at the check, then refuses (its agreement requires ε): hos1 would be alone
    job = aggregate(world, two, world["dp"])
    assert job["status"] == "failed"
    assert job["error"] == (
        "the space withheld the total: 1 distinct providers contributed; a contribution requires at least 2"
    )


def test_a_privacy_budget_without_a_per_job_epsilon_still_requires_dp(world: dict[str, Any]) -> None:
    budget = agreement(world, "hos3", offer(ALLOWED, STATS, K, c("epsilonTotal", "lteq", 3.0)))
    job = aggregate(world, budget)
    assert job["status"] == "denied"
    assert "epsilonTotal lteq 3.0: the request does not state epsilonTotal" in job["error"]
