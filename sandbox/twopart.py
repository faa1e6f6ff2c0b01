"""Requests sent to a worker in two parts: what is known when a job starts, now; the rest when
it arrives.

The consumer's decryption needs the job's secret key, made in the job's first step, and the
ciphertexts, which come at its end. Sent as the job starts, the key is loaded by the worker
(≈ 13 ms: TenSEAL builds the context's tables) while the providers compute; the ciphertexts
follow as the second part. It is the same single-use sandbox with the same limits: only the
request arrives in two pieces, and the wall clock runs from the first.

On the pipe the second part is one more framed message, ``{"params": {...}}`` and its blobs,
after a first message whose header says ``"parts": 2``. Operations that take their request so
name themselves in the worker (``sandbox.worker.TWO_PART``).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any, Protocol

from sandbox import framing
from sandbox.errors import LimitExceeded
from sandbox.interface import Backend, WorkerJob, WorkerResult
from sandbox.limits import MiB

CANCEL_WAIT_S = 2.0  # how long cancel() lets the worker see its request end before killing it


class Continued(Protocol):
    """A job whose first part a worker has: :meth:`send` gives it the rest and returns the
    result; :meth:`cancel` ends it without (both are safe to call again)."""

    def send(self, params: dict[str, Any], blobs: list[bytes]) -> WorkerResult: ...

    def cancel(self) -> None: ...


class Deferred:
    """For backends that start a worker per job (docker): the whole request goes at
    :meth:`send`, as one part, to the one-part form of the same operation."""

    def __init__(self, backend: Backend, job: WorkerJob) -> None:
        self.backend, self.job = backend, job

    def send(self, params: dict[str, Any], blobs: list[bytes]) -> WorkerResult:
        job = self.job
        whole = WorkerJob(job.op, {**job.params, **params}, [*job.blobs, *blobs], job.dataset, job.limits)
        return self.backend.run(whole)

    def cancel(self) -> None:
        pass


class Streaming:
    """A started worker that has been written the first part and waits for the second; a
    thread supervises it from the first part on (``run`` is the backend's supervision, which
    takes the request's parts in order)."""

    def __init__(
        self,
        run: Callable[[Iterator[bytes]], WorkerResult],
        kill: Callable[[], None],
        job: WorkerJob,
        first: bytes,
        cap: int,
    ) -> None:
        self.kill, self.job, self.cap, self.size = kill, job, cap, len(first)
        self._parts: queue.Queue[bytes | None] = queue.Queue()
        self._parts.put(first)
        self._ended = False  # the last part (or the end) was written
        self._result: Future[WorkerResult] = Future()
        threading.Thread(target=self._supervise, args=(run,), daemon=True, name="tds-twopart").start()

    def _supervise(self, run: Callable[[Iterator[bytes]], WorkerResult]) -> None:
        try:
            self._result.set_result(run(iter(self._parts.get, None)))
        except BaseException as exc:  # handed to whoever waits for the result
            self._result.set_exception(exc)

    def send(self, params: dict[str, Any], blobs: list[bytes]) -> WorkerResult:
        if self._ended:
            raise ValueError(f"{self.job.op}: the second part was sent already")
        part = framing.encode({"params": params}, blobs)
        if self.size + len(part) > self.cap:
            self.cancel()
            raise LimitExceeded(
                "input", f"job input {(self.size + len(part)) / MiB:.1f} MiB exceeds {self.cap // MiB} MiB"
            )
        self._ended = True
        self._parts.put(part)
        self._parts.put(None)
        return self._result.result()

    def cancel(self) -> None:
        """Ends the request without its second part: the worker reads the end of its input,
        refuses the truncated request and exits (or is killed); this returns once it is gone."""
        if not self._ended:
            self._ended = True
            self._parts.put(None)
        try:
            self._result.exception(timeout=CANCEL_WAIT_S)
        except TimeoutError:
            self.kill()
            self._result.exception()
