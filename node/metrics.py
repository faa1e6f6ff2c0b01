"""A node's ``GET /metrics`` in Prometheus's text format, through prometheus_client.

Each node has a registry of its own (not prometheus_client's global one: tests run several nodes
in one process). What the database holds — jobs, outbox, ledger, participants — is read from it
at scrape time, so a restart loses nothing; what only the process sees (sandbox workers started,
append latency) is counted in it and starts again from zero, as Prometheus expects a counter to.
The route asks for the node's own token (``authorize``): the figures are about its business.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence

from flask import Flask, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import HistogramMetricFamily

# seconds: a PSI job of a thousand rows takes under a second, one of a million about a minute
DURATION_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 7200.0)


def install(app: Flask, registry: CollectorRegistry, authorize: Callable[[], object]) -> None:
    @app.get("/metrics")
    def metrics() -> Response:
        authorize()
        return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def histogram(
    name: str,
    documentation: str,
    labels: Sequence[str],
    observed: Mapping[tuple[str, ...], Iterable[float]],
    buckets: Sequence[float] = DURATION_BUCKETS,
) -> HistogramMetricFamily:
    """A histogram of values read at scrape time (a job's duration from its stored start and
    end), one series per label tuple: cumulative bucket counts, +Inf, and the sum."""
    family = HistogramMetricFamily(name, documentation, labels=list(labels))
    for values, seen in sorted(observed.items()):
        seen = sorted(seen)
        counts, index = [], 0
        for bound in (*buckets, math.inf):
            while index < len(seen) and seen[index] <= bound:
                index += 1
            counts.append((str(bound) if bound != math.inf else "+Inf", index))
        family.add_metric(list(values), [(le, float(n)) for le, n in counts], sum(seen))
    return family
