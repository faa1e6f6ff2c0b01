"""Telling the parties of an agreement that it was terminated, at once (issue 12 §3).

Providers ask the space before every job anyway (connectors/guard.py), so a notice that does not
arrive costs nothing but the consumer's view being stale until its next job; it is sent in the
background, signed by the space, to the endpoints the parties registered (which the space's
endpoint policy admitted), and a failure is logged, never raised."""

from __future__ import annotations

import logging
import threading
from typing import Any

from contracts.keys import SigningKey
from node.egress import GuardedBackend
from node.signing import RemoteError, SignedClient

log = logging.getLogger("tds.space")
TIMEOUT_S = 5.0


def termination(
    key: SigningKey, view: dict[str, Any], endpoints: list[str], guard: GuardedBackend
) -> threading.Thread:
    """Send the termination in ``view`` (agreements.view) to each endpoint, each connection
    checked against the endpoint policy (``guard``) again; returns the thread."""
    body = {key: view[key] for key in ("id", "terminated_by", "terminated_at", "termination_reason")}

    def send() -> None:
        client = SignedClient("space", key, timeout=TIMEOUT_S, guard=guard)
        try:
            for endpoint in endpoints:
                try:
                    client.send("POST", f"{endpoint}/dsp/agreements/{view['id']}/termination", json=body)
                except RemoteError as exc:
                    log.warning("could not tell %s that agreement %s ended: %s", endpoint, view["id"], exc)
        finally:
            client.close()

    thread = threading.Thread(target=send, name=f"notify-{view['id']}", daemon=True)
    thread.start()
    return thread
