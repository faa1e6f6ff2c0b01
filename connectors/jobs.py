"""Jobs at a connector, for both roles: the one entry point that hands a job to its operation's
family (policies.operations says which), and the provider's parse of a job request.

Consumer: ``submit`` checks the request and the family creates and starts the job
(connectors.psi_jobs, connectors.he_jobs, connectors.script_jobs). Provider: ``handle_job``
parses the framed request once, then the family's compute step runs inside the one skeleton of
connectors.provider (guard → reserve → sandbox → record → answer); a script's provider side
waits for people between its steps, so it has modules of its own (connectors.script_provider,
script_review, script_run). The job rows live in connectors.job_store, the usage records in
connectors.records.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connectors import he_jobs, he_provider, provider, psi_counted, psi_jobs, psi_sum, script_jobs
from connectors.context import Connector
from connectors.errors import Refused
from connectors.models import Job
from connectors.requests import AggregateJob, JobRequest, PsiJob, PsiJobHeader, ScoreJob, ScriptJob
from node.bodies import parse, problems_of
from policies import operations
from policies.errors import UnknownOperation
from sandbox import framing
from sandbox.limits import MiB

# the families this connector runs, for each role
SUBMIT: dict[str, Callable[[Connector, Any], Job]] = {
    "psi": psi_jobs.submit,
    "he": he_jobs.submit,
    "script": script_jobs.submit,
}
# the typed request of each operation this connector submits (connectors.requests)
REQUESTS: dict[str, type[JobRequest]] = {
    **{op: PsiJob for op in operations.names("psi")},
    "he.score": ScoreJob,
    "he.aggregate": AggregateJob,
    "script": ScriptJob,
}


def family(operation: object) -> str:
    """The family that runs ``operation`` here, or a refusal naming what this connector runs."""
    runnable = operations.names(*SUBMIT)
    try:
        entry = operations.get(operation)
    except UnknownOperation:
        entry = None
    if entry is None or entry.family not in SUBMIT:
        raise Refused(f"operation {operation!r}: this connector runs {list(runnable)}")
    return entry.family


def job_request(body: dict[str, Any]) -> JobRequest:
    """A job request body as its operation's typed request (REQUESTS), or a refusal naming
    the operations this connector runs, or every wrong field."""
    operation = body.get("operation")
    family(operation)
    return parse(REQUESTS[str(operation)], body, f"{operation} request")


def submit(ctx: Connector, request: JobRequest) -> Job:
    """Start a job from its typed request; a bad input is refused and nothing is created."""
    return SUBMIT[family(request.operation)](ctx, request)


def parse_request(body: bytes, cap: int) -> tuple[dict[str, Any], list[bytes]]:
    """The framed job request's header and blobs; the header's fields are checked here for PSI
    (the he family checks its parameters itself, connectors.he_jobs)."""
    try:
        header, blobs = framing.decode(body, cap)
    except framing.FrameError as exc:
        raise Refused(f"job request: {exc}", status=400) from exc
    if header.get("operation") in operations.names("he"):
        if not all(isinstance(header.get(k), str) for k in ("job", "agreement")):
            raise Refused("job request: expected job and agreement ids", status=400)
        return header, blobs
    psi = operations.names("psi")
    wrong = problems_of(PsiJobHeader, header)
    if header.get("operation") not in psi:
        wrong.append(f"operation: expected one of {list(psi)}, got {header.get('operation')!r}")
    if len(blobs) != 1:
        wrong.append(f"blobs: expected the consumer's one blob, got {len(blobs)}")
    if wrong:
        raise Refused(f"job request: {'; '.join(wrong)}", status=400)
    return header, blobs


def handle_job(ctx: Connector, caller: str, body: bytes) -> provider.Answer:
    """A consumer's job request at the provider: the reply header (with the signed usage
    record) and its blobs, or a problem carrying the record of the denial or failure."""
    header, blobs = parse_request(body, ctx.settings.max_body_mb * MiB)
    if header["operation"] in operations.names("he"):
        return he_provider.handle_job(ctx, caller, header, blobs)
    with ctx.db.session() as session:
        if session.get(Job, header["job"]) is not None:
            raise Refused(f"job id {header['job']} was already used; a job runs once", status=409)
    if header["operation"] == psi_sum.OPERATION:
        return psi_sum.start(ctx, caller, header, blobs)
    if header.get("mode") is not None:
        if header["mode"] != psi_counted.MODE:
            raise Refused(
                f"job request mode: expected {psi_counted.MODE!r} or none, got {header['mode']!r}", status=400
            )
        return psi_counted.start(ctx, caller, header, blobs)
    return provider.provide(
        ctx, caller, header, psi_jobs.compute(ctx, header, blobs), attempt_id=header["job"]
    )
