"""Runs that wait at the provider between a consumer's two messages (the provider-counted PSI
of connectors.psi_counted, psi.sum of connectors.psi_sum): what the provider keeps of the first
step — its own keys, which never leave it — for the connector's ``psi_wait_s`` seconds (600 by
default), in this process's memory only, and the end of a run whose consumer never sends the
second.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from dataclasses import dataclass, field
from typing import Any, NoReturn

from connectors import records
from connectors.attempts import Attempt
from connectors.context import Connector, log
from connectors.errors import NotFound
from connectors.models import Job, JobStatus, Negotiation
from contracts.usage import Outcome
from node.problems import Problem
from sandbox import framing


@dataclass
class Waiting:
    """A run between its two steps, at the provider."""

    caller: str
    header: dict[str, Any]
    neg_id: str
    purpose: str | None
    dataset_id: str | None
    offer_id: str
    provider_set_size: int
    started: dt.datetime
    kept: dict[str, Any] = field(default_factory=dict)  # the step's own: keys, setup, labels …
    wait_s: float = 0.0  # how long it waits for the second message (set by :func:`keep`)
    deadline: float = 0.0  # time.monotonic() when it ends unanswered


_WAITING: dict[tuple[str, str], Waiting] = {}  # (connector id, job id) → its first step
_LOCK = threading.Lock()


def keep(ctx: Connector, run: Waiting) -> float:
    """Keep ``run`` for its consumer's second message, and end it if that never comes; returns
    how long it waits, in seconds (the provider's reply tells the consumer)."""
    wait = ctx.settings.psi_wait_s
    run = dataclasses.replace(run, wait_s=wait, deadline=time.monotonic() + wait)
    with _LOCK:
        _WAITING[(ctx.id, run.header["job"])] = run
    timer = threading.Timer(wait + 0.5, end_expired, (ctx,))
    timer.daemon = True
    timer.start()
    return wait


def take(ctx: Connector, caller: str, job_id: str) -> Waiting:
    """The run ``job_id`` of ``caller``, which its second message ends here."""
    end_expired(ctx)
    with _LOCK:
        run = _WAITING.get((ctx.id, job_id))
        if run is None or run.caller != caller:
            raise NotFound(f"no PSI run {job_id} waits for {caller}'s second message here")
        del _WAITING[(ctx.id, job_id)]
    return run


def send_second(
    ctx: Connector, endpoint: str, job_id: str, step: str, blobs: list[bytes], timeout: float
) -> Any:
    """The consumer's side: its second message of run ``job_id`` to ``/jobs/<job>/<step>``."""
    return ctx.client.send(
        "POST",
        f"{endpoint}/jobs/{job_id}/{step}",
        content=framing.encode({"job": job_id}, blobs),
        content_type=framing.MEDIA_TYPE,
        timeout=timeout,
    )


def refuse(ctx: Connector, caller: str, header: dict[str, Any], attempt: Attempt) -> NoReturn:
    """Record a denial or failure of a first step; record_attempt raises it as a problem
    carrying the record."""
    records.record_attempt(ctx, caller, header, attempt, job_id=header["job"])
    raise AssertionError(f"record_attempt returned for a {attempt.outcome} attempt")


def finished_withheld(
    ctx: Connector, job: Job, neg: Negotiation, signed_record: Any, metrics: dict[str, Any]
) -> bool:
    """The consumer's side: end ``job`` withheld when the provider's record says it withheld the
    result (k checked on its own counts); False when the record says otherwise."""
    if (signed_record or {}).get("document", {}).get("outcome") != Outcome.WITHHELD:
        return False
    records.finish(
        ctx,
        job,
        neg,
        signed_record,
        status=JobStatus.WITHHELD,
        error=f"{signed_record['document']['reason']}; the provider counted it",
        result=None,
        metrics=metrics,
        record_outcome=Outcome.WITHHELD,
    )
    return True


def end_expired(ctx: Connector) -> int:
    """Ends the runs whose consumer never sent its second step: failed by the consumer (it
    learned |B| and walked away), so the use and any ε stay spent, with no fee."""
    now = time.monotonic()
    with _LOCK:
        gone = [key for key, run in _WAITING.items() if key[0] == ctx.id and run.deadline < now]
        ended = [_WAITING.pop(key) for key in gone]
    for run in ended:
        reason = f"the consumer did not send the second PSI message within {run.wait_s:g} s"
        attempt = Attempt(
            Outcome.FAILED, reason, 410, run.dataset_id, run.purpose, 0, run.started, run.provider_set_size
        )
        try:
            records.record_attempt(ctx, run.caller, run.header, attempt, job_id=run.header["job"])
        except Problem:  # the refusal that would carry the record: nobody waits for it
            log.info("PSI run %s ended: %s", run.header["job"], reason)
    return len(ended)
