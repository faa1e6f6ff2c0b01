"""How much of an agreement is used: the uses taken and, per operation, those its ``count``
limits leave — as the provider counts them, since its count is the one the guard checks.

A provider reads its own counter. A consumer asks its provider over a signed request (the
provider answers only the agreement's consumer) and shows the answer; when the provider cannot
be reached it says so rather than guess, because the consumer cannot tell a use the provider
gave back (its own failure) from one it kept.
"""

from __future__ import annotations

from typing import Any

from connectors import negotiation
from connectors.context import Connector
from connectors.errors import Refused
from connectors.models import Negotiation
from contracts.agreements import agreement_policy
from node.signing import RemoteError
from policies.limits import use_limits

ASK_TIMEOUT_S = 5.0


def counted(neg: Negotiation) -> dict[str, Any]:
    """The provider's count of an agreement's uses (its answer to the consumer's question)."""
    return {"agreement": neg.agreement_id, "uses": neg.uses, "epsilon_spent": neg.epsilon_spent}


def answer(ctx: Connector, caller: str, agreement_id: str) -> dict[str, Any]:
    neg = negotiation.find(ctx, agreement_id, role="provider")
    if neg.agreement_id is None or caller != neg.peer_id:
        raise Refused(f"{caller} is not the consumer of agreement {agreement_id}", status=403)
    return counted(neg)


def view(ctx: Connector, neg: Negotiation) -> dict[str, Any] | None:
    """``{"uses", "counted_by", "limits", "left"}`` for an agreement (None before there is one)."""
    if neg.agreement is None or neg.agreement_id is None:
        return None
    limits = use_limits(agreement_policy(neg.agreement["document"]))
    if neg.role == "provider":
        taken: int | None = neg.uses
        source = "this connector (the provider)"
    else:
        try:
            reply = ctx.client.send(
                "GET", f"{neg.peer_endpoint}/agreements/{neg.agreement_id}/uses", timeout=ASK_TIMEOUT_S
            ).json()
            taken, source = int(reply["uses"]), f"{neg.peer_id} (the provider)"
        except (RemoteError, KeyError, TypeError, ValueError) as exc:
            taken, source = None, f"unknown: {neg.peer_id} did not answer ({exc})"
    left = {
        operation: None if bound is None or taken is None else max(0, bound - taken)
        for operation, bound in limits.items()
    }
    return {"uses": taken, "counted_by": source, "limits": limits, "left": left}
