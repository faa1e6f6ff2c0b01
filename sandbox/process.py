"""The ``process`` backend: a child Python with hard rlimits, namespaces where the kernel allows.

The child runs in isolated mode (``-I``: no user site, no PYTHON* variables), in a new session,
in an empty scratch directory, with a cleared environment, under the rlimits the worker applies
before it reads anything. Where ``unshare`` works it also gets its own network, PID, IPC, UTS and
mount namespaces (so no network, and no view of the host's processes); where a pids cgroup can
be made, it bounds the process count and takes every process the job started down with it.
What a run was isolated by is reported in :attr:`WorkerResult.isolation` and so in the job's
record. The filesystem stays visible: that is what ``bwrap`` and ``docker`` add.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from sandbox import cgroup, framing
from sandbox.errors import LimitExceeded, SandboxError
from sandbox.interface import RESULT_SHAPES, Progress, WorkerJob, WorkerResult
from sandbox.limits import Limits, MiB
from sandbox.runner import interpret, supervise
from sandbox.twopart import Streaming

BASE_ISOLATION = ("rlimits", "process-group", "empty-cwd", "clean-env")
CLEAN_ENV = {"LANG": "C.UTF-8", "PATH": "/usr/bin:/bin"}


def check_plugin(path: Path) -> Path:
    """An operation module the worker may load: an existing .py file, by its absolute path,
    whose ``RESULT_SHAPES`` say what each of its ``OPERATIONS`` returns; those shapes join the
    ones the host checks every result against (sandbox.interface.check_result)."""
    resolved = Path(path).resolve()
    if resolved.suffix != ".py" or not resolved.is_file():
        raise SandboxError(f"sandbox plugin {path}: expected an existing .py file of operations")
    spec = importlib.util.spec_from_file_location(f"tds_plugin_{resolved.stem}", resolved)
    assert spec is not None and spec.loader is not None  # a .py file always has a source loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    steps, shapes = getattr(module, "OPERATIONS", {}), getattr(module, "RESULT_SHAPES", {})
    if not isinstance(steps, dict) or not isinstance(shapes, dict) or not steps or set(steps) != set(shapes):
        raise SandboxError(
            f"sandbox plugin {path}: expected OPERATIONS (name → step) and RESULT_SHAPES (name → "
            "(fields, blob count)) for the same names"
        )
    for name, shape in shapes.items():
        if RESULT_SHAPES.setdefault(name, shape) != shape:
            raise SandboxError(f"sandbox plugin {path}: operation {name} exists already")
    return resolved


def unshare_prefix() -> list[str]:
    flags = ["--net", "--pid", "--ipc", "--uts", "--mount", "--fork", "--kill-child", "--mount-proc"]
    if os.geteuid() != 0:
        flags = ["--user", "--map-root-user", *flags]  # unprivileged: a user namespace first
    return ["unshare", *flags, "--"]


@functools.cache
def namespaces_available() -> tuple[bool, str]:
    """Whether ``unshare`` can give a child its own namespaces here, and if not, why."""
    if shutil.which("unshare") is None:
        return False, "the unshare command (util-linux) is not installed"
    try:
        probe = subprocess.run([*unshare_prefix(), "true"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"unshare failed: {exc}"
    if probe.returncode != 0:
        return False, f"unshare refused: {probe.stderr.decode(errors='replace').strip()}"
    return True, "network, PID, IPC, UTS and mount namespaces"


def worker_command(
    python: str, limits: Limits, prewarm: str | None = None, plugins: tuple[str, ...] = ()
) -> list[str]:
    command = [python, "-I", "-m", "sandbox.worker", "--limits", json.dumps(limits.to_json())]
    for plugin in plugins:
        command += ["--plugin", plugin]
    return [*command, "--prewarm", prewarm] if prewarm else command


PIPE_BYTES = 1 << 20  # Linux's default /proc/sys/fs/pipe-max-size


def widen(pipe: IO[bytes] | None) -> None:
    """A 1 MiB pipe instead of 64 KiB: a homomorphic job's megabytes of ciphertexts then cross
    in 16 times fewer wake-ups (6.6 MB: 10 → 7 ms). A pipe that cannot grow stays as it is."""
    if pipe is not None:
        with contextlib.suppress(OSError):
            fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)


def in_cgroup(group: cgroup.PidsCgroup | None, command: list[str]) -> list[str]:
    """``command`` started inside ``group``: a shell joins the cgroup, then becomes the command,
    so that no process of the job ever runs outside it."""
    if group is None:
        return command
    return ["/bin/sh", "-c", f'echo $$ > "{group.procs}" && exec "$@"', "sh", *command]


@dataclass
class Launched:
    """A worker process started for one job: what the job's end must clean up."""

    proc: subprocess.Popen[bytes]
    scratch: str
    group: cgroup.PidsCgroup | None
    fds: list[int]
    dataset: str | None  # the dataset's path on the host
    seen_as: str | None  # the path the worker reads it by
    limits: Limits
    started: float = field(default_factory=time.monotonic)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self.group is not None:
            self.group.kill_all()  # including anything that left the process group
        self.proc.wait()

    def cleanup(self) -> None:
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds = []
        if self.group is not None:
            self.group.remove()
        shutil.rmtree(self.scratch, ignore_errors=True)


class ProcessBackend:
    name = "process"

    def __init__(self, limits: Limits, plugins: tuple[Path, ...] = ()) -> None:
        """``plugins``: operation modules the node's operator added (sandbox.worker's --plugin);
        each is a file outside the sandbox package that the worker loads beside its own."""
        self.limits = limits
        self.plugins = tuple(check_plugin(p) for p in plugins)

    # -- what subclasses change -------------------------------------------------------------
    def command(
        self, dataset: str | None, limits: Limits, prewarm: str | None = None
    ) -> tuple[list[str], str | None, list[int]]:
        """The command line, the dataset path as the worker will see it, and fds to pass."""
        prefix = unshare_prefix() if namespaces_available()[0] else []
        plugins = tuple(str(p) for p in self.plugins)
        return [*prefix, *worker_command(sys.executable, limits, prewarm, plugins)], dataset, []

    def isolation(self) -> tuple[str, ...]:
        return (*BASE_ISOLATION, *(("namespaces",) if namespaces_available()[0] else ("no-namespaces",)))

    def status(self, raw: int | None) -> int | None:
        """The worker's own exit status: a worker that was process 1 of a PID namespace reports
        its killing signal as 128 + signal (see ``sandbox.worker``)."""
        if raw is not None and raw > 128 and namespaces_available()[0]:
            return -(raw - 128)
        return raw

    # -- the run ----------------------------------------------------------------------------
    def run(self, job: WorkerJob, progress: Progress | None = None) -> WorkerResult:
        return self.finish(self.launch(job.dataset, job.limits or self.limits), job, progress)

    def prestart(self, dataset: str | None, limits: Limits | None, prewarm: str) -> Prestarted:
        """A worker for one future job on ``dataset``, started now and importing what the
        ``prewarm`` family of operations needs while it waits for its request."""
        return Prestarted(self, self.launch(dataset, limits or self.limits, prewarm))

    def launch(self, dataset: str | None, limits: Limits, prewarm: str | None = None) -> Launched:
        scratch = tempfile.mkdtemp(prefix="tds-sandbox-")
        group = cgroup.create(limits.processes)
        fds: list[int] = []
        try:
            command, seen_as, fds = self.command(dataset, limits, prewarm)
            proc = subprocess.Popen(
                in_cgroup(group, command),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=scratch,
                env=CLEAN_ENV,
                start_new_session=True,
                close_fds=True,
                pass_fds=fds,
            )
            for pipe in (proc.stdin, proc.stdout):
                widen(pipe)
        except BaseException:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
            if group is not None:
                group.remove()
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        return Launched(proc, scratch, group, fds, dataset, seen_as, limits)

    def begin(self, job: WorkerJob) -> Streaming:
        """A fresh worker for ``job``, given its first part now (see ``sandbox.twopart``)."""
        return self.stream(self.launch(job.dataset, job.limits or self.limits), job)

    def stream(self, launched: Launched, job: WorkerJob) -> Streaming:
        """Writes ``job`` to a launched worker as the first of two parts; the returned
        :class:`~sandbox.twopart.Streaming` sends the second and waits for the result."""
        header = {"op": job.op, "params": job.params, "dataset": launched.seen_as, "parts": 2}
        try:
            first = self._checked(launched, framing.encode(header, job.blobs))
        except LimitExceeded:
            launched.cleanup()
            raise
        return Streaming(
            lambda parts: self.finish(launched, job, parts=parts),
            launched.kill,
            job,
            first,
            launched.limits.input_mb * MiB,
        )

    def _checked(self, launched: Launched, request: bytes) -> bytes:
        limit = launched.limits.input_mb
        if len(request) > limit * MiB:
            launched.kill()
            raise LimitExceeded("input", f"job input {len(request) / MiB:.1f} MiB exceeds {limit} MiB")
        return request

    def finish(
        self,
        launched: Launched,
        job: WorkerJob,
        progress: Progress | None = None,
        parts: Iterator[bytes] | None = None,
    ) -> WorkerResult:
        """Sends ``job`` to a launched worker — or its ``parts``, as they come — supervises it
        to its end and cleans up."""
        limits = launched.limits
        try:
            if parts is None:
                header = {"op": job.op, "params": job.params, "dataset": launched.seen_as}
                request: bytes | Iterator[bytes] = self._checked(launched, framing.encode(header, job.blobs))
            else:
                request = parts
            proc = launched.proc
            assert proc.stdin and proc.stdout and proc.stderr
            outcome = supervise(
                proc.stdin, proc.stdout, proc.stderr, request, limits, proc.poll, launched.kill, progress
            )
            outcome.status = self.status(outcome.status)
        finally:
            launched.cleanup()
        isolation = (*self.isolation(), *(("pids-cgroup",) if launched.group is not None else ()))
        return interpret(job, outcome, limits, self.name, isolation)


class Prestarted:
    """One worker, started before its job is known, for exactly one job: never shared, never
    reused. :meth:`run` gives it the job (or, if the job's dataset or limits differ from what it
    was started with, runs the job in a fresh worker instead); :meth:`close` ends it unused."""

    def __init__(self, backend: ProcessBackend, launched: Launched) -> None:
        self.backend = backend
        self.launched: Launched | None = launched
        self.lock = threading.Lock()

    def matches(self, dataset: str | None, limits: Limits) -> bool:
        launched = self.launched
        return launched is not None and launched.dataset == dataset and launched.limits == limits

    @property
    def age(self) -> float:
        launched = self.launched
        return time.monotonic() - launched.started if launched is not None else 0.0

    def _take(self) -> Launched | None:
        with self.lock:
            launched, self.launched = self.launched, None
        return launched

    def _claim(self, job: WorkerJob) -> Launched | None:
        """This worker for ``job`` if it fits it and still waits; else None (and it is ended),
        and the job gets a fresh worker."""
        limits = job.limits or self.backend.limits
        if not self.matches(job.dataset, limits) or (self.launched and self.launched.proc.poll() is not None):
            self.close()
            return None
        return self._take()  # None if taken meanwhile (closed by its owner)

    def run(self, job: WorkerJob, progress: Progress | None = None) -> WorkerResult:
        launched = self._claim(job)
        if launched is None:
            return self.backend.run(job, progress)
        return self.backend.finish(launched, job, progress)

    def begin(self, job: WorkerJob) -> Streaming:
        """As :meth:`run`, for a job sent in two parts (``sandbox.twopart``)."""
        launched = self._claim(job)
        return self.backend.begin(job) if launched is None else self.backend.stream(launched, job)

    def close(self) -> None:
        launched = self._take()
        if launched is not None:
            launched.kill()
            launched.cleanup()
