"""Errors raised by :mod:`space`.

SpaceError (a node Problem: carries its HTTP status, rendered as problem+json)
├── NotFound            404: no such participant, entry, agreement or record
├── Refused             403/422: the request is understood and refused (rule, role, state)
└── Conflict            409: it clashes with what is stored (duplicate id, different content)
    └── AlertingConflict    … and the operator and auditors must see that it was tried
"""

from __future__ import annotations

from typing import Any

from node.problems import Problem


class SpaceError(Problem):
    """Root of every error the space raises; an RFC 9457 problem."""


class NotFound(SpaceError):
    def __init__(self, what: str, **extra: Any) -> None:
        super().__init__(404, "Not found", what, kind="not-found", **extra)


class Refused(SpaceError):
    def __init__(self, detail: str, status: int = 422, kind: str = "refused", **extra: Any) -> None:
        super().__init__(status, "Refused", detail, kind=kind, **extra)


class Conflict(SpaceError):
    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(409, "Conflict", detail, kind="conflict", **extra)


class AlertingConflict(Conflict):
    """A conflict that leaves a trace: ``alert`` (LedgerAlert fields) is stored by the caller in
    a transaction of its own, so that the refusal does not roll it back."""

    def __init__(self, detail: str, alert: dict[str, Any], **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.alert = alert
