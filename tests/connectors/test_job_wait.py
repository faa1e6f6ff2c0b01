"""Waiting for a job's end (GET /api/jobs/<id>?wait=S): the answer comes the moment the job
ends, or when the wait is over; waiters beyond the seats are answered at once."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from connectors import job_store
from connectors.context import Connector, JobChanges
from connectors.errors import NotFound
from connectors.models import Job
from node.db import Database, migrate


@pytest.fixture
def ctx(tmp_path: Path) -> Connector:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    migrate(url, "connectors:migrations")
    shared = SimpleNamespace(db=Database(url), job_changes=JobChanges(most=2), stopping=threading.Event())
    with shared.db.transaction() as session:
        session.add(Job(id="j1", role="consumer", agreement_id="a1", peer_id="p", operation="he.score",
                        status="running"))  # fmt: skip
    return cast(Connector, shared)


def end_later(ctx: Connector, seconds: float, **changes: Any) -> threading.Timer:
    timer = threading.Timer(seconds, job_store.update, args=(ctx, "j1"), kwargs=changes)
    timer.start()
    return timer


def test_the_answer_comes_when_the_job_ends(ctx: Connector) -> None:
    end_later(ctx, 0.1, phase="provider", progress=0.5)  # a change that is not the end
    end_later(ctx, 0.4, status="succeeded", phase="done", progress=1.0)
    started = time.monotonic()
    job = job_store.wait(ctx, "j1", 30)
    waited = time.monotonic() - started
    assert (job.status, job.phase) == ("succeeded", "done")
    assert 0.4 <= waited < 1.5


def test_a_running_job_is_answered_when_the_wait_is_over(ctx: Connector) -> None:
    started = time.monotonic()
    job = job_store.wait(ctx, "j1", 0.3)
    assert job.status == "running"
    assert 0.3 <= time.monotonic() - started < 1.3


def test_an_ended_job_is_answered_at_once(ctx: Connector) -> None:
    job_store.update(ctx, "j1", status="failed", phase="done")
    started = time.monotonic()
    assert job_store.wait(ctx, "j1", 30).status == "failed"
    assert time.monotonic() - started < 0.2


def test_waiters_beyond_the_seats_are_answered_at_once(ctx: Connector) -> None:
    seated = [threading.Thread(target=job_store.wait, args=(ctx, "j1", 2)) for _ in range(2)]
    for thread in seated:
        thread.start()
    time.sleep(0.2)  # both seats taken
    started = time.monotonic()
    assert job_store.wait(ctx, "j1", 30).status == "running"
    assert time.monotonic() - started < 0.2
    job_store.update(ctx, "j1", status="succeeded")
    for thread in seated:
        thread.join(2)
        assert not thread.is_alive()
    assert job_store.wait(ctx, "j1", 30).status == "succeeded"  # the seats were given back


def test_an_unknown_job_is_not_found(ctx: Connector) -> None:
    with pytest.raises(NotFound, match=r"^404 Not found: no job 'j2' at this connector$"):
        job_store.wait(ctx, "j2", 1)
    assert ctx.job_changes.seat()  # and its seat was given back
