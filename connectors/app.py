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
    POST /dsp/scripts                                            a consumer's reviewed script
    GET  /dsp/jobs/<job>/script, POST (consumer)                 a script job's news

``/review/...``  the review console for the provider's reviewers (connectors.console).
``/metrics``    Prometheus's text format, with an admin token (connectors.metrics).
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from connectors import attempts, console, datasets, membership, outbox, script_provider
from connectors.context import Connector
from connectors.models import SeenNonce
from connectors.web.api import api
from connectors.web.common import admin
from connectors.web.dsp import dsp
from connectors.web.jobs import BULK, jobs_api
from connectors.web.reviews import reviews_api
from node import metrics, signing
from node.config import NodeConfig
from node.db import Database
from node.web import base_app


def create_app(config: NodeConfig, *, db: Database | None = None, deliver: bool = True) -> Flask:
    ctx = Connector.build(config, db)
    # a job's framed request is the only large body; the Dataspace Protocol side is signed
    app = base_app(
        "connector",
        ctx.settings.max_body_mb << 20,
        bulk=dict.fromkeys(BULK, ctx.settings.max_body_mb << 20),
        signed=lambda path: path.startswith("/dsp/"),
    )
    app.extensions["tds"] = ctx
    app.extensions["tds.nonces"] = signing.NonceStore(ctx.db, SeenNonce)
    for blueprint in (api, dsp, jobs_api, reviews_api):
        app.register_blueprint(blueprint)
    console.install(app, ctx)  # the review console at /review/
    metrics.install(app, ctx.registry, admin)
    attempts.recover(ctx)  # before the first request: no attempt of a stopped run stays pending
    script_provider.recover(ctx)  # then the script jobs those attempts belonged to
    if deliver:
        outbox.start(ctx)
        membership.start(ctx)  # renews its own credential in its last 30 days
    ctx.background(datasets.warm_up, ctx)

    @app.get("/healthz")
    def healthz() -> Any:
        return {"status": "ok", "role": "connector", "id": ctx.id, "sandbox": ctx.backend.name}

    return app
