"""Trying a reviewed script before submitting it: the code on an entry's mock sample, in this
machine's sandbox, with the runtime (sandbox.ops.script) and the default limits a provider's
connector uses; what ``tds script try`` and the demo run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connectors.context import SCRIPT_BACKENDS
from sandbox.backends import create_backend
from sandbox.errors import SandboxError
from sandbox.interface import WorkerJob
from sandbox.limits import Limits
from sandbox.ops import script
from tds.errors import TdsError


def try_on_mock(source: str, mock: Path, args: dict[str, Any], backend: str = "auto") -> dict[str, Any]:
    """The script's output on ``mock``: its format, the table (CSV) and counts or the JSON
    object, the backend, the runtime's versions and the peak memory."""
    sandbox = create_backend(backend, Limits())
    if sandbox.name not in SCRIPT_BACKENDS:
        raise TdsError(
            f"the {sandbox.name} backend does not contain scripts; providers run them on bwrap or docker: "
            "install bubblewrap, or start a Docker engine"
        )
    job = WorkerJob("script.run", {"source": source, "args": args}, [], str(mock.resolve()))
    try:
        result = sandbox.run(job)
    except SandboxError as exc:
        raise TdsError(f"the script failed on the mock: {exc}") from exc
    header = result.header
    out: dict[str, Any] = {
        "format": header.get("format", "json"),
        "backend": sandbox.name,
        "runtime": script.runtime(),
        "peak_rss_mb": round(result.peak_rss_mb, 1),
    }
    if out["format"] == "table":
        out.update(table=header["table"], counts=header.get("counts", []))
    else:
        out["output"] = header["result"]
    return out
