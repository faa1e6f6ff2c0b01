"""The provider's reviews of consumers' scripts (``/api/reviews``): list, read, approve or reject
the code, release or withhold the output. An admin or a reviewer token; the token's label is the
reviewer the steps name."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from connectors import script_review
from connectors.models import Token
from connectors.requests import Approval, Note, OptionalNote
from connectors.web.common import ctx
from node.web import body_as, token_of

reviews_api = Blueprint("reviews", __name__)
ROLES = ("admin", "reviewer")


def reviewer() -> str:
    """Who acts: the label of the request's admin or reviewer token (or its role, unlabelled)."""
    row = token_of(ctx().db, Token, ROLES)
    return str(row.label or row.role)


@reviews_api.get("/api/reviews")
def list_reviews() -> Any:
    reviewer()
    return {"reviews": script_review.reviews(ctx(), request.args.get("state") or None)}


@reviews_api.get("/api/reviews/<path:job_id>")
def show_review(job_id: str) -> Any:
    reviewer()
    return script_review.show(ctx(), job_id)


@reviews_api.post("/api/reviews/<path:job_id>/approve")
def approve(job_id: str) -> Any:
    who = reviewer()
    asked = body_as(Approval)
    return script_review.approve(ctx(), job_id, reviewer=who, runs=asked.runs, note=asked.note)


@reviews_api.post("/api/reviews/<path:job_id>/reject")
def reject(job_id: str) -> Any:
    who = reviewer()
    return script_review.reject(ctx(), job_id, reviewer=who, note=body_as(Note).note)


@reviews_api.post("/api/reviews/<path:job_id>/release")
def release(job_id: str) -> Any:
    who = reviewer()
    return script_review.release(ctx(), job_id, reviewer=who, note=body_as(OptionalNote, optional=True).note)


@reviews_api.post("/api/reviews/<path:job_id>/withhold")
def withhold(job_id: str) -> Any:
    who = reviewer()
    return script_review.withhold(ctx(), job_id, reviewer=who, note=body_as(Note).note)
