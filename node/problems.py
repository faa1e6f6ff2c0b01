"""RFC 9457 problem details: every HTTP error a node returns is ``application/problem+json``."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, json
from werkzeug.exceptions import HTTPException

PROBLEM_TYPE = "https://w3id.org/tds/2026/1/problems/"
CONTENT_TYPE = "application/problem+json"


class Problem(Exception):
    """Raised anywhere in a request; rendered as an RFC 9457 problem+json body."""

    def __init__(self, status: int, title: str, detail: str = "", kind: str = "", **extra: Any) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status, self.title, self.detail = status, title, detail
        self.kind = kind or title.lower().replace(" ", "-")
        self.extra = extra

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_TYPE + self.kind,
            "title": self.title,
            "status": self.status,
        }
        if self.detail:
            body["detail"] = self.detail
        body.update(self.extra)
        return body


def problem_response(problem: Problem) -> Response:
    return Response(json.dumps(problem.to_json()), status=problem.status, mimetype=CONTENT_TYPE)


def install(app: Flask) -> None:
    @app.errorhandler(Problem)
    def _problem(exc: Problem) -> Response:
        return problem_response(exc)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        status = exc.code or 500
        return problem_response(Problem(status, exc.name, exc.description or ""))
