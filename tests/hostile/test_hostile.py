"""Hostile job bodies on every backend: each ends contained (typed error or harmless result),
and the host stays unharmed — or, for the weak ``process`` backend, escapes exactly as expected.

Whether a case escaped is decided from the host's side (see ``cases.py``). The expected table:
``bwrap`` and ``docker`` contain everything; ``process`` shares the host's filesystem and
(as root) its user, so the file cases and the setuid case escape there, and the network,
``/proc`` and survival cases depend on namespaces and a pids cgroup being available.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import pytest

from sandbox import cgroup
from sandbox.backends import create_backend
from sandbox.errors import SandboxError
from sandbox.interface import Backend, WorkerJob, WorkerResult
from sandbox.limits import Limits
from sandbox.process import namespaces_available
from tests.hostile.cases import CASES, Case, Host
from tests.hostile.conftest import record

FILE_CASES = {
    "read-key-file",
    "read-database",
    "read-other-dataset",
    "read-via-proc",
    "write-outside-scratch",
}


def expected_escapes(backend: str) -> set[str]:
    if backend != "process":
        return set()
    escapes = set(FILE_CASES)
    if os.geteuid() == 0:
        escapes.add("setuid-root")
    if not namespaces_available()[0]:
        escapes |= {"tcp-out", "udp-out", "host-environment", "ptrace-parent", "daemonize"}
    if cgroup.create(1) is None and os.geteuid() == 0:
        escapes.add("fork-bomb")  # RLIMIT_NPROC does not bind root
    return escapes


@pytest.fixture
def host(tmp_path: Path) -> Host:
    os.environ["TDS_HOSTILE_CANARY"] = "unset"
    host = Host(tmp_path)
    os.environ["TDS_HOSTILE_CANARY"] = host.canary  # the connector's own environment holds a secret
    yield host
    os.environ.pop("TDS_HOSTILE_CANARY", None)
    for pid in host.survivors():  # leave the machine as we found it, whatever the verdict
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    host.close()


def run_case(backend: Backend, case: Case, host: Host) -> tuple[WorkerResult | None, SandboxError | None]:
    limits = backend.limits.tightened(case.limits)
    job = WorkerJob("script.run", {"source": case.source, "args": host.args()}, [], str(host.dataset), limits)
    try:
        return backend.run(job), None
    except SandboxError as exc:  # typed: anything else fails the test as an untyped error
        return None, exc


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_case_is_contained(backend_name: str, case: Case, host: Host) -> None:
    backend = create_backend(backend_name, Limits(wall_seconds=20, cpu_seconds=20, workers=1))
    result, error = run_case(backend, case, host)
    contained, detail = case.judge(host, result, error)
    record(case.name, backend_name, contained, detail)
    escapes = expected_escapes(backend_name)
    assert contained == (case.name not in escapes), f"{case.name} on {backend_name}: {detail}"


def test_the_job_own_dataset_is_readable_and_read_only(backend_name: str, host: Host) -> None:
    """The one file a job may read is there, and even that cannot be changed (bwrap, docker)."""
    backend = create_backend(backend_name, Limits(wall_seconds=20))
    source = """
with open(DATASET) as f:
    RESULT["data"] = f.read()
try:
    with open(DATASET, "a") as f:
        f.write("tampered")
    RESULT["appended"] = True
except OSError as exc:
    RESULT["error"] = exc.strerror
"""
    result, error = run_case(backend, Case("own", source, lambda *_: (True, "")), host)
    assert error is None and result is not None
    assert result.header["result"]["data"].startswith("phone\n13800000000\n")
    if backend_name != "process":
        # read-only bind; docker's uid 65534 is refused even before the mount is consulted
        assert result.header["result"]["error"] in ("Read-only file system", "Permission denied")
        assert host.dataset.read_text() == "phone\n13800000000\n"
