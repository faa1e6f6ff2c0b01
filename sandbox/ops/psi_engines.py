"""The PSI engines a job may run, by the name its parameters give (``engine``): openmined-psi
on P-256 (sandbox.ops.psi, the default of a request that names none, as every request did
before there was a choice) and X25519 through cryptography (sandbox.ops.psi_x25519). Both
offer the same functions, so the worker's PSI steps run either."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from sandbox.errors import WorkerFailed
from sandbox.ops import psi, psi_x25519

ENGINES: dict[str, ModuleType] = {"ecdh-p256": psi, "ecdh-x25519": psi_x25519}
DEFAULT = "ecdh-p256"  # what a request that names no engine means


def of(params: dict[str, Any]) -> ModuleType:
    name = params.get("engine", DEFAULT)
    if name not in ENGINES:
        raise WorkerFailed("request", f"engine: expected one of {sorted(ENGINES)}, got {name!r}")
    return ENGINES[name]
