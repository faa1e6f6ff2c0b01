"""Workers started ahead of their jobs (sandbox/warm.py), on every backend: the same result and
the same isolation as a worker started for the job, one job per worker, a job that does not fit
the waiting worker gets a fresh one, an unused worker is ended, and a pool keeps one per
dataset and limits."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sandbox import warm
from sandbox.interface import Backend, WorkerJob
from sandbox.limits import Limits
from tests.sandbox.conftest import gone, idle_with, write


def request(dataset: Path) -> WorkerJob:
    return WorkerJob("psi.client_request", {"column": "k", "reveal_intersection": False}, [], str(dataset))


def test_a_prestarted_worker_runs_one_job_like_a_fresh_one(tmp_path: Path, backend: Backend) -> None:
    data = write(tmp_path / "c.csv", "k\n" + "".join(f"1380000{i:04d}\n" for i in range(300)))
    cold = backend.run(request(data))
    started = warm.prestart(backend, str(data), None, "he")
    if backend.name == "docker":
        assert isinstance(started, warm.Cold)  # a container is made per job: nothing to start early
    else:
        pid = started.launched.proc.pid  # type: ignore[attr-defined]
        assert idle_with(pid, "tenseal")  # it imports NumPy and TenSEAL meanwhile, and waits
    hot = started.run(request(data))
    assert hot.header["consumer_set_size"] == cold.header["consumer_set_size"] == 300
    assert (hot.backend, hot.isolation) == (cold.backend, cold.isolation)
    if backend.name != "docker":
        assert started.launched is None and gone(pid)  # type: ignore[attr-defined]
    again = started.run(request(data))  # never the same worker twice: this one is fresh
    assert again.header["consumer_set_size"] == 300


def test_a_job_that_does_not_fit_gets_a_fresh_worker_and_the_waiting_one_ends(
    tmp_path: Path, prestartable: Backend
) -> None:
    backend = prestartable
    first = write(tmp_path / "a.csv", "k\n13800000001\n")
    other = write(tmp_path / "b.csv", "k\n13800000001\n13800000002\n")
    started = warm.prestart(backend, str(first), None, "he")
    pid = started.launched.proc.pid  # type: ignore[attr-defined]
    assert started.run(request(other)).header["consumer_set_size"] == 2  # bound to a.csv: not used
    assert gone(pid)
    tighter = warm.prestart(backend, str(first), None, "he")
    pid = tighter.launched.proc.pid  # type: ignore[attr-defined]
    job = WorkerJob(**{**request(first).__dict__, "limits": Limits(wall_seconds=30)})
    assert tighter.run(job).header["consumer_set_size"] == 1  # other limits: not used either
    assert gone(pid)
    unused = warm.prestart(backend, str(first), None, "he")
    pid = unused.launched.proc.pid  # type: ignore[attr-defined]
    unused.close()
    unused.close()
    assert gone(pid)


def test_a_pool_keeps_one_worker_per_dataset_and_refills_after_each_job(
    tmp_path: Path, prestartable: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = prestartable
    a = write(tmp_path / "a.csv", "k\n13800000001\n")
    b = write(tmp_path / "b.csv", "k\n13800000001\n13800000002\n")
    pool = warm.WarmPool(backend, "he")
    try:
        pool.prepare(str(a), None)
        pool.prepare(str(a), None)  # one is waiting already
        assert list(pool.waiting) == [(str(a), backend.limits)]
        first = pool.waiting[(str(a), backend.limits)]
        assert pool.run(request(a)).header["consumer_set_size"] == 1
        assert first.launched is None  # type: ignore[attr-defined]  # it took the job
        deadline = time.monotonic() + 10
        while (str(a), backend.limits) not in pool.waiting and time.monotonic() < deadline:
            time.sleep(0.05)
        refill = pool.waiting[(str(a), backend.limits)]
        assert refill is not first
        monkeypatch.setattr(warm, "IDLE_SECONDS", 0.0)
        pid = refill.launched.proc.pid  # type: ignore[attr-defined]
        pool.prepare(str(b), None)  # a stale worker is ended on the next visit
        assert list(pool.waiting) == [(str(b), backend.limits)] and gone(pid)
    finally:
        pool.close()
    assert pool.waiting == {}


def test_an_unknown_family_is_refused(backend: Backend) -> None:
    with pytest.raises(ValueError, match=r"prewarm family: expected one of \['he'\], got 'psi'"):
        warm.prestart(backend, None, None, "psi")
