import os
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
