"""Errors raised by :mod:`connectors`.

ConnectorError (a node Problem: carries its HTTP status, rendered as problem+json)
├── NotFound            404: no such dataset, negotiation, agreement or job here
├── Refused             403/422: understood and refused (bad input, policy, state)
└── Conflict            409: clashes with what is stored
"""

from __future__ import annotations

from typing import Any

from node.problems import Problem


class ConnectorError(Problem):
    """Root of every error the connector raises; an RFC 9457 problem."""


class NotFound(ConnectorError):
    def __init__(self, what: str, **extra: Any) -> None:
        super().__init__(404, "Not found", what, kind="not-found", **extra)


class Refused(ConnectorError):
    def __init__(self, detail: str, status: int = 422, kind: str = "refused", **extra: Any) -> None:
        super().__init__(status, "Refused", detail, kind=kind, **extra)


class Conflict(ConnectorError):
    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(409, "Conflict", detail, kind="conflict", **extra)
