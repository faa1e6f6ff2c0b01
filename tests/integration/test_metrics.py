"""GET /metrics on a connector and on the space, between real processes: the figures are read
from what each node holds (its jobs, its outbox, the log) and from what it counted (sandbox
workers, appends), in Prometheus's text format, and only with the node's own token."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tds.local import cluster, negotiate, publish_dataset, run_job
from tests.integration.conftest import ledger_for

OFFER = {
    "policy": {"permission": [{"action": "psi.cardinality"}]},
    "price": {"model": "per_job", "amount_fen": 100},
    "auto_approve": True,
}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape: (name, sorted labels) → value."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def seconds(job: dict[str, Any]) -> float:
    return (
        dt.datetime.fromisoformat(job["finished_at"]) - dt.datetime.fromisoformat(job["created_at"])
    ).total_seconds()


def test_each_node_reports_what_it_holds_and_counted(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("phone\n" + "".join(f"139{i:08d}\n" for i in range(300)))
    (tmp_path / "b.csv").write_text("phone\n" + "".join(f"139{i:08d}\n" for i in range(100, 500)))
    with cluster(tmp_path / "nodes") as live:
        bank, telecom = live.add_connector("bank", "Bank", 87), live.add_connector("telecom", "Telecom", 88)
        consumer, provider, operator = bank.api(), telecom.api(), live.operator()
        try:
            entry = publish_dataset(provider, "subs", tmp_path / "b.csv", OFFER)
            agreement = negotiate(consumer, entry["offers"][0]["id"], ["psi.cardinality"])["agreement_id"]
            job = run_job(consumer, agreement, "psi.cardinality", tmp_path / "a.csv")
            assert job["status"] == "succeeded"
            ledger_for(operator, consumer, provider, agreement, 1)  # delivered: the outbox is empty
            ours = samples(consumer.get("/metrics"))
            backend = (("backend", job["backend"]),)
            labels = (("operation", "psi.cardinality"), ("role", "consumer"), ("status", "succeeded"))
            assert ours[("tds_connector_jobs", labels)] == 1
            assert ours[("tds_connector_job_duration_seconds_count", labels)] == 1
            assert ours[("tds_connector_job_duration_seconds_sum", labels)] == pytest.approx(seconds(job))
            assert (
                ours[("tds_connector_job_duration_seconds_bucket", tuple(sorted((*labels, ("le", "+Inf")))))]
                == 1
            )
            # the consumer's two steps: its request, then its comparison
            assert ours[("tds_connector_sandbox_workers_total", backend)] == 2
            theirs = samples(provider.get("/metrics"))
            assert theirs[("tds_connector_sandbox_workers_total", backend)] == 1  # its one step
            assert theirs[("tds_connector_outbox_records", (("state", "delivered"),))] == 1
            assert theirs[("tds_connector_outbox_records", (("state", "ready"),))] == 0
            assert theirs[("tds_connector_outbox_oldest_undelivered_age_seconds", ())] == 0
            space = samples(operator.get("/metrics"))
            head = operator.get("/ledger/head")
            assert space[("tds_space_ledger_leaves", ())] == space[("tds_space_ledger_signed_size", ())]
            assert space[("tds_space_ledger_signed_size", ())] == head["tree_size"]
            assert space[("tds_space_participants", (("status", "admitted"),))] == 2
            assert space[("tds_space_ledger_append_seconds_count", ())] >= 1
            for url in (bank.url, live.space.url):
                answer = httpx.get(f"{url}/metrics", trust_env=False)
                assert answer.status_code == 401, answer.text
                assert answer.headers["content-type"] == "application/problem+json"
        finally:
            consumer.close()
            provider.close()
            operator.close()
