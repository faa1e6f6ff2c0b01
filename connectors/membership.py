"""The connector's own membership credential, renewed before it ends without a suspension: by
hand (``tds connector renew``) or by itself once it is within the last 30 days (the space's
``renew_within_days`` bounds when the space agrees), checked at start and every six hours."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from connectors.context import Connector, log
from connectors.status import RENEW_WITHIN
from node.models import utcnow
from node.signing import RemoteError

CHECK_EVERY_S = 6 * 3600.0


def renew(ctx: Connector) -> dict[str, Any]:
    """A new credential from the space (it refuses outside its window: the refusal says when)."""
    return ctx.space.renew(ctx.id)


def renew_if_due(ctx: Connector) -> bool:
    """Renew when the credential ends within RENEW_WITHIN; whether it did."""
    info = ctx.space.participant(ctx.id, fresh=True)
    expires = ((info.get("credential") or {}).get("document") or {}).get("expires_at")
    if info.get("status") != "admitted" or expires is None:
        return False
    if dt.datetime.fromisoformat(str(expires).replace("Z", "+00:00")) - utcnow() > RENEW_WITHIN:
        return False
    renewed = renew(ctx)
    log.info(
        "membership credential renewed: now valid until %s", renewed["credential"]["document"]["expires_at"]
    )
    return True


def start(ctx: Connector) -> threading.Thread:
    def loop() -> None:
        while not ctx.stopping.is_set():
            try:
                renew_if_due(ctx)
            except RemoteError as exc:  # the space unreachable, or outside its window: try later
                log.warning("membership credential not renewed: %s", exc)
            except Exception:
                log.exception("membership renewal check failed")
            ctx.stopping.wait(CHECK_EVERY_S)

    thread = threading.Thread(target=loop, name="tds-membership", daemon=True)
    thread.start()
    return thread
