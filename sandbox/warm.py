"""Workers started ahead of their jobs, so that a job does not wait for a sandbox to start and
for Python to import NumPy and TenSEAL (≈ 0.1–0.2 s each, most of a homomorphic job's fixed
cost: a provider's part, the space's addition and the consumer's decryption each need one).

Isolation is not traded for this. A pre-started worker is an ordinary sandbox — same backend,
same dataset binding, same limits, same seccomp filter — that was launched before its request
was written to it; it serves exactly one job and ends with it, and the next job gets another
one. Nothing is shared between jobs. What changes is only *when* the sandbox starts: after the
previous job of its kind ended, or while the other parties compute (:class:`WarmPool`).
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from sandbox.interface import Backend, Progress, WorkerJob, WorkerResult
from sandbox.limits import Limits
from sandbox.twopart import Continued, Deferred

log = logging.getLogger(__name__)

FAMILIES = ("he",)  # the worker's --prewarm choices: which operations' modules to import first
IDLE_SECONDS = 600.0  # an unused pre-started worker is ended after this long
# The next worker starts this long after a job ends: its start-up (≈ 0.2 s of CPU) then does not
# compete with the rest of the job — the other parties' steps, on small installations often the
# same host — and is still long done before a next job could use it.
REFILL_DELAY = 1.0
MOST = 8  # pre-started workers one pool keeps at most (one per dataset and limits)


class Started(Protocol):
    """A worker for one job: :meth:`run` gives it the job; :meth:`close` ends it unused."""

    @property
    def age(self) -> float: ...

    def matches(self, dataset: str | None, limits: Limits) -> bool: ...

    def run(self, job: WorkerJob, progress: Progress | None = None) -> WorkerResult: ...

    def begin(self, job: WorkerJob) -> Continued: ...

    def close(self) -> None: ...


class Cold:
    """For backends that cannot start a worker ahead (docker: a container is created per job):
    the job's worker starts when the job is run, as usual."""

    def __init__(self, backend: Backend, dataset: str | None, limits: Limits) -> None:
        self.backend, self.dataset, self.limits = backend, dataset, limits

    age = 0.0

    def matches(self, dataset: str | None, limits: Limits) -> bool:
        return (dataset, limits) == (self.dataset, self.limits)

    def run(self, job: WorkerJob, progress: Progress | None = None) -> WorkerResult:
        return self.backend.run(job, progress)

    def begin(self, job: WorkerJob) -> Continued:
        return Deferred(self.backend, job)

    def close(self) -> None:
        pass


def prestart(backend: Backend, dataset: str | None, limits: Limits | None, family: str) -> Started:
    """A worker for one coming job, started now where the backend can (else a :class:`Cold`)."""
    if family not in FAMILIES:
        raise ValueError(f"prewarm family: expected one of {list(FAMILIES)}, got {family!r}")
    start = getattr(backend, "prestart", None)
    if start is None:
        return Cold(backend, dataset, limits or backend.limits)
    started: Started = start(dataset, limits, family)
    return started


class WarmPool:
    """At most one pre-started worker per (dataset, limits), for a provider's repeated jobs.

    :meth:`run` runs a job in the waiting worker if there is one that fits (else in a fresh
    one, as without a pool) and, once the job is over, starts the next one in the background —
    :data:`REFILL_DELAY` after the job, so that its start does not compete with the job's end."""

    def __init__(self, backend: Backend, family: str) -> None:
        self.backend, self.family = backend, family
        self.waiting: dict[tuple[str | None, Limits], Started] = {}
        self.lock = threading.Lock()
        self.closed = False

    def _tidy(self) -> None:
        stale = [k for k, w in self.waiting.items() if w.age > IDLE_SECONDS]
        while len(self.waiting) - len(stale) > MOST:
            oldest = max((k for k in self.waiting if k not in stale), key=lambda k: self.waiting[k].age)
            stale.append(oldest)
        for key in stale:
            self.waiting.pop(key).close()

    def prepare(self, dataset: str | None, limits: Limits | None) -> None:
        """Start a worker for the next job on ``dataset`` unless one is waiting already."""
        key = (dataset, limits or self.backend.limits)
        with self.lock:
            self._tidy()
            if key in self.waiting or self.closed:
                return
        try:
            started = prestart(self.backend, dataset, key[1], self.family)
        except Exception as exc:  # a pool that cannot warm up only costs time
            log.warning("could not pre-start a %s worker for %s: %s", self.family, dataset, exc)
            return
        with self.lock:
            if key in self.waiting or self.closed:
                started.close()
            else:
                self.waiting[key] = started

    def run(self, job: WorkerJob, progress: Progress | None = None) -> WorkerResult:
        waiting = self._take(job)
        try:
            if waiting is None:
                return self.backend.run(job, progress)
            return waiting.run(job, progress)
        finally:
            self._refill(job)

    def begin(self, job: WorkerJob) -> Continued:
        """As :meth:`run`, for a job sent in two parts: the waiting worker (or a fresh one)
        gets the first part now; the result comes from the returned object's ``send``."""
        waiting = self._take(job)
        try:
            if waiting is not None:
                return waiting.begin(job)
            begin = getattr(self.backend, "begin", None)
            return Deferred(self.backend, job) if begin is None else begin(job)
        finally:
            self._refill(job)

    def _take(self, job: WorkerJob) -> Started | None:
        with self.lock:
            return self.waiting.pop((job.dataset, job.limits or self.backend.limits), None)

    def _refill(self, job: WorkerJob) -> None:
        key = (job.dataset, job.limits or self.backend.limits)
        refill = threading.Timer(REFILL_DELAY, self.prepare, args=key)
        refill.daemon = True
        refill.start()

    def close(self) -> None:
        with self.lock:
            self.closed = True
            waiting, self.waiting = list(self.waiting.values()), {}
        for worker in waiting:
            worker.close()
