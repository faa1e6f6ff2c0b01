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


class Watched(JobChanges):
    """The connector's JobChanges, telling the test what its waiters do, so that no test has to
    guess with a clock whether a waiter sat down, waited, or was answered at once."""

    def __init__(self, most: int) -> None:
        super().__init__(most)
        self.lock = threading.Condition()
        self.seated = self.refused = self.waits = 0
        self.waited_by: set[int] = set()  # the threads that waited at least once

    def seat(self) -> bool:
        taken = super().seat()
        with self.lock:
            self.seated += taken
            self.refused += not taken
            self.lock.notify_all()
        return taken

    def leave(self) -> None:
        with self.lock:
            self.seated -= 1
        super().leave()

    def wait(self, seen: int, timeout: float) -> int:
        with self.lock:
            self.waits += 1
            self.waited_by.add(threading.get_ident())
            self.lock.notify_all()
        return super().wait(seen, timeout)

    def until(self, condition: Any) -> None:
        with self.lock:
            assert self.lock.wait_for(lambda: condition(self), 30), "the waiters never got there"


@pytest.fixture
def ctx(tmp_path: Path) -> Connector:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    migrate(url, "connectors:migrations")
    shared = SimpleNamespace(db=Database(url), job_changes=Watched(most=2), stopping=threading.Event())
    with shared.db.transaction() as session:
        session.add(Job(id="j1", role="consumer", agreement_id="a1", peer_id="p", operation="he.score",
                        status="running"))  # fmt: skip
    return cast(Connector, shared)


def changes(ctx: Connector) -> Watched:
    return cast(Watched, ctx.job_changes)


def waiting(ctx: Connector, seconds: float) -> tuple[threading.Thread, list[Job]]:
    """A waiter in its own thread, as a request would be; its answer lands in the list."""
    answer: list[Job] = []
    thread = threading.Thread(target=lambda: answer.append(job_store.wait(ctx, "j1", seconds)))
    thread.start()
    return thread, answer


def test_the_answer_comes_when_the_job_ends(ctx: Connector) -> None:
    thread, answer = waiting(ctx, 30)
    changes(ctx).until(lambda w: w.waits >= 1)  # seated and waiting on the running job
    before = changes(ctx).waits
    job_store.update(ctx, "j1", phase="provider", progress=0.5)  # a change that is not the end
    changes(ctx).until(lambda w: w.waits > before)  # it looked, and waits again
    assert answer == []
    job_store.update(ctx, "j1", status="succeeded", phase="done", progress=1.0)
    thread.join(30)
    assert [(job.status, job.phase) for job in answer] == [("succeeded", "done")]
    assert changes(ctx).seated == 0  # its seat was given back


def test_a_running_job_is_answered_when_the_wait_is_over(ctx: Connector) -> None:
    started = time.monotonic()
    job = job_store.wait(ctx, "j1", 0.3)
    assert job.status == "running"
    assert time.monotonic() - started >= 0.3  # it waited the whole time, however busy the machine


def test_an_ended_job_is_answered_at_once(ctx: Connector) -> None:
    job_store.update(ctx, "j1", status="failed", phase="done")
    assert job_store.wait(ctx, "j1", 30).status == "failed"
    assert changes(ctx).waits == 0 and changes(ctx).seated == 0  # answered without waiting


def test_waiters_beyond_the_seats_are_answered_at_once(ctx: Connector) -> None:
    seated = [waiting(ctx, 30) for _ in range(2)]
    changes(ctx).until(lambda w: w.seated == 2 and len(w.waited_by) == 2)  # both seats taken
    assert job_store.wait(ctx, "j1", 30).status == "running"
    assert changes(ctx).refused == 1  # the third found no seat
    assert threading.get_ident() not in changes(ctx).waited_by  # and was answered without waiting
    job_store.update(ctx, "j1", status="succeeded")
    for thread, answer in seated:
        thread.join(30)
        assert [job.status for job in answer] == ["succeeded"]
    assert job_store.wait(ctx, "j1", 30).status == "succeeded"  # the seats were given back
    assert changes(ctx).refused == 1


def test_an_unknown_job_is_not_found(ctx: Connector) -> None:
    with pytest.raises(NotFound, match=r"^404 Not found: no job 'j2' at this connector$"):
        job_store.wait(ctx, "j2", 1)
    assert ctx.job_changes.seat()  # and its seat was given back
