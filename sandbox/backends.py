"""The choice of sandbox backend: which ones work on this machine, and the one to use.

Apart from sandbox.interface, which the backends themselves import, so that no module of the
package imports another that imports it back.
"""

from __future__ import annotations

from pathlib import Path

from sandbox import bwrap, cgroup, container, process
from sandbox.errors import SandboxError
from sandbox.interface import Backend
from sandbox.limits import Limits

BACKENDS = ("auto", "process", "bwrap", "docker")

PREFERENCE = ("bwrap", "docker", "process")  # strongest first, for ``auto``


def probe(name: str) -> tuple[bool, str]:
    """Whether backend ``name`` works on this machine, and why (not). Cached per process."""
    if name == "bwrap":
        return bwrap.available()
    if name == "docker":
        return container.available()
    ns_ok, ns_why = process.namespaces_available()
    _, cg_why = cgroup.available()
    namespaces = ns_why if ns_ok else f"no namespaces ({ns_why})"
    return True, f"rlimits and a process group; {namespaces}; {cg_why}"


def create_backend(
    name: str, limits: Limits, docker_image: str = "", plugins: tuple[Path, ...] = ()
) -> Backend:
    """The backend for ``name``; ``auto`` picks the strongest one that works here.

    bubblewrap comes before Docker because it adds our seccomp filter and needs no daemon;
    both contain every case of the hostile suite."""
    if name not in BACKENDS:
        raise SandboxError(f"unknown sandbox backend {name!r}; expected one of {list(BACKENDS)}")
    if name == "auto":
        name = next(b for b in PREFERENCE if probe(b)[0])
    elif name != "process":
        ok, why = probe(name)
        if not ok:
            raise SandboxError(f"sandbox backend {name} does not work here: {why}; try auto or process")
    return construct(name, limits, docker_image, plugins)


def construct(name: str, limits: Limits, docker_image: str, plugins: tuple[Path, ...] = ()) -> Backend:
    """``plugins``: modules of further operations (sandbox.worker.load_plugin); the docker
    backend's image holds the built-in operations only."""
    if name == "bwrap":
        return bwrap.BwrapBackend(limits, plugins)
    if name == "docker":
        if plugins:
            raise SandboxError("sandbox plugins run under the bwrap and process backends, not docker")
        return container.DockerBackend(limits, docker_image or container.HOST_RUNTIME_IMAGE)
    return process.ProcessBackend(limits, plugins)
