"""The space's HTTP API (Flask app factory).

Participants call it with RFC 9421-signed requests; people (operator, auditors) with bearer
tokens. Every error is problem+json. Routes:

    GET  /healthz, /.well-known/tds                    public
    POST /participants                                 signed by the registering key
    GET  /participants/<id>                            signed (admitted, or the participant itself)
    GET  /catalog, /catalog/<id>, /catalog/offers/<id> signed
    GET  /catalog.jsonld                               public: DSP Catalog (DCAT JSON-LD)
    POST /catalog                                      signed provider: publish an entry
    POST /agreements, /agreements/<id>/termination     signed party
    GET  /agreements/<id>                              signed party, or operator/auditor token
    GET  /aggregations/<job>/providers                 signed provider in the aggregation
    POST /ledger/records, /ledger/batch                signed party: append usage records → receipts
    GET  /ledger/records[/<id>], /ledger/head[s],      operator/auditor token (everything), or signed
         /ledger/proof/inclusion|consistency           participant (its own records; heads, proofs)
    GET  /ledger/alerts                                operator/auditor token
    GET  /admin/disputes                               operator/auditor token: uses only their provider signed
    POST /admin/disputes/<record>/decision             operator token: bill or void one, a leaf in the log
    POST /admin/settlements                            operator token: settle a closed period
    GET  /settlements/<period>                         operator/auditor token
    GET  /settlements/<period>/statements/<id>.json|csv  operator/auditor token, or that participant
    GET  /market/index                                 token or signed participant
    POST /aggregations, GET /aggregations/<job>        signed consumer: open, then read the total
    POST /aggregations/<job>/contributions             signed provider: its ciphertext (or why none)
    GET  /admin/actions                                operator/auditor token: the log of operator actions
    /admin/...                                         operator token (each action logged)
    /console/...                                       the web console (space/console): HTML pages,
                                                       a session from signing in with a token
    GET  /metrics                                      operator token: Prometheus's text format
    GET  /admin/health                                 operator/auditor token: tds status
"""

from __future__ import annotations

from typing import Any

from flask import Flask, request

from contracts.keys import SigningKey
from node import metrics, signing
from node.config import NodeConfig
from node.db import Database
from node.egress import GuardedBackend
from node.models import utcnow
from node.web import base_app, require_token
from space import console, disputes, tree
from space import metrics as space_metrics
from space.models import SeenNonce, Token
from space.settings import SpaceSettings
from space.web.admin import admin_api
from space.web.aggregations import aggregations_api
from space.web.agreements import agreements_api
from space.web.catalog import catalog_api
from space.web.ledger import ledger_api
from space.web.participants import participants_api
from space.web.settlement import settlement_api

BLUEPRINTS = (participants_api, catalog_api, agreements_api, ledger_api, aggregations_api, settlement_api,
              admin_api)  # fmt: skip


def create_app(config: NodeConfig, *, db: Database | None = None, key: SigningKey | None = None) -> Flask:
    settings = SpaceSettings.from_options(config.options)
    # every body the space takes is JSON (node.web.MAX_JSON at most); only operators and people
    # with tokens use /admin and /console, everything else is a signed node
    app = base_app(
        "space",
        settings.max_body_mb << 20,
        signed=lambda path: request.method == "POST" and not path.startswith(("/admin/", "/console")),
    )
    database = db or Database(config.db, durable=True)
    space_key = key or config.key()
    with database.write_lock, database.transaction() as session:
        # leaves committed just before a crash get their signed head now
        tree.sign_head(session, space_key, config.url, utcnow())
    disputes.adopt_late(database, space_key, config.url, utcnow)
    app.extensions["tds"] = {
        "db": database,
        "config": config,
        "settings": settings,
        "key": space_key,
        "egress": GuardedBackend(settings.endpoint_denied_ranges, settings.dev_mode),
        "nonces": signing.NonceStore(database, SeenNonce),
        "adders": [],  # the ciphertext adders' warm pool, made on first use (space.web.common)
        "metrics": space_metrics.new(database),
    }
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)

    @app.get("/healthz")
    def healthz() -> Any:
        return {"status": "ok", "role": "space"}

    console.install(app, database, settings, space_key, config)
    metrics.install(
        app, app.extensions["tds"]["metrics"].registry, lambda: require_token(database, Token, ("operator",))
    )
    return app
