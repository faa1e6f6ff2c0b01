"""``tds ready``: wait until nodes answer, as ``pg_isready`` does for PostgreSQL — for scripts
that start a node in the background and go on (the README's story does)."""

from __future__ import annotations

import time

import click
import httpx

from tds.commands.common import State, emit, pass_state
from tds.errors import TdsError


@click.command("ready")
@click.argument("urls", nargs=-1, required=True)
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds to wait in all.")
@pass_state
def ready(state: State, urls: tuple[str, ...], timeout: float) -> None:
    """Wait until every node at URLS answers its health check (exit 0), or --timeout passes (1)."""
    deadline = time.monotonic() + timeout
    waiting = list(urls)
    with httpx.Client(timeout=1.0, trust_env=False) as http:
        while waiting:
            try:
                if http.get(waiting[0].rstrip("/") + "/healthz").status_code == 200:
                    waiting.pop(0)
                    continue
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TdsError(f"{waiting[0]} did not answer within {timeout:g} s; is the node running?")
            time.sleep(0.1)
    emit(state, {"ready": list(urls)}, "ready: " + " ".join(urls))


COMMANDS = [ready]
