"""``tds contract``: request, list, approve, reject and terminate contracts."""

from __future__ import annotations

from typing import Any

import click

from tds.commands.common import State, call, emit, pass_state
from tds.errors import TdsError


@click.group()
def contract() -> None:
    """Negotiate, approve and terminate usage agreements."""


def _contract_line(neg: dict[str, Any]) -> str:
    """A negotiation as people read it: which id is the negotiation's and which the agreement's
    (jobs take either), with whom, in which state."""
    line = (
        f"negotiation {neg['id']}  {neg['state']}, as {neg['role']} with {neg['peer']}: "
        f"{', '.join(neg['operations'])}"
    )
    if neg["agreement_id"]:
        line += f"\n    agreement {neg['agreement_id']}"
    if neg["reason"]:
        line += f"\n    reason: {neg['reason']}"
    return line


@contract.command("request")
@click.option("--offer", "offer_id", required=True)
@click.option("--purpose", required=True)
@click.option("--op", "operations", multiple=True, required=True)
@click.option("--price", help="Propose a price other than the listed one: MODEL:FEN, e.g. per_job:4000.")
@click.option(
    "--wait",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds to wait for FINALIZED (0: return at once).",
)
@pass_state
def contract_request(
    state: State, offer_id: str, purpose: str, operations: tuple[str, ...], price: str | None, wait: float
) -> None:
    """Request an agreement for an offer from its provider (a proposed price waits for the
    provider's `tds contract approve`)."""
    body: dict[str, Any] = {"offer": offer_id, "purpose": purpose, "operations": list(operations)}
    if price is not None:
        model, _, amount = price.partition(":")
        if not amount.isdigit():
            raise click.UsageError(f"--price: expected MODEL:FEN such as per_job:4000, got {price!r}")
        body["price"] = {"model": model, "amount_fen": int(amount)}
    api = state.api("connector")
    try:
        neg = api.post("/api/contracts", body)
        if wait > 0 and neg["state"] not in ("FINALIZED", "TERMINATED"):
            neg = api.wait_for(
                f"/api/contracts/{neg['id']}", lambda n: n["state"] in ("FINALIZED", "TERMINATED"), wait
            )
    finally:
        api.close()
    emit(state, neg, _contract_line(neg))
    if neg["state"] == "TERMINATED":
        raise TdsError(f"the provider refused: {neg['reason']}")


@contract.command("list")
@pass_state
def contract_list(state: State) -> None:
    """List negotiations and agreements at this connector."""
    found = call(state, "GET", "/api/contracts")
    emit(state, found, "\n".join(_contract_line(n) for n in found["contracts"]) or "no contracts")


def _left(operation: str, bound: int | None, left: int | None) -> str:
    if bound is None:
        return f"{operation} no limit"
    return f"{operation} {'?' if left is None else left} of {bound}"


@contract.command("show")
@click.argument("ref")
@pass_state
def contract_show(state: State, ref: str) -> None:
    """Show a negotiation or agreement (by negotiation or agreement id): its terms, and the uses
    taken and left as the provider counts them (a consumer's connector asks the provider)."""
    neg = call(state, "GET", f"/api/contracts/{ref}")
    lines = [_contract_line(neg), f"purpose: {neg['purpose']}"]
    if neg["price"]:
        lines.append(f"price: {neg['price']['model']} {neg['price']['amount_fen']} fen")
    use = neg.get("use")
    if use is not None:
        taken = "unknown" if use["uses"] is None else str(use["uses"])
        lines.append(f"uses taken: {taken}, counted by {use['counted_by']}")
        lines.append(
            "uses left: "
            + ", ".join(_left(op, bound, use["left"][op]) for op, bound in use["limits"].items())
        )
    emit(state, neg, "\n".join(lines))


@contract.command("approve")
@click.argument("ref")
@pass_state
def contract_approve(state: State, ref: str) -> None:
    """Provider: agree to a queued request."""
    neg = call(state, "POST", f"/api/contracts/{ref}/approve")
    emit(state, neg, _contract_line(neg))


@contract.command("reject")
@click.argument("ref")
@click.option("--reason", default="rejected by the provider")
@pass_state
def contract_reject(state: State, ref: str, reason: str) -> None:
    """Provider: refuse a queued request."""
    neg = call(state, "POST", f"/api/contracts/{ref}/reject", {"reason": reason})
    emit(state, neg, _contract_line(neg))


@contract.command("terminate")
@click.argument("ref")
@click.option("--reason", default="terminated")
@pass_state
def contract_terminate(state: State, ref: str, reason: str) -> None:
    """End an agreement for both sides and at the space."""
    neg = call(state, "POST", f"/api/contracts/{ref}/terminate", {"reason": reason})
    emit(state, neg, _contract_line(neg))


COMMANDS = [contract]
