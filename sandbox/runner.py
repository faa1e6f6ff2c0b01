"""What every backend shares: feeding a worker, watching its limits, reading its answer.

A backend starts the worker its own way (a child process, bubblewrap, a container) and hands
this module the worker's three pipes; :func:`supervise` writes the request, reads the capped
output and stderr, and enforces the wall clock; :func:`interpret` turns the exit status and
the framed output into a checked :class:`WorkerResult` or a typed error.
"""

from __future__ import annotations

import contextlib
import io
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import IO

from sandbox import framing
from sandbox.errors import FrameError, LimitExceeded, SandboxError, WorkerFailed
from sandbox.interface import Progress, WorkerJob, WorkerResult, check_result
from sandbox.limits import Limits, MiB

# What a process that hit RLIMIT_AS leaves on stderr: Python, C++ and glibc's ways of saying so.
OUT_OF_MEMORY = ("MemoryError", "bad_alloc", "cannot allocate memory", "Cannot allocate memory")


class OutputSink:
    """Collects the worker's stdout up to ``cap`` bytes and flags anything beyond."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.buffer = io.BytesIO()
        self.overflow = False

    def feed(self, chunk: bytes) -> bool:
        """Keeps ``chunk``; False once the cap is passed (the caller stops reading)."""
        if self.buffer.tell() + len(chunk) > self.cap:
            self.overflow = True
            return False
        self.buffer.write(chunk)
        return True


class StderrSink:
    """Turns ``progress <f>`` lines into callbacks; keeps the last 20 other lines."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.tail: list[str] = []
        self._partial = b""

    def feed(self, chunk: bytes) -> None:
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        for raw in lines:
            self._line(raw.decode("utf-8", "replace").rstrip())

    def close(self) -> None:
        if self._partial:
            self._line(self._partial.decode("utf-8", "replace").rstrip())
            self._partial = b""

    def _line(self, line: str) -> None:
        if line.startswith("progress "):
            if self.progress is not None:
                with contextlib.suppress(ValueError, IndexError):
                    self.progress(float(line.split()[1]))
            return
        self.tail = [*self.tail[-19:], line[:2000]]


def _pump(pipe: IO[bytes], feed: Callable[[bytes], object]) -> None:
    with contextlib.suppress(OSError, ValueError):
        while chunk := pipe.read1(1 << 20) if hasattr(pipe, "read1") else pipe.read(1 << 20):
            if feed(chunk) is False:
                return


def _write(pipe: IO[bytes], parts: Iterable[bytes]) -> None:
    """Writes the request — in parts as they become available (``sandbox.twopart``) — and
    closes the worker's stdin after the last."""
    try:
        for part in parts:
            pipe.write(part)
            pipe.flush()
        pipe.close()
    except (BrokenPipeError, OSError, ValueError):
        pass  # the worker died or refused the input; its exit status says why


@dataclass
class Outcome:
    """What a supervised worker left behind."""

    status: int | None  # exit status, negative for a signal; None if it never ended on its own
    output: bytes
    tail: list[str]
    timed_out: bool
    overflow: bool


def supervise(
    stdin: IO[bytes],
    stdout: IO[bytes],
    stderr: IO[bytes],
    request: bytes | Iterable[bytes],
    limits: Limits,
    poll: Callable[[], int | None],
    kill: Callable[[], None],
    progress: Progress | None = None,
) -> Outcome:
    """Runs one request through a started worker, killing it at the wall clock or output cap.
    ``request`` is the framed bytes, or its parts in order as they become available."""
    out, err = OutputSink(limits.output_mb * MiB), StderrSink(progress)
    answered = threading.Event()  # the worker closed its stdout: it has answered or died

    def pump_out() -> None:
        _pump(stdout, out.feed)
        answered.set()

    threads = [
        threading.Thread(
            target=_write, args=(stdin, [request] if isinstance(request, bytes) else request), daemon=True
        ),
        threading.Thread(target=pump_out, daemon=True),
        threading.Thread(target=_pump, args=(stderr, err.feed), daemon=True),
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + limits.wall_seconds
    timed_out = False
    status: int | None = None
    try:
        while (status := poll()) is None and not out.overflow:
            if time.monotonic() > deadline:
                timed_out = True
                break
            # woken at once by the answer; then only the exit status is still to come
            if answered.wait(0.01):
                time.sleep(0.001)
    finally:
        kill()  # the worker and whatever it started end with the job, whatever happened
    for thread in threads:
        thread.join(5)
    err.close()
    return Outcome(status, out.buffer.getvalue(), err.tail, timed_out, out.overflow)


def interpret(
    job: WorkerJob,
    outcome: Outcome,
    limits: Limits,
    backend: str,
    isolation: Iterable[str],
    out_of_memory: bool = False,
) -> WorkerResult:
    """The checked result of a finished worker, or the typed error that says why there is none."""
    if outcome.timed_out:
        raise LimitExceeded("wall", f"wall-clock limit {limits.wall_seconds} s exceeded")
    if outcome.overflow:
        raise LimitExceeded("output", f"output limit {limits.output_mb} MiB exceeded")
    status, tail = outcome.status, outcome.tail
    if status == -signal.SIGXCPU:
        raise LimitExceeded("cpu", f"CPU time limit {limits.cpu_seconds} s exceeded")
    if status == -signal.SIGXFSZ:
        raise LimitExceeded("file_size", f"file size limit {limits.file_size_mb} MiB exceeded")
    try:
        header, blobs = framing.decode(outcome.output, limits.output_mb * MiB)
    except FrameError as exc:
        detail = tail[-1] if tail else "no output"
        if out_of_memory or any(sign in line for line in tail for sign in OUT_OF_MEMORY):
            raise LimitExceeded("memory", f"memory limit {limits.memory_mb} MiB exceeded") from exc
        if status is not None and status < 0:
            raise SandboxError(
                f"sandbox: worker killed by signal {signal.Signals(-status).name} ({detail})"
            ) from exc
        raise SandboxError(f"sandbox: worker exited with status {status}: {detail}") from exc
    if "error" in header:
        error = header["error"]
        if not isinstance(error, dict):
            raise WorkerFailed("result", f"the worker's error is not an object: {error!r}"[:300])
        if error.get("kind") in ("memory", "file_size"):
            raise LimitExceeded(str(error["kind"]), str(error.get("message")))
        raise WorkerFailed(str(error.get("kind")), str(error.get("message")))
    if status != 0:
        raise SandboxError(f"sandbox: worker exited with status {status} after answering")
    peak = header.pop("peak_rss_mb", 0.0)
    check_result(job.op, header, blobs)
    return WorkerResult(
        header=header,
        blobs=blobs,
        backend=backend,
        isolation=tuple(isolation),
        peak_rss_mb=float(peak) if isinstance(peak, int | float) and not isinstance(peak, bool) else 0.0,
    )
