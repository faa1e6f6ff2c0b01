"""The one interface every sandbox backend implements, and the choice of backend.

A connector builds a :class:`WorkerJob` (operation, parameters, binary inputs, the one file the
job may read) and gets back a :class:`WorkerResult` whose header has been checked against the
operation's result shape, or a :class:`~sandbox.errors.SandboxError` saying what went wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sandbox.errors import SandboxError, WorkerFailed
from sandbox.limits import Limits

Progress = Callable[[float], None]

BACKENDS = ("auto", "process", "bwrap", "docker")

# The header fields (and their types) each operation must return, and how many blobs.
RESULT_SHAPES: dict[str, tuple[dict[str, type], int]] = {
    "psi.provider": ({"provider_set_size": int, "consumer_set_size": int}, 2),
    "psi.client_request": ({"consumer_set_size": int, "key": str}, 2),
    "psi.client_result": ({}, -1),
}


@dataclass(frozen=True)
class WorkerJob:
    op: str
    params: dict[str, Any]
    blobs: list[bytes] = field(default_factory=list)
    dataset: str | None = None  # the one file the job may read


@dataclass(frozen=True)
class WorkerResult:
    header: dict[str, Any]
    blobs: list[bytes]
    backend: str
    isolation: tuple[str, ...]  # what this run was isolated by, for the job's record
    peak_rss_mb: float = 0.0  # the worker's peak resident memory, its children included


class Backend(Protocol):
    name: str

    def run(self, job: WorkerJob, progress: Progress | None = None) -> WorkerResult: ...


def check_result(op: str, header: dict[str, Any], blobs: list[bytes]) -> None:
    fields, blob_count = RESULT_SHAPES[op]
    for name, kind in fields.items():
        value = header.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise WorkerFailed("result", f"{op} result field {name}: expected {kind.__name__}")
    if blob_count >= 0 and len(blobs) != blob_count:
        raise WorkerFailed("result", f"{op} result: expected {blob_count} blobs, got {len(blobs)}")


def create_backend(name: str, limits: Limits) -> Backend:
    """The backend for ``name``; ``auto`` picks the strongest one available."""
    from sandbox.process import ProcessBackend

    if name in ("auto", "process"):
        return ProcessBackend(limits)
    if name in BACKENDS:
        raise SandboxError(f"sandbox backend {name!r} is not available in this release; use process or auto")
    raise SandboxError(f"unknown sandbox backend {name!r}; expected one of {list(BACKENDS)}")
