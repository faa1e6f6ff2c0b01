"""The ``process`` backend: a child Python with hard rlimits and a wall-clock kill.

The child runs in isolated mode (``-I``: no user site, no PYTHON* variables), in a new session
(its own process group, so the wall-clock kill takes every process it forked), in an empty
scratch directory, with a cleared environment. Filesystem and network isolation come with the
bubblewrap and Docker backends.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import IO

from sandbox import framing
from sandbox.errors import FrameError, LimitExceeded, SandboxError, WorkerFailed
from sandbox.interface import Progress, WorkerJob, WorkerResult, check_result
from sandbox.limits import Limits, MiB

ISOLATION = ("rlimits", "process-group", "empty-cwd", "clean-env")
# What a process that hit RLIMIT_AS leaves on stderr: Python, C++ and glibc's ways of saying so.
OUT_OF_MEMORY = ("MemoryError", "bad_alloc", "cannot allocate memory", "Cannot allocate memory")


class _CappedReader(threading.Thread):
    """Reads a pipe into memory, stopping (and flagging) at ``cap`` bytes."""

    def __init__(self, pipe: IO[bytes], cap: int) -> None:
        super().__init__(daemon=True)
        self.pipe, self.cap = pipe, cap
        self.buffer = io.BytesIO()
        self.overflow = False

    def run(self) -> None:
        while chunk := self.pipe.read(1 << 20):
            if self.buffer.tell() + len(chunk) > self.cap:
                self.overflow = True
                return
            self.buffer.write(chunk)


class _StderrReader(threading.Thread):
    """Turns ``progress <f>`` lines into callbacks; keeps the tail of everything else."""

    def __init__(self, pipe: IO[bytes], progress: Progress | None) -> None:
        super().__init__(daemon=True)
        self.pipe, self.progress = pipe, progress
        self.tail: list[str] = []

    def run(self) -> None:
        for raw in self.pipe:
            line = raw.decode("utf-8", "replace").rstrip()
            if line.startswith("progress "):
                if self.progress is not None:
                    with contextlib.suppress(ValueError, IndexError):
                        self.progress(float(line.split()[1]))
                continue
            self.tail = [*self.tail[-19:], line]


class _Writer(threading.Thread):
    def __init__(self, pipe: IO[bytes], data: bytes) -> None:
        super().__init__(daemon=True)
        self.pipe, self.data = pipe, data

    def run(self) -> None:
        try:
            self.pipe.write(self.data)
            self.pipe.close()
        except (BrokenPipeError, OSError):
            pass  # the worker died or refused the input; its exit status says why


class ProcessBackend:
    name = "process"

    def __init__(self, limits: Limits) -> None:
        self.limits = limits

    def _kill_group(self, pid: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)

    def run(self, job: WorkerJob, progress: Progress | None = None) -> WorkerResult:
        limits = self.limits
        request = framing.encode({"op": job.op, "params": job.params, "dataset": job.dataset}, job.blobs)
        if len(request) > limits.input_mb * MiB:
            raise LimitExceeded("input", f"job input {len(request) // MiB} MiB exceeds {limits.input_mb} MiB")
        scratch = tempfile.mkdtemp(prefix="tds-sandbox-")
        try:
            return self._run(job, request, scratch, progress)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _run(self, job: WorkerJob, request: bytes, scratch: str, progress: Progress | None) -> WorkerResult:
        limits = self.limits
        command = [
            sys.executable,
            "-I",
            "-m",
            "sandbox.worker",
            "--limits",
            json.dumps(limits.to_json()),
        ]
        proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=scratch,
            env={"LANG": "C.UTF-8", "PATH": "/usr/bin:/bin"},
            start_new_session=True,
            close_fds=True,
        )
        assert proc.stdin and proc.stdout and proc.stderr
        writer = _Writer(proc.stdin, request)
        reader = _CappedReader(proc.stdout, limits.output_mb * MiB)
        errors = _StderrReader(proc.stderr, progress)
        for thread in (writer, reader, errors):
            thread.start()
        deadline = time.monotonic() + limits.wall_seconds
        timed_out = False
        try:
            while proc.poll() is None and not reader.overflow:
                if time.monotonic() > deadline:
                    timed_out = True
                    break
                time.sleep(0.02)
        finally:
            self._kill_group(proc.pid)  # the worker and whatever it forked end with the job
            proc.wait()
        writer.join(5)
        reader.join(5)
        errors.join(5)
        if timed_out:
            raise LimitExceeded("wall", f"wall-clock limit {limits.wall_seconds} s exceeded")
        if reader.overflow:
            raise LimitExceeded("output", f"output limit {limits.output_mb} MiB exceeded")
        return self._interpret(job, proc.returncode, reader.buffer.getvalue(), errors.tail)

    def _interpret(self, job: WorkerJob, status: int, output: bytes, tail: list[str]) -> WorkerResult:
        limits = self.limits
        if status == -signal.SIGXCPU:
            raise LimitExceeded("cpu", f"CPU time limit {limits.cpu_seconds} s exceeded")
        if status == -signal.SIGXFSZ:
            raise LimitExceeded("file_size", f"file size limit {limits.file_size_mb} MiB exceeded")
        try:
            header, blobs = framing.decode(output, limits.output_mb * MiB)
        except FrameError as exc:
            detail = tail[-1] if tail else "no output"
            if any(sign in line for line in tail for sign in OUT_OF_MEMORY):
                raise LimitExceeded("memory", f"memory limit {limits.memory_mb} MiB exceeded") from exc
            if status < 0:
                raise SandboxError(
                    f"sandbox: worker killed by signal {signal.Signals(-status).name} ({detail})"
                ) from exc
            raise SandboxError(f"sandbox: worker exited with status {status}: {detail}") from exc
        if "error" in header:
            error = header["error"]
            if error.get("kind") == "memory":
                raise LimitExceeded("memory", str(error.get("message")))
            raise WorkerFailed(str(error.get("kind")), str(error.get("message")))
        if status != 0:
            raise SandboxError(f"sandbox: worker exited with status {status} after answering")
        peak = header.pop("peak_rss_mb", 0.0)
        check_result(job.op, header, blobs)
        return WorkerResult(
            header=header,
            blobs=blobs,
            backend=self.name,
            isolation=ISOLATION,
            peak_rss_mb=float(peak) if isinstance(peak, int | float) else 0.0,
        )
