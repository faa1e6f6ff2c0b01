"""Jobs at the connector, for both roles: the consumer's own ``/api/jobs`` (submit, list, wait,
result pages) and the provider's ``/dsp/jobs`` (a job's framed request, the second message of a
provider-counted PSI, the consumer's withheld notice and its countersignature); a reviewed
script's submission and news between the two connectors."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from connectors import (
    job_store,
    jobs,
    psi_counted,
    psi_jobs,
    psi_sum,
    records,
    script_jobs,
    script_provider,
    script_run,
)
from connectors.errors import Refused
from connectors.requests import Countersignature, ScriptNews, ScriptSubmission, Withheld
from connectors.web.common import admin, ctx, framed, int_arg, peer
from node.web import body_as, json_body

jobs_api = Blueprint("jobs", __name__)

# the endpoints whose bodies may be as large as the connector's max_body_mb (base_app's bulk)
BULK = ("jobs.dsp_job", "jobs.dsp_job_count", "jobs.dsp_job_sum")


@jobs_api.post("/api/jobs")
def submit_job() -> Any:
    admin()
    job = jobs.submit(ctx(), jobs.job_request(json_body()))
    return jsonify(job_store.view(job)), 202


@jobs_api.get("/api/jobs")
def list_jobs() -> Any:
    admin()
    return {"jobs": [job_store.view(j) for j in job_store.list_all(ctx(), int_arg("limit", 100))]}


@jobs_api.post("/api/jobs/<path:job_id>/refresh")
def refresh_job(job_id: str) -> Any:
    """A script job: ask its provider where it is, in case a push of its news did not arrive."""
    admin()
    return job_store.view(script_jobs.refresh(ctx(), job_id))


@jobs_api.get("/api/jobs/<path:job_id>/result")
def job_result(job_id: str) -> Any:
    admin()
    return job_store.result(ctx(), job_id, int_arg("offset", 0), int_arg("limit", job_store.DEFAULT_PAGE))


@jobs_api.get("/api/jobs/<path:job_id>")
def show_job(job_id: str) -> Any:
    admin()
    if "wait" not in request.args:
        return job_store.view(job_store.get(ctx(), job_id))
    try:
        seconds = float(request.args["wait"])
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= job_store.MOST_WAIT_S:  # also refuses nan
        raise Refused(
            f"wait: expected seconds from 0 to {job_store.MOST_WAIT_S:g}, got {request.args['wait']!r}",
            status=400,
        )
    return job_store.view(job_store.wait(ctx(), job_id, seconds))


@jobs_api.post("/dsp/jobs")
def dsp_job() -> Any:
    caller = peer()
    return framed(jobs.handle_job(ctx(), caller, request.get_data(cache=True)))


@jobs_api.post("/dsp/jobs/<path:job_id>/count")
def dsp_job_count(job_id: str) -> Any:
    return framed(psi_counted.count(ctx(), peer(), job_id, request.get_data(cache=True)))


@jobs_api.post("/dsp/jobs/<path:job_id>/sum")
def dsp_job_sum(job_id: str) -> Any:
    """psi.sum's second message: the consumer's masked sums (connectors.psi_sum)."""
    return framed(psi_sum.finish(ctx(), peer(), job_id, request.get_data(cache=True)))


@jobs_api.post("/dsp/jobs/<path:job_id>/withheld")
def dsp_job_withheld(job_id: str) -> Any:
    return psi_jobs.on_withheld(ctx(), peer(), job_id, body_as(Withheld))


@jobs_api.post("/dsp/jobs/<path:job_id>/countersignature")
def dsp_countersignature(job_id: str) -> Any:
    records.on_countersignature(ctx(), peer(), job_id, body_as(Countersignature))
    return {}


@jobs_api.post("/dsp/scripts")
def dsp_script() -> Any:
    """A consumer's script (provider): admitted and queued, or denied with its record."""
    caller = peer()
    return jsonify(script_provider.on_submit(ctx(), caller, body_as(ScriptSubmission))), 202


@jobs_api.get("/dsp/jobs/<path:job_id>/script")
def dsp_script_news(job_id: str) -> Any:
    """Where a script job is (provider), for its consumer only."""
    return script_run.news(ctx(), job_id, peer())


@jobs_api.post("/dsp/jobs/<path:job_id>/script")
def dsp_script_told(job_id: str) -> Any:
    """The provider's news of one of our script jobs (consumer)."""
    caller = peer()
    script_jobs.on_news(ctx(), caller, job_id, body_as(ScriptNews))
    return {}
