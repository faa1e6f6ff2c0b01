"""The connector's metrics (node.metrics): its jobs by operation, role and status with their
durations, its outbox by state with the age of its oldest undelivered record, and the sandbox
workers it started by backend."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import select

from connectors import backlog
from connectors.models import Job
from node import metrics
from node.db import Database
from node.models import utcnow
from sandbox.interface import Backend, Progress, WorkerJob, WorkerResult


def new_registry() -> tuple[CollectorRegistry, Counter]:
    registry = CollectorRegistry()
    started = Counter(
        "tds_connector_sandbox_workers", "Sandbox workers started (for a run, or ahead of one), by backend",
        ["backend"], registry=registry,
    )  # fmt: skip
    return registry, started


class CountedBackend:
    """The connector's sandbox backend, counting each worker it starts: every run, and every
    worker started ahead for a coming job (sandbox.warm)."""

    def __init__(self, backend: Backend, started: Counter) -> None:
        self._backend, self._started = backend, started
        self.name, self.limits = backend.name, backend.limits
        started.labels(backend.name)  # the series exists, at 0, before the first job

    def run(self, job: WorkerJob, progress: Progress | None = None) -> WorkerResult:
        self._started.labels(self.name).inc()
        return self._backend.run(job, progress)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._backend, name)  # AttributeError as the backend's: warm.prestart asks
        if name != "prestart":
            return attr

        def prestart(*args: Any, **kwargs: Any) -> Any:
            self._started.labels(self.name).inc()
            return attr(*args, **kwargs)

        return prestart


class ConnectorCollector(Collector):
    """What the connector's database holds, read at each scrape."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        with self.db.session() as session:
            jobs = session.execute(
                select(Job.operation, Job.role, Job.status, Job.created_at, Job.finished_at)
            ).all()
        counts: dict[tuple[str, ...], int] = defaultdict(int)
        durations: dict[tuple[str, ...], list[float]] = defaultdict(list)
        for operation, role, status, created, finished in jobs:
            counts[(operation, role, status)] += 1
            if finished is not None:
                durations[(operation, role, status)].append(max(0.0, (finished - created).total_seconds()))
        family = GaugeMetricFamily(
            "tds_connector_jobs", "Jobs at this connector", labels=["operation", "role", "status"]
        )
        for labels, count in sorted(counts.items()):
            family.add_metric(list(labels), count)
        yield family
        yield metrics.histogram(
            "tds_connector_job_duration_seconds",
            "Ended jobs' time from submission to end",
            ("operation", "role", "status"),
            durations,
        )
        yield from _outbox(backlog.read(self.db), utcnow())


def _outbox(found: backlog.Backlog, now: dt.datetime) -> Iterator[Metric]:
    states = GaugeMetricFamily(
        "tds_connector_outbox_records", "Usage records in the outbox, by state", labels=["state"]
    )
    for state, count in found.counts.items():
        states.add_metric([state], count)
    yield states
    yield GaugeMetricFamily(
        "tds_connector_outbox_oldest_undelivered_age_seconds",
        "Age of the oldest usage record not yet in the space's log (0: none)",
        value=found.age_s(now),
    )
