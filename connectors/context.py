"""Everything a connector's request handlers and background work share, built once per app."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from connectors import metrics
from connectors.settings import ConnectorSettings
from connectors.space_client import SpaceClient
from contracts.keys import SigningKey
from node.config import NodeConfig
from node.db import Database
from node.egress import GuardedBackend
from node.signing import SignedClient
from sandbox.backends import create_backend
from sandbox.interface import Backend
from sandbox.warm import WarmPool

log = logging.getLogger("tds.connector")


class JobChanges:
    """Wakes the requests that wait for a job to end (``GET /api/jobs/<id>?wait=S``) the moment
    any job changes, so that a client learns of the end at once instead of at its next poll.

    Each waiter holds one of the server's threads; at most ``most`` wait at once, and the
    others are answered at once (they then poll, as without waiting)."""

    def __init__(self, most: int = 4) -> None:
        self._changed = threading.Condition()
        self._version = 0
        self._seats = threading.BoundedSemaphore(most)

    @property
    def version(self) -> int:
        with self._changed:
            return self._version

    def changed(self) -> None:
        with self._changed:
            self._version += 1
            self._changed.notify_all()

    def seat(self) -> bool:
        """Whether one more request may wait now; :meth:`leave` when it is done."""
        return self._seats.acquire(blocking=False)

    def leave(self) -> None:
        self._seats.release()

    def wait(self, seen: int, timeout: float) -> int:
        """Wait until some job changed after version ``seen`` or ``timeout`` passes; the version."""
        with self._changed:
            self._changed.wait_for(lambda: self._version != seen, timeout)
            return self._version


SCRIPT_BACKENDS = ("bwrap", "docker")


@dataclass
class Connector:
    config: NodeConfig
    settings: ConnectorSettings
    db: Database
    key: SigningKey
    client: SignedClient
    space: SpaceClient
    backend: Backend
    warm: WarmPool  # workers started ahead for homomorphic jobs: parts, decryption (sandbox/warm.py)
    registry: CollectorRegistry  # what GET /metrics reports (connectors.metrics)
    executor: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(8, "tds-bg"))
    outbox_wakeup: threading.Event = field(default_factory=threading.Event)
    stopping: threading.Event = field(default_factory=threading.Event)
    job_changes: JobChanges = field(default_factory=JobChanges)

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def dsp_url(self) -> str:
        return self.config.url + "/dsp"

    @property
    def runs_scripts(self) -> bool:
        """Reviewed scripts run only where the sandbox contains file access: the process backend
        lets the hostile suite's file cases through as root (README, threat model)."""
        return self.backend.name in SCRIPT_BACKENDS

    def background(self, func: Any, *args: Any) -> None:
        """Run ``func`` after the current request; log (never lose silently) what it raises."""

        def run() -> None:
            try:
                func(*args)
            except Exception:
                log.exception("background task %s failed", getattr(func, "__name__", func))

        self.executor.submit(run)

    @classmethod
    def build(cls, config: NodeConfig, db: Database | None = None) -> Connector:
        settings = ConnectorSettings.from_options(config.options)
        key = config.key()
        guard = GuardedBackend(settings.endpoint_denied_ranges, settings.endpoint_loopback)
        client = SignedClient(config.id, key, guard=guard)
        registry, started = metrics.new_registry()
        backend = metrics.CountedBackend(
            create_backend(settings.sandbox_backend, settings.limits, settings.sandbox_docker_image), started
        )
        log.info("sandbox backend: %s", backend.name)
        database = db or Database(config.db)
        registry.register(metrics.ConnectorCollector(database))
        return cls(
            config=config,
            settings=settings,
            db=database,
            key=key,
            client=client,
            space=SpaceClient(config.space_url, client, settings.space_public_key, settings.peer_cache_s),
            backend=backend,
            warm=WarmPool(backend, "he"),
            registry=registry,
        )

    def close(self) -> None:
        self.stopping.set()
        self.outbox_wakeup.set()
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.warm.close()
        self.client.close()
        self.db.dispose()
