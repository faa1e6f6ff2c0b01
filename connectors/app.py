"""The connector's HTTP API (Flask app factory).

``/api/...``  the participant's own people and CLI, with the connector's bearer tokens;
``/dsp/...``  other connectors, with RFC 9421-signed requests from admitted members:

    POST /dsp/negotiations/request                               ContractRequestMessage
    POST /dsp/negotiations/<pid>/agreement                       ContractAgreementMessage
    POST /dsp/negotiations/<pid>/agreement/verification          ContractAgreementVerificationMessage
    POST /dsp/negotiations/<pid>/events                          ContractNegotiationEventMessage
    POST /dsp/negotiations/<pid>/termination                     ContractNegotiationTerminationMessage
    GET  /dsp/negotiations/<pid>                                 ContractNegotiation
    POST /dsp/jobs                                               a job's protocol request (framed)
    POST /dsp/jobs/<job>/count                                   a provider-counted PSI's second message
    POST /dsp/jobs/<job>/withheld                                the consumer withheld a PSI result (k)
    POST /dsp/jobs/<job>/countersignature                        the consumer's record signature
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify, request

from connectors import (
    attempts,
    datasets,
    job_store,
    jobs,
    negotiation,
    outbox,
    psi_counted,
    psi_jobs,
    records,
)
from connectors.context import Connector
from connectors.errors import Refused
from connectors.models import SeenNonce, Token
from contracts import dsp
from node import signing
from node.config import NodeConfig
from node.db import Database
from node.signing import RemoteError
from node.web import base_app, json_body, require_token
from sandbox import framing


def framed(answer: tuple[dict[str, Any], list[bytes]]) -> Response:
    """A job service's answer (reply header, blobs) as the framed HTTP body."""
    header, blobs = answer
    return Response(framing.encode(header, blobs), mimetype=framing.MEDIA_TYPE)


def create_app(config: NodeConfig, *, db: Database | None = None, deliver: bool = True) -> Flask:
    ctx = Connector.build(config, db)
    # a job's framed request is the only large body; the Dataspace Protocol side is signed
    app = base_app(
        "connector",
        ctx.settings.max_body_mb << 20,
        bulk={"dsp_job": ctx.settings.max_body_mb << 20, "dsp_job_count": ctx.settings.max_body_mb << 20},
        signed=lambda path: path.startswith("/dsp/"),
    )
    app.extensions["tds"] = ctx
    attempts.recover(ctx)  # before the first request: no attempt of a stopped run stays pending
    if deliver:
        outbox.start(ctx)
    ctx.background(datasets.warm_up, ctx)

    def admin() -> None:
        require_token(ctx.db, Token, ("admin",))

    nonces = signing.NonceStore(ctx.db, SeenNonce)

    def peer() -> str:
        return signing.verify_incoming(nonces, config.url, ctx.space.public_key_of).key_id

    def int_arg(name: str, default: int) -> int:
        try:
            return int(request.args.get(name, default))
        except ValueError as exc:
            raise Refused(f"{name}: expected a whole number", status=400) from exc

    @app.get("/healthz")
    def healthz() -> Any:
        return {"status": "ok", "role": "connector", "id": ctx.id, "sandbox": ctx.backend.name}

    # --- own people -----------------------------------------------------------------------
    @app.get("/api/status")
    def status() -> Any:
        admin()
        return {
            "id": ctx.id,
            "url": config.url,
            "space": config.space_url,
            "sandbox": ctx.backend.name,
            "membership": ctx.space.participant(ctx.id, fresh=True),
        }

    @app.post("/api/datasets")
    def add_dataset() -> Any:
        admin()
        return jsonify(datasets.view(datasets.add(ctx, json_body(("name", "path", "key_column"))))), 201

    @app.get("/api/datasets")
    def list_datasets() -> Any:
        admin()
        return {"datasets": [datasets.view(d) for d in datasets.list_all(ctx)]}

    @app.get("/api/datasets/<name>")
    def show_dataset(name: str) -> Any:
        admin()
        return datasets.view(datasets.get(ctx, name))

    @app.post("/api/datasets/<name>/publish")
    def publish_dataset(name: str) -> Any:
        admin()
        entry = datasets.publish(ctx, name, json_body(("offers",))["offers"])
        ctx.background(datasets.warm_up, ctx)
        return jsonify(entry), 201 if entry["status"] == "published" else 202

    def space_call(func: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except RemoteError as exc:
            raise Refused(
                str(exc.problem.get("detail") or exc), status=exc.status or 502, kind="space"
            ) from exc

    @app.get("/api/catalog")
    def search_catalog() -> Any:
        admin()
        args = request.args
        return space_call(
            ctx.space.search,
            q=args.get("q"),
            sector=args.get("sector"),
            op=args.get("op"),
            limit=args.get("limit"),
        )

    @app.get("/api/catalog/<path:entry_id>")
    def show_catalog_entry(entry_id: str) -> Any:
        admin()
        return space_call(ctx.space.entry, entry_id)

    @app.post("/api/contracts")
    def request_contract() -> Any:
        admin()
        body = json_body(("offer", "purpose", "operations"))
        if not isinstance(body["operations"], list):
            raise Refused("operations: expected a list")
        neg = negotiation.request(
            ctx, str(body["offer"]), str(body["purpose"]), body["operations"], body.get("price")
        )
        return jsonify(negotiation.view(neg)), 201

    @app.get("/api/contracts")
    def list_contracts() -> Any:
        admin()
        return {"contracts": [negotiation.view(n) for n in negotiation.list_all(ctx)]}

    @app.get("/api/contracts/<path:ref>")
    def show_contract(ref: str) -> Any:
        admin()
        return negotiation.view(negotiation.find(ctx, ref))

    @app.post("/api/contracts/<path:ref>/approve")
    def approve_contract(ref: str) -> Any:
        admin()
        return negotiation.view(negotiation.approve(ctx, ref))

    @app.post("/api/contracts/<path:ref>/reject")
    def reject_contract(ref: str) -> Any:
        admin()
        neg = negotiation.find(ctx, ref, role="provider")
        if neg.state != "REQUESTED":
            raise Refused(
                f"negotiation {neg.id} is {neg.state}; only a REQUESTED one can be rejected", status=409
            )
        reason = str((request.get_json(silent=True) or {}).get("reason") or "rejected by the provider")
        return negotiation.view(negotiation.terminate(ctx, ref, reason))

    @app.post("/api/contracts/<path:ref>/terminate")
    def terminate_contract(ref: str) -> Any:
        admin()
        reason = str((request.get_json(silent=True) or {}).get("reason") or "terminated")
        return negotiation.view(negotiation.terminate(ctx, ref, reason))

    @app.post("/api/jobs")
    def submit_job() -> Any:
        admin()
        job = jobs.submit(ctx, json_body(("operation",)))
        return jsonify(job_store.view(job)), 202

    @app.get("/api/jobs")
    def list_jobs() -> Any:
        admin()
        return {"jobs": [job_store.view(j) for j in job_store.list_all(ctx, int_arg("limit", 100))]}

    @app.get("/api/jobs/<path:job_id>/result")
    def job_result(job_id: str) -> Any:
        admin()
        return job_store.result(ctx, job_id, int_arg("offset", 0), int_arg("limit", job_store.DEFAULT_PAGE))

    @app.get("/api/jobs/<path:job_id>")
    def show_job(job_id: str) -> Any:
        admin()
        if "wait" not in request.args:
            return job_store.view(job_store.get(ctx, job_id))
        try:
            seconds = float(request.args["wait"])
        except ValueError:
            seconds = -1.0
        if not 0 <= seconds <= job_store.MOST_WAIT_S:  # also refuses nan
            raise Refused(
                f"wait: expected seconds from 0 to {job_store.MOST_WAIT_S:g}, got {request.args['wait']!r}",
                status=400,
            )
        return job_store.view(job_store.wait(ctx, job_id, seconds))

    @app.get("/api/outbox")
    def show_outbox() -> Any:
        admin()
        return {"pending": [outbox.view(r) for r in outbox.pending(ctx)]}

    @app.get("/api/outbox/receipts")
    def outbox_receipts() -> Any:
        admin()
        return {"receipts": outbox.receipts(ctx)}

    @app.post("/api/outbox/flush")
    def flush_outbox() -> Any:
        admin()
        return outbox.deliver_due(ctx)

    # --- peers (Dataspace Protocol and jobs) ----------------------------------------------
    @app.post("/dsp/negotiations/request")
    def dsp_request() -> Any:
        caller = peer()
        neg, _ = negotiation.on_request(ctx, caller, json_body())
        body = dsp.contract_negotiation(consumer_pid=neg.consumer_pid, provider_pid=neg.id, state=neg.state)
        return jsonify(body), 201

    @app.get("/dsp/negotiations/<path:pid>")
    def dsp_show(pid: str) -> Any:
        caller = peer()
        neg = negotiation.find(ctx, pid)
        if caller != neg.peer_id:
            raise Refused(f"{caller} is not a party to negotiation {pid}", status=403)
        return dsp.contract_negotiation(
            consumer_pid=neg.consumer_pid, provider_pid=neg.provider_pid or "", state=neg.state
        )

    @app.post("/dsp/negotiations/<path:pid>/agreement/verification")
    def dsp_verification(pid: str) -> Any:
        negotiation.on_verification(ctx, peer(), pid, json_body())
        return {}

    @app.post("/dsp/negotiations/<path:pid>/agreement")
    def dsp_agreement(pid: str) -> Any:
        negotiation.on_agreement(ctx, peer(), pid, json_body())
        return {}

    @app.post("/dsp/negotiations/<path:pid>/events")
    def dsp_events(pid: str) -> Any:
        negotiation.on_event(ctx, peer(), pid, json_body())
        return {}

    @app.post("/dsp/negotiations/<path:pid>/termination")
    def dsp_termination(pid: str) -> Any:
        negotiation.on_termination(ctx, peer(), pid, json_body())
        return {}

    @app.post("/dsp/agreements/<path:agreement_id>/termination")
    def space_termination(agreement_id: str) -> Any:
        # signed by the space's key, pinned when this connector registered
        pinned = ctx.settings.space_public_key
        signing.verify_incoming(nonces, config.url, lambda kid: pinned if kid == "space" else None)
        negotiation.on_space_termination(ctx, agreement_id, json_body())
        return {}

    @app.post("/dsp/jobs")
    def dsp_job() -> Any:
        caller = peer()
        return framed(jobs.handle_job(ctx, caller, request.get_data(cache=True)))

    @app.post("/dsp/jobs/<path:job_id>/count")
    def dsp_job_count(job_id: str) -> Any:
        return framed(psi_counted.count(ctx, peer(), job_id, request.get_data(cache=True)))

    @app.post("/dsp/jobs/<path:job_id>/withheld")
    def dsp_job_withheld(job_id: str) -> Any:
        return psi_jobs.on_withheld(ctx, peer(), job_id, json_body(("record",)))

    @app.post("/dsp/jobs/<path:job_id>/countersignature")
    def dsp_countersignature(job_id: str) -> Any:
        records.on_countersignature(ctx, peer(), job_id, json_body())
        return {}

    return app
