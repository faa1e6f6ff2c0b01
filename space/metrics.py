"""The space's metrics (node.metrics): the log's leaves and the size of its newest signed tree
head (leaves beyond it await their head), participants by status, and how long appends take."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from node.db import Database
from space.models import LedgerEntry, Participant, TreeHead

# seconds: one append commits its leaves and signs a head, a few milliseconds on SQLite here
APPEND_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass(frozen=True)
class SpaceMetrics:
    registry: CollectorRegistry
    append_seconds: Histogram  # observed around each POST /ledger/records and /ledger/batch


def new(db: Database) -> SpaceMetrics:
    registry = CollectorRegistry()
    append = Histogram(
        "tds_space_ledger_append_seconds",
        "Time to append a request's usage records to the log and sign its new head",
        buckets=APPEND_BUCKETS,
        registry=registry,
    )
    registry.register(SpaceCollector(db))
    return SpaceMetrics(registry, append)


class SpaceCollector(Collector):
    """What the space's database holds, read at each scrape."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        with self.db.session() as session:
            leaves = session.scalar(select(func.count()).select_from(LedgerEntry)) or 0
            head = session.scalars(select(TreeHead).order_by(TreeHead.size.desc()).limit(1)).first()
            statuses = session.execute(
                select(Participant.status, func.count()).group_by(Participant.status)
            ).all()
        yield GaugeMetricFamily("tds_space_ledger_leaves", "Leaves in the usage log", value=leaves)
        yield GaugeMetricFamily(
            "tds_space_ledger_signed_size",
            "Size of the newest signed tree head",
            value=head.size if head else 0,
        )
        family = GaugeMetricFamily("tds_space_participants", "Participants by status", labels=["status"])
        for status, count in sorted(statuses):
            family.add_metric([str(status)], count)
        yield family
