"""The catalog: providers publish entries (metadata only, checked against the negative list);
members and people with tokens search and read them; the DSP Catalog as DCAT JSON-LD."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, jsonify, request

from node.web import json_body
from space import catalog, registry
from space.errors import NotFound, Refused
from space.web.common import (
    config,
    db,
    load_negative_list,
    settings,
    signed_caller,
    token_or_caller,
)

catalog_api = Blueprint("catalog", __name__)


@catalog_api.post("/catalog")
def publish() -> Any:
    caller = signed_caller()
    rules = load_negative_list(config().path)
    with db().transaction() as session:
        provider = registry.get(session, caller)
        entry = catalog.publish(session, provider, json_body(), rules, settings())
        view = catalog.entry_view(session, entry, provider)
    return jsonify(view), 201 if entry.status == "published" else 202


@catalog_api.get("/catalog")
def search() -> Any:
    token_or_caller()
    try:
        limit = int(request.args.get("limit", 50))
    except ValueError as exc:
        raise Refused("limit: expected a whole number", status=400) from exc
    with db().session() as session:
        found = catalog.search(
            session,
            request.args.get("q", ""),
            request.args.get("sector") or None,
            request.args.get("op") or None,
            limit,
        )
        return {"results": [catalog.entry_view(session, e) for e in found]}


@catalog_api.get("/catalog/<path:entry_id>")
def show_entry(entry_id: str) -> Any:
    token_or_caller()
    with db().session() as session:
        return catalog.entry_view(session, catalog.get_entry(session, entry_id))


@catalog_api.get("/catalog/<path:entry_id>/mock.csv")
def mock_sample(entry_id: str) -> Response:
    """An entry's mock sample: synthetic rows with its schema, for trying a script on."""
    with db().session() as session:
        entry = catalog.get_entry(session, entry_id)
        if entry.mock is None:
            raise NotFound(f"catalog entry {entry_id} has no mock sample; its provider published none")
        return Response(entry.mock, mimetype="text/csv")


@catalog_api.get("/catalog/offers/<path:offer_id>")
def show_offer(offer_id: str) -> Any:
    token_or_caller()
    with db().session() as session:
        offer, entry = catalog.get_offer(session, offer_id)
        return {"offer": {"id": offer.id, **offer.document}, "entry": catalog.entry_view(session, entry)}


@catalog_api.get("/catalog.jsonld")
def dcat() -> Response:
    with db().session() as session:
        body = catalog.dcat_catalog(session, config().url)
    return Response(json.dumps(body, ensure_ascii=False), mimetype="application/ld+json")
