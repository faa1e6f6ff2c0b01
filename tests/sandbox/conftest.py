import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sandbox.backends import create_backend
from sandbox.interface import Backend, WorkerJob
from sandbox.limits import Limits
from tests.conftest import require_backend


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def make_backend(backend_name: str) -> Callable[[Limits], Backend]:
    return lambda limits: create_backend(backend_name, limits)


@pytest.fixture(params=["process", "bwrap"])
def prestartable(request: pytest.FixtureRequest) -> Backend:
    """The backends that start workers ahead (docker makes a container per job: warm.Cold)."""
    require_backend(request, request.param)
    return create_backend(request.param, Limits(wall_seconds=120))


def gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (and been reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def tree(pid: int) -> list[int]:
    """``pid`` and every process below it (a bwrap worker runs under bwrap and its init)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            todo += [int(child) for child in task.read_text().split()]
    return found


def idle_with(pid: int, library: str, timeout: float = 60.0) -> bool:
    """Wait until a process of ``pid``'s tree has ``library`` loaded and every one of them is
    asleep (blocked: a worker that waits for its request), instead of guessing how long its
    imports take. False if that does not happen within ``timeout`` or the worker ends."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not gone(pid):
        try:
            procs = tree(pid)
            loaded = any(library in Path(f"/proc/{p}/maps").read_text() for p in procs)
            asleep = all(
                Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0] == "S" for p in procs
            )
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            loaded = asleep = False  # a process of the tree came or went meanwhile: look again
        if loaded and asleep:
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def backend(make_backend: Callable[[Limits], Backend]) -> Backend:
    return make_backend(Limits(wall_seconds=120))


def psi_run(backend, consumer: Path, provider: Path, reveal: bool, column: str = "k"):  # type: ignore[no-untyped-def]
    step1 = backend.run(
        WorkerJob("psi.client_request", {"column": column, "reveal_intersection": reveal}, [], str(consumer))
    )
    step2 = backend.run(
        WorkerJob(
            "psi.provider",
            {
                "column": column,
                "reveal_intersection": reveal,
                "consumer_set_size": step1.header["consumer_set_size"],
            },
            [step1.blobs[0]],
            str(provider),
        )
    )
    step3 = backend.run(
        WorkerJob(
            "psi.client_result",
            {
                "key": step1.header["key"],
                "reveal_intersection": reveal,
                "expected": step1.header["consumer_set_size"],
            },
            step2.blobs,
        )
    )
    return step1, step2, step3
