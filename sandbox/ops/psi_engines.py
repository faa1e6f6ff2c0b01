"""The PSI engines a job may run, by the name its parameters give (``engine``): openmined-psi
on P-256 (sandbox.ops.psi, the default of a request that names none, as every request did
before there was a choice) and X25519 through cryptography (sandbox.ops.psi_x25519). Both
offer the same functions, so the worker's PSI steps run either."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from sandbox.errors import WorkerFailed

# by name, the module that runs it: imported when a job first runs it, so that a connector that
# only names engines (its settings, its requests) loads neither elliptic-curve library
ENGINES: dict[str, str] = {"ecdh-p256": "sandbox.ops.psi", "ecdh-x25519": "sandbox.ops.psi_x25519"}
DEFAULT = "ecdh-p256"  # what a request that names no engine means


def of(params: dict[str, Any]) -> ModuleType:
    name = params.get("engine", DEFAULT)
    if name not in ENGINES:
        raise WorkerFailed("request", f"engine: expected one of {sorted(ENGINES)}, got {name!r}")
    return importlib.import_module(ENGINES[name])
