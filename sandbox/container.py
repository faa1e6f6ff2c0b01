"""The ``docker`` backend: the worker in a container with no network, no capabilities, no root.

Through the Docker SDK against a running engine: ``network_mode=none``, a read-only root
filesystem with a private /tmp, all capabilities dropped, ``no-new-privileges``, uid 65534,
memory, CPU and PID limits from the job's :class:`Limits`, the dataset mounted read-only at
``/data/<name>``, and the container removed afterwards whatever happened. The request goes in
on the container's stdin and the framed result comes back on its stdout, as for the others.

Images: the production worker image is built from ``sandbox/Dockerfile``. Without one, the
backend uses ``tds-sandbox-host-runtime``: an empty image (made with ``docker import`` of an
empty archive, so no registry is needed) into which the host's Python runtime, packages and
shared libraries are bound read-only.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import shutil
import socket
import stat
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sandbox import framing
from sandbox.bwrap import LIBRARY_DIRS, NOBODY, runtime_paths
from sandbox.errors import LimitExceeded, SandboxError
from sandbox.interface import Progress, WorkerJob, WorkerResult, check_dataset
from sandbox.limits import Limits, MiB
from sandbox.process import worker_command
from sandbox.runner import Outcome, OutputSink, StderrSink, interpret

HOST_RUNTIME_IMAGE = "tds-sandbox-host-runtime:1"
PRODUCTION_PYTHON = "/usr/local/bin/python"
ISOLATION = (
    "rlimits", "container", "no-network", "read-only-root", "no-capabilities",
    "no-new-privileges", "uid-65534", "memory-cgroup", "pids-cgroup", "cpu-quota",
)  # fmt: skip
STDOUT, STDERR = 1, 2


def _client(timeout: int = 60) -> Any:
    import docker  # imported here: the other backends do not need the SDK or an engine

    return docker.from_env(timeout=timeout)


def _empty_archive() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w"):
        pass
    return buffer.getvalue()


def ensure_host_runtime_image(api: Any) -> None:
    """Creates the empty image the host runtime is bound into, if the engine lacks it."""
    import docker.errors

    try:
        api.inspect_image(HOST_RUNTIME_IMAGE)
    except docker.errors.ImageNotFound:
        repository, tag = HOST_RUNTIME_IMAGE.split(":")
        api.import_image_from_data(_empty_archive(), repository=repository, tag=tag)


@functools.cache
def available(image: str = HOST_RUNTIME_IMAGE) -> tuple[bool, str]:
    """Whether a Docker engine answers and can run the worker, and if not, why."""
    try:
        client = _client(timeout=10)
        version = client.api.version()["Version"]
        if image == HOST_RUNTIME_IMAGE:
            ensure_host_runtime_image(client.api)
        else:
            client.api.inspect_image(image)
    except Exception as exc:  # the SDK raises several unrelated types for "no engine"
        return False, f"no usable Docker engine: {str(exc).splitlines()[0][:200]}"
    return True, f"Docker engine {version}, image {image}"


@contextlib.contextmanager
def staging_dir() -> Iterator[Path]:
    """A job's staging directory, inside a folder only the connector's user may enter (0700):
    the copy handed to the container's uid 65534 is readable by that uid, and a host process
    running as nobody must not reach it (the engine binds the file itself, so the container
    does not need to traverse the folders above it)."""
    with tempfile.TemporaryDirectory(prefix="tds-docker-") as outer:
        os.chmod(outer, 0o700)
        staging = Path(outer) / "job"
        staging.mkdir(mode=0o700)
        yield staging


def readable_copy(dataset: Path, staging: Path) -> Path:
    """The dataset as the container's uid 65534 can read it.

    A connector keeps its datasets private (owner-only), and the container's user is not the
    owner; rather than loosen the connector's own file, a copy readable by that uid alone is
    made in a private staging directory for the job and removed with it."""
    if dataset.stat().st_mode & stat.S_IROTH:
        return dataset.resolve()
    if os.geteuid() != 0:
        return dataset.resolve()  # cannot hand a file to another uid: the engine's userns must map it
    copy = staging / dataset.name
    shutil.copyfile(dataset, copy)
    for path in (staging, copy):
        os.chown(path, int(NOBODY), int(NOBODY))
    copy.chmod(0o400)
    staging.chmod(0o500)
    return copy


class DockerBackend:
    name = "docker"

    def __init__(self, limits: Limits, image: str = HOST_RUNTIME_IMAGE) -> None:
        self.limits = limits
        self.image = image
        self._api = _client().api
        if image == HOST_RUNTIME_IMAGE:
            ensure_host_runtime_image(self._api)

    def _binds(self, job: WorkerJob, staging: Path) -> tuple[list[str], str | None]:
        """``host:container:ro`` binds (a list: one host directory may appear at two places)."""
        binds: list[str] = []
        if self.image == HOST_RUNTIME_IMAGE:
            for path in LIBRARY_DIRS:
                if Path(path).exists():  # a /lib symlink is bound as the directory it points to
                    binds.append(f"{Path(path).resolve()}:{path}:ro")
            binds += [f"{path}:{path}:ro" for path in runtime_paths()]
        dataset = None
        if job.dataset is not None:
            check_dataset(job.dataset)
            dataset = f"/data/{Path(job.dataset).name}"
            binds.append(f"{readable_copy(Path(job.dataset), staging)}:{dataset}:ro")
        return binds, dataset

    def run(self, job: WorkerJob, progress: Progress | None = None) -> WorkerResult:
        with staging_dir() as staging:
            return self._run_staged(job, staging, progress)

    def _run_staged(self, job: WorkerJob, staging: Path, progress: Progress | None) -> WorkerResult:
        limits = job.limits or self.limits
        binds, dataset = self._binds(job, staging)
        request = framing.encode({"op": job.op, "params": job.params, "dataset": dataset}, job.blobs)
        if len(request) > limits.input_mb * MiB:
            raise LimitExceeded(
                "input", f"job input {len(request) / MiB:.1f} MiB exceeds {limits.input_mb} MiB"
            )
        python = sys.executable if self.image == HOST_RUNTIME_IMAGE else PRODUCTION_PYTHON
        cpus = limits.workers or os.cpu_count() or 1
        host_config = self._api.create_host_config(
            network_mode="none",
            read_only=True,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            mem_limit=limits.total_memory_mb * MiB,
            memswap_limit=limits.total_memory_mb * MiB,  # no swap beyond the memory limit
            nano_cpus=cpus * 1_000_000_000,
            pids_limit=limits.processes,
            binds=binds,
            tmpfs={
                "/tmp": f"rw,nosuid,nodev,size={limits.file_size_mb * 2}m,uid={NOBODY},gid={NOBODY},mode=0700"
            },
        )
        try:
            container = self._api.create_container(
                self.image,
                worker_command(python, limits),
                stdin_open=True,
                network_disabled=True,
                working_dir="/tmp",
                user=f"{NOBODY}:{NOBODY}",
                environment={"LANG": "C.UTF-8", "PATH": "/usr/bin:/bin"},
                host_config=host_config,
            )["Id"]
        except Exception as exc:
            raise SandboxError(f"sandbox: the Docker engine refused the container: {exc}") from exc
        try:
            outcome, oom = self._run(container, request, limits, progress)
        finally:
            with contextlib.suppress(Exception):
                self._api.remove_container(container, force=True)
        return interpret(job, outcome, limits, self.name, ISOLATION, out_of_memory=oom)

    def _run(
        self, container: str, request: bytes, limits: Limits, progress: Progress | None
    ) -> tuple[Outcome, bool]:
        from docker.utils.socket import frames_iter

        sock = self._api.attach_socket(container, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
        raw: socket.socket = sock._sock  # the SDK exposes only the raw socket for half-close
        out, err = OutputSink(limits.output_mb * MiB), StderrSink(progress)
        done = threading.Event()

        def write() -> None:
            with contextlib.suppress(OSError):
                raw.sendall(request)
                raw.shutdown(socket.SHUT_WR)

        def read() -> None:
            # drain to the end even past the cap: an engine whose attach stream is not read
            # can stall the container's kill
            with contextlib.suppress(OSError, ValueError):
                for stream, data in frames_iter(sock, tty=False):
                    if stream == STDOUT and not out.overflow:
                        out.feed(data)
                    elif stream == STDERR:
                        err.feed(data)
            done.set()

        self._api.start(container)
        threads = [threading.Thread(target=f, daemon=True) for f in (write, read)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + limits.wall_seconds
        while not done.wait(0.02) and not out.overflow and time.monotonic() < deadline:
            pass
        timed_out = not done.is_set() and not out.overflow
        if not done.is_set():
            with contextlib.suppress(Exception):
                self._api.kill(container)
            done.wait(30)
        with contextlib.suppress(OSError):
            raw.close()
        for thread in threads:
            thread.join(5)
        err.close()
        status = self._api.wait(container, timeout=30).get("StatusCode")
        state = self._api.inspect_container(container)["State"]
        # a container's exit code is 128 + signal for a killed worker
        code = -(status - 128) if isinstance(status, int) and status > 128 else status
        outcome = Outcome(code, out.buffer.getvalue(), err.tail, timed_out, out.overflow)
        return outcome, bool(state.get("OOMKilled"))
