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
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, request
from sqlalchemy import select

from contracts.errors import RequestSignatureError
from contracts.keys import SigningKey
from node import signing
from node.config import NodeConfig
from node.db import Database
from node.egress import GuardedBackend
from node.models import utcnow
from node.problems import Problem
from node.web import base_app, json_body, require_token, token_of
from policies.negative_list import ListRule, parse_rules
from sandbox import warm
from sandbox.backends import create_backend
from sandbox.limits import Limits
from space import aggregation, agreements, catalog, console, ledger, notify, operator, registry, settlement
from space.errors import AlertingConflict, NotFound, Refused
from space.models import Participant, SeenNonce, Token
from space.settings import SpaceSettings

NEGATIVE_LIST = "negative_list.json"


def load_negative_list(data_dir: Path) -> tuple[ListRule, ...]:
    return parse_rules(json.loads((data_dir / NEGATIVE_LIST).read_text("utf-8")))


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
        ledger.sign_head(session, space_key, config.url, utcnow())
    ledger.adopt_late(database, space_key, config.url, utcnow)
    app.extensions["tds"] = {"db": database, "config": config}
    egress = GuardedBackend(settings.endpoint_denied_ranges, settings.dev_mode)
    nonces = signing.NonceStore(database, SeenNonce)

    def key_of(allowed: tuple[str, ...], self_id: str | None = None) -> Any:
        def resolve(key_id: str) -> str | None:
            with database.session() as session:
                participant = session.get(Participant, key_id)
            if participant is None:
                return None
            if participant.status == "suspended":
                raise RequestSignatureError(f"participant {key_id} is suspended")
            if participant.status in allowed or key_id == self_id:
                if participant.status == "admitted" and not registry.credential_valid(participant, utcnow()):
                    raise RequestSignatureError(f"membership credential of {key_id} has expired")
                return participant.public_key
            raise RequestSignatureError(f"participant {key_id} is {participant.status}, not admitted")

        return resolve

    def tell_parties(view: dict[str, Any]) -> None:
        """After the termination is committed: tell both parties' connectors at once."""
        with database.session() as session:
            parties = [registry.get(session, pid) for pid in (view["provider"], view["consumer"])]
        notify.termination(space_key, view, [p.endpoint for p in parties], egress)

    def signed_caller(self_id: str | None = None) -> str:
        verified = signing.verify_incoming(nonces, config.url, key_of(("admitted",), self_id))
        return verified.key_id

    def token_or_caller(roles: tuple[str, ...] = ("operator", "auditor")) -> tuple[str, str]:
        """("token", role) for a person with a token, ("participant", id) for a signed node."""
        if request.headers.get("Authorization"):
            return "token", require_token(database, Token, roles)
        return "participant", signed_caller()

    def operator_actor() -> str:
        """The operator making this request, as the log of operator actions names them."""
        return operator.actor_of(token_of(database, Token, ("operator",)))

    @app.get("/healthz")
    def healthz() -> Any:
        return {"status": "ok", "role": "space"}

    @app.get("/.well-known/tds")
    def well_known() -> Any:
        return {
            "id": registry.SPACE_ID,
            "role": "space",
            "url": config.url,
            "public_key": space_key.public_key,
            # the endpoint policy its members' connectors check every connection against
            "endpoints": {"denied": list(settings.endpoint_denied_ranges), "loopback": settings.dev_mode},
        }

    # --- participants ---------------------------------------------------------------------
    @app.post("/participants")
    def register() -> Any:
        body = json_body()
        fields = registry.validate_registration(body)
        # proof of possession: the registration is signed by the key it registers
        signing.verify_incoming(
            nonces, config.url, lambda kid: fields["public_key"] if kid == fields["id"] else None
        )
        registry.check_endpoint(fields["endpoint"], settings)  # resolved only for a signed request
        with database.transaction() as session:
            participant, created = registry.register(session, fields)
            if created and settings.auto_admit:
                registry.admit(session, participant.id, space_key, utcnow(), settings.credential_days)
            view = registry.public_view(participant)
        return jsonify(view), 201 if created else 200

    @app.get("/participants/<pid>")
    def participant(pid: str) -> Any:
        if request.headers.get("Authorization"):
            kind, who = "token", require_token(database, Token, ("operator", "auditor"))
        else:  # a pending participant may read its own registration, to learn when it is admitted
            kind, who = "participant", signed_caller(self_id=pid)
        with database.session() as session:
            found = registry.get(session, pid)
            if kind == "participant" and who != pid and found.status == "pending":
                raise Problem(404, "Not found", f"no participant {pid!r}", kind="not-found")
            return registry.public_view(found)

    # --- catalog --------------------------------------------------------------------------
    @app.post("/catalog")
    def publish() -> Any:
        caller = signed_caller()
        rules = load_negative_list(config.path)
        with database.transaction() as session:
            provider = registry.get(session, caller)
            entry = catalog.publish(session, provider, json_body(), rules, settings)
            view = catalog.entry_view(session, entry, provider)
        return jsonify(view), 201 if entry.status == "published" else 202

    @app.get("/catalog")
    def search() -> Any:
        token_or_caller()
        try:
            limit = int(request.args.get("limit", 50))
        except ValueError as exc:
            raise Refused("limit: expected a whole number", status=400) from exc
        with database.session() as session:
            found = catalog.search(
                session,
                request.args.get("q", ""),
                request.args.get("sector") or None,
                request.args.get("op") or None,
                limit,
            )
            return {"results": [catalog.entry_view(session, e) for e in found]}

    @app.get("/catalog/<path:entry_id>")
    def show_entry(entry_id: str) -> Any:
        token_or_caller()
        with database.session() as session:
            return catalog.entry_view(session, catalog.get_entry(session, entry_id))

    @app.get("/catalog/offers/<path:offer_id>")
    def show_offer(offer_id: str) -> Any:
        token_or_caller()
        with database.session() as session:
            offer, entry = catalog.get_offer(session, offer_id)
            return {"offer": {"id": offer.id, **offer.document}, "entry": catalog.entry_view(session, entry)}

    @app.get("/catalog.jsonld")
    def dcat() -> Response:
        with database.session() as session:
            body = catalog.dcat_catalog(session, config.url)
        return Response(json.dumps(body, ensure_ascii=False), mimetype="application/ld+json")

    # --- agreements -----------------------------------------------------------------------
    @app.post("/agreements")
    def record_agreement() -> Any:
        caller = signed_caller()
        with database.transaction() as session:
            agreement, created = agreements.record(session, caller, json_body())
            view = agreements.view(agreement)
        return jsonify(view), 201 if created else 200

    @app.get("/agreements/<path:agreement_id>")
    def show_agreement(agreement_id: str) -> Any:
        kind, who = token_or_caller()
        with database.session() as session:
            agreement = agreements.get(session, agreement_id)
            if kind == "participant" and who not in (agreement.provider_id, agreement.consumer_id):
                raise Refused(f"{who} is not a party to agreement {agreement_id}", status=403)
            return agreements.view(agreement)

    @app.post("/agreements/<path:agreement_id>/termination")
    def terminate_agreement(agreement_id: str) -> Any:
        caller = signed_caller()
        reason = str(json_body().get("reason", ""))
        with database.transaction() as session:
            view = agreements.view(agreements.terminate(session, agreement_id, caller, reason, utcnow()))
        tell_parties(view)
        return view

    # --- ledger: a transparency log ----------------------------------------------------------
    def append(caller: str, bodies: list[Any]) -> list[dict[str, Any]]:
        return ledger.append(database, space_key, config.url, caller, bodies, utcnow)

    @app.post("/ledger/records")
    def append_record() -> Any:
        (receipt,) = append(signed_caller(), [json_body()])
        return jsonify(receipt), 201 if receipt["created"] else 200

    @app.post("/ledger/batch")
    def append_batch() -> Any:
        caller = signed_caller()
        records = json_body(("records",))["records"]
        if not isinstance(records, list) or not 1 <= len(records) <= ledger.MAX_BATCH:
            raise Refused(f"records: expected a list of 1 to {ledger.MAX_BATCH} signed usage records")
        return {"receipts": append(caller, records)}

    def reader() -> str | None:
        """Who reads the log: None for an operator or auditor (everything), else the participant
        (its own records only)."""
        kind, who = token_or_caller()
        return who if kind == "participant" else None

    def int_args(**defaults: int) -> dict[str, int]:
        try:
            return {name: int(request.args.get(name, value)) for name, value in defaults.items()}
        except ValueError as exc:
            raise Refused(f"{', '.join(defaults)}: expected whole numbers", status=400) from exc

    @app.get("/ledger/records")
    def list_records() -> Any:
        own = reader()
        args = request.args
        participant = args.get("participant") or None
        if own is not None:
            if participant not in (None, own):
                raise Refused("a participant may list only its own usage records", status=403)
            participant = own
        numbers = int_args(after=-1, limit=100)
        with database.session() as session:
            found = ledger.entries(
                session,
                dataset=args.get("dataset") or None,
                participant=participant,
                agreement=args.get("agreement") or None,
                outcome=args.get("outcome") or None,
                operation=args.get("operation") or None,
                **numbers,
            )
            latest = ledger.latest_head(session)
            return {
                "head": ledger.head_view(latest) if latest else None,
                "records": [ledger.view(e) for e in found],
            }

    @app.get("/ledger/records/<path:record_id>")
    def show_record(record_id: str) -> Any:
        own = reader()
        with database.session() as session:
            entry = ledger.entry_by_record(session, record_id)
            if own is not None and own not in (entry.provider_id, entry.consumer_id):
                raise Refused(f"{own} is not a party to usage record {record_id}", status=403)
            return {
                **ledger.view(entry),
                "receipt": ledger.receipt(session, entry),
                "about": [ledger.view(e) for e in ledger.about(session, record_id)],
            }

    @app.get("/ledger/head")
    def ledger_head() -> Any:
        reader()
        with database.session() as session:
            latest = ledger.latest_head(session)
            if latest is None:
                raise NotFound("the log has no signed tree head yet")
            return ledger.head_view(latest)

    @app.get("/ledger/heads")
    def ledger_heads() -> Any:
        reader()
        with database.session() as session:
            return {
                "heads": [ledger.head_view(h) for h in ledger.heads(session, **int_args(after=-1, limit=100))]
            }

    @app.get("/ledger/proof/inclusion")
    def inclusion() -> Any:
        reader()
        numbers = int_args(index=-1, size=-1)
        with database.session() as session:
            ledger.head_of_size(session, numbers["size"])  # proofs are against signed heads only
            proof = ledger.inclusion_proof(session, numbers["index"], numbers["size"])
            return {"leaf_index": numbers["index"], "tree_size": numbers["size"], "proof": proof}

    @app.get("/ledger/proof/consistency")
    def consistency() -> Any:
        reader()
        numbers = int_args(first=0, second=0)
        with database.session() as session:
            proof = ledger.consistency_proof(session, numbers["first"], numbers["second"])
            return {**numbers, "proof": proof}

    @app.get("/ledger/alerts")
    def ledger_alerts() -> Any:
        require_token(database, Token, ("operator", "auditor"))
        with database.session() as session:
            return {"alerts": ledger.alerts(session, **int_args(after=0, limit=100))}

    # --- he.aggregate: encrypted parts meet and are added --------------------------------
    adder_pool: list[warm.WarmPool] = []  # made on first use: most spaces never add a ciphertext

    def adders() -> warm.WarmPool:
        """Workers that add ciphertexts, each started ahead of the job it serves (sandbox/warm.py)."""
        if not adder_pool:
            adder_pool.append(warm.WarmPool(create_backend(settings.sandbox_backend, Limits()), "he"))
        return adder_pool[0]

    @app.post("/aggregations")
    def open_aggregation() -> Any:
        caller = signed_caller()
        with database.transaction() as session:
            row = aggregation.open_aggregation(session, caller, json_body(("job", "agreements", "context")))
            job, expected = row.job, len(row.agreements)
        adders().prepare(None, None)  # the adder starts while the providers compute, if none waits
        return jsonify({"job": job, "expected": expected}), 201

    @app.post("/aggregations/<path:job>/contributions")
    def contribute(job: str) -> Any:
        caller = signed_caller()
        with database.transaction() as session:
            row = aggregation.contribute(session, caller, job, json_body(("agreement", "fingerprint")))
            return jsonify({"job": job, "agreement": row.agreement_id, "reason": row.reason}), 201

    @app.get("/aggregations/<path:job>/providers")
    def aggregation_providers(job: str) -> Any:
        caller = signed_caller()
        with database.session() as session:
            return aggregation.providers(session, caller, job)

    @app.get("/aggregations/<path:job>")
    def aggregation_state(job: str) -> Any:
        caller = signed_caller()
        with database.session() as session:
            found, addition = aggregation.state(session, caller, job)
        if addition is not None:
            # added outside the write lock: ledger appends need not wait for the sandbox
            total = aggregation.add(adders(), addition)
            with database.write_lock, database.transaction() as session:
                found["total"] = aggregation.keep_total(session, job, total)
        return found

    @app.get("/admin/disputes")
    def admin_disputes() -> Any:
        require_token(database, Token, ("operator", "auditor"))
        numbers = int_args(after=-1, limit=100)
        with database.session() as session:
            return {"disputed": [ledger.view(e) for e in ledger.disputed(session, **numbers)]}

    @app.post("/admin/disputes/<path:record_id>/decision")
    def admin_decide(record_id: str) -> Any:
        actor = operator_actor()
        body = json_body(("decision", "reason"))
        receipt = ledger.decide(
            database, space_key, config.url, actor, record_id, body["decision"], body["reason"], utcnow
        )
        with database.transaction() as session:
            operator.note(
                session,
                actor,
                "decide",
                record_id,
                utcnow(),
                decision=body["decision"],
                leaf=receipt["leaf_index"],
            )
        return jsonify(receipt), 201

    # --- settlement ---------------------------------------------------------------------------
    @app.post("/admin/settlements")
    def admin_settle() -> Any:
        actor = operator_actor()
        period = str(json_body(("period",))["period"])
        try:
            with database.write_lock, database.transaction() as session:
                row, created = operator.settle(
                    session, actor, period, space_key, settings.commission_bp, utcnow()
                )
                body = row.summary
        except AlertingConflict as exc:
            with database.transaction() as session:
                ledger.raise_alert(session, exc.alert)
            raise
        return Response(body, status=201 if created else 200, mimetype="application/json")

    @app.get("/settlements/<period>")
    def show_settlement(period: str) -> Any:
        own = reader()
        with database.session() as session:
            row = settlement.get(session, period)
            if own is not None:
                raise Refused(
                    "a participant reads its own statement: /settlements/<period>/statements/<id>", status=403
                )
            summary = json.loads(row.summary)
            return {**summary, "statements": settlement.statements_of(session, period)}

    @app.get("/settlements/<period>/statements/<participant>.<fmt>")
    def show_statement(period: str, participant: str, fmt: str) -> Any:
        own = reader()
        if own is not None and own != participant:
            raise Refused("a participant may read only its own statements", status=403)
        if fmt not in ("json", "csv"):
            raise NotFound(f"statements come as .json or .csv, not .{fmt}")
        with database.session() as session:
            found = settlement.statement(session, period, participant)
            if fmt == "csv":
                return Response(found.csv, mimetype="text/csv; charset=utf-8")
            return Response(found.signed_json, mimetype="application/json")

    @app.get("/market/index")
    def market_index() -> Any:
        reader()
        with database.session() as session:
            return {"index": settlement.index(session, request.args.get("sector") or None)}

    # --- operator -------------------------------------------------------------------------
    @app.get("/admin/participants")
    def admin_participants() -> Any:
        require_token(database, Token, ("operator", "auditor"))
        with database.session() as session:
            rows = session.scalars(select(Participant).order_by(Participant.registered_at))
            return {"participants": [registry.public_view(p) for p in rows]}

    @app.post("/admin/participants/<pid>/admit")
    def admin_admit(pid: str) -> Any:
        actor = operator_actor()
        with database.transaction() as session:
            found = operator.admit(session, actor, pid, space_key, utcnow(), settings.credential_days)
            return registry.public_view(found)

    @app.post("/admin/participants/<pid>/suspend")
    def admin_suspend(pid: str) -> Any:
        actor = operator_actor()
        with database.transaction() as session:
            return registry.public_view(operator.suspend(session, actor, pid, utcnow()))

    @app.get("/admin/reviews")
    def admin_reviews() -> Any:
        require_token(database, Token, ("operator", "auditor"))
        with database.session() as session:
            return {"pending": [catalog.entry_view(session, e) for e in catalog.pending_reviews(session)]}

    @app.post("/admin/reviews/<path:entry_id>/<decision>")
    def admin_review(entry_id: str, decision: str) -> Any:
        actor = operator_actor()
        if decision not in ("approve", "reject"):
            raise Problem(404, "Not found", "use /approve or /reject", kind="not-found")
        note = str((request.get_json(silent=True) or {}).get("note", ""))
        with database.transaction() as session:
            entry = operator.review(session, actor, entry_id, decision == "approve", note, utcnow())
            return catalog.entry_view(session, entry)

    @app.post("/admin/agreements/<path:agreement_id>/termination")
    def admin_terminate(agreement_id: str) -> Any:
        actor = operator_actor()
        reason = str(json_body().get("reason", "terminated by the operator"))
        with database.transaction() as session:
            found = agreements.terminate(session, agreement_id, registry.SPACE_ID, reason, utcnow())
            operator.note(session, actor, "terminate", agreement_id, utcnow(), reason=reason)
            view = agreements.view(found)
        tell_parties(view)
        return view

    @app.post("/admin/tokens")
    def admin_token() -> Any:
        actor = operator_actor()
        body = json_body(("role",))
        participant = body.get("participant")
        with database.transaction() as session:
            token = operator.issue_token(
                session,
                actor,
                str(body["role"]),
                str(body.get("label", "")),
                str(participant) if participant is not None else None,
                utcnow(),
            )
        return jsonify({"token": token, "role": body["role"], "participant": participant}), 201

    @app.get("/admin/actions")
    def admin_actions() -> Any:
        require_token(database, Token, ("operator", "auditor"))
        before = request.args.get("before", type=int)
        with database.session() as session:
            rows, _ = console.queries.actions_page(session, before)
            return {"actions": [console.action_view(a) for a in rows]}

    console.install(app, database, settings, space_key, config)
    return app
