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
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

from sandbox import cgroup, framing
from sandbox.errors import LimitExceeded
from sandbox.interface import Progress, WorkerJob, WorkerResult
from sandbox.limits import Limits, MiB
from sandbox.runner import Outcome, interpret, supervise

BASE_ISOLATION = ("rlimits", "process-group", "empty-cwd", "clean-env")
CLEAN_ENV = {"LANG": "C.UTF-8", "PATH": "/usr/bin:/bin"}


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


def worker_command(python: str, limits: Limits) -> list[str]:
    return [python, "-I", "-m", "sandbox.worker", "--limits", json.dumps(limits.to_json())]


def in_cgroup(group: cgroup.PidsCgroup | None, command: list[str]) -> list[str]:
    """``command`` started inside ``group``: a shell joins the cgroup, then becomes the command,
    so that no process of the job ever runs outside it."""
    if group is None:
        return command
    return ["/bin/sh", "-c", f'echo $$ > "{group.procs}" && exec "$@"', "sh", *command]


class ProcessBackend:
    name = "process"

    def __init__(self, limits: Limits) -> None:
        self.limits = limits

    # -- what subclasses change -------------------------------------------------------------
    def command(self, job: WorkerJob, limits: Limits) -> tuple[list[str], str | None, list[int]]:
        """The command line, the dataset path as the worker will see it, and fds to pass."""
        prefix = unshare_prefix() if namespaces_available()[0] else []
        return [*prefix, *worker_command(sys.executable, limits)], job.dataset, []

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
        limits = job.limits or self.limits
        scratch = tempfile.mkdtemp(prefix="tds-sandbox-")
        group = cgroup.create(limits.processes)
        fds: list[int] = []
        try:
            command, dataset, fds = self.command(job, limits)
            header = {"op": job.op, "params": job.params, "dataset": dataset}
            request = framing.encode(header, job.blobs)
            if len(request) > limits.input_mb * MiB:
                raise LimitExceeded(
                    "input", f"job input {len(request) // MiB} MiB exceeds {limits.input_mb} MiB"
                )
            outcome = self._start(in_cgroup(group, command), scratch, fds, request, limits, group, progress)
        finally:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
            if group is not None:
                group.remove()
            shutil.rmtree(scratch, ignore_errors=True)
        isolation = (*self.isolation(), *(("pids-cgroup",) if group is not None else ()))
        return interpret(job, outcome, limits, self.name, isolation)

    def _start(
        self,
        command: list[str],
        scratch: str,
        fds: list[int],
        request: bytes,
        limits: Limits,
        group: cgroup.PidsCgroup | None,
        progress: Progress | None,
    ) -> Outcome:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=scratch,
            env=CLEAN_ENV,
            start_new_session=True,
            close_fds=True,
            pass_fds=fds,
        )
        assert proc.stdin and proc.stdout and proc.stderr

        def kill() -> None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            if group is not None:
                group.kill_all()  # including anything that left the process group
            proc.wait()

        outcome = supervise(proc.stdin, proc.stdout, proc.stderr, request, limits, proc.poll, kill, progress)
        outcome.status = self.status(outcome.status)
        return outcome
