"""The one interface every sandbox backend implements (sandbox.backends chooses one).

A connector builds a :class:`WorkerJob` (operation, parameters, binary inputs, the one file the
job may read) and gets back a :class:`WorkerResult` whose header has been checked against the
operation's result shape, or a :class:`~sandbox.errors.SandboxError` saying what went wrong.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sandbox.errors import WorkerFailed
from sandbox.limits import Limits

Progress = Callable[[float], None]

# The header fields (and their types) each operation must return, and how many blobs.
RESULT_SHAPES: dict[str, tuple[dict[str, type], int]] = {
    "psi.provider": ({"provider_set_size": int, "consumer_set_size": int}, 2),
    "psi.client_request": ({"consumer_set_size": int, "key": str}, 2),
    "psi.client_result": ({}, -1),
    "psi.server_setup": ({"consumer_set_size": int, "key": str}, 1),
    "psi.server_process": ({"processed": int}, 1),
    "psi.noisy_count": ({"cardinality": int}, 0),
    "psi.sum.provider": (
        {
            "provider_set_size": int,
            "consumer_set_size": int,
            "labels": list,
            "category_sizes": list,
            "places": int,
        },
        5,
    ),
    "psi.sum.client": ({"cardinality": int, "masks": list}, -1),
    "psi.sum.reveal": ({"counts": list, "masked": list}, 0),
    "script.run": ({"result": dict}, 0),
    "he.aggregate.part": ({"rows": int, "parts": int}, 1),
    "he.sum": ({"added": int}, 1),
    "he.aggregate.finish": ({"result": dict}, 0),
    "he.score.part": ({"found": int, "batches": int}, -1),
    "he.score.finish": ({"scored": int}, 1),
}


@dataclass(frozen=True)
class WorkerJob:
    op: str
    params: dict[str, Any]
    blobs: list[bytes] = field(default_factory=list)
    dataset: str | None = None  # the one file the job may read
    limits: Limits | None = (
        None  # this job's limits (an offer's, within the connector's), if not the backend's
    )


@dataclass(frozen=True)
class WorkerResult:
    header: dict[str, Any]
    blobs: list[bytes]
    backend: str
    isolation: tuple[str, ...]  # what this run was isolated by, for the job's record
    peak_rss_mb: float = 0.0  # the worker's peak resident memory, its children included


class Backend(Protocol):
    name: str
    limits: Limits

    def run(self, job: WorkerJob, progress: Progress | None = None) -> WorkerResult: ...


def check_dataset(path: str) -> None:
    """Backends that bind the dataset into the sandbox check first that there is one to bind."""
    try:
        with open(path, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise WorkerFailed("input", f"{os.path.basename(path)}: cannot read: not a regular file")
    except OSError as exc:
        raise WorkerFailed("input", f"{os.path.basename(path)}: cannot read: {exc.strerror}") from exc


def check_result(op: str, header: dict[str, Any], blobs: list[bytes]) -> None:
    fields, blob_count = RESULT_SHAPES[op]
    for name, kind in fields.items():
        value = header.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise WorkerFailed("result", f"{op} result field {name}: expected {kind.__name__}")
    if blob_count >= 0 and len(blobs) != blob_count:
        raise WorkerFailed("result", f"{op} result: expected {blob_count} blobs, got {len(blobs)}")
