"""``tds status``: a node's health in a few lines, and an exit code a monitor can act on."""

from __future__ import annotations

from typing import Any

import click

from tds.commands.common import State, call, emit, pass_state, plural
from tds.errors import Unhealthy


@click.command("status")
@pass_state
def status(state: State) -> None:
    """A node's health. A connector: its membership and credential as the space sees them, the
    peers of its agreements, its outbox and running jobs. The space: its log, its participants
    and the credentials that end within 30 days. Exits 6 when a problem needs action."""
    config = state.config()
    if config.role == "connector":
        found = call(state, "GET", "/api/health")
        emit(state, found, _connector_lines(found))
    else:
        found = call(state, "GET", "/admin/health", role="space")
        emit(state, found, _space_lines(found))
    if not found["healthy"]:
        count = len(found["problems"])
        needs = f"{plural(count, 'problem')} need{'s' if count == 1 else ''} action"
        raise Unhealthy(f"{needs}: " + "; ".join(found["problems"]))


def _connector_lines(found: dict[str, Any]) -> str:
    member = found["membership"] or {}
    outbox = found["outbox"]
    reach = "reachable" if found["space"]["reachable"] else "unreachable"
    lines = [
        f"{found['id']}: {'healthy' if found['healthy'] else 'needs action'}",
        f"  space       {found['space']['url']} ({reach})",
        f"  membership  {member.get('status', '?')}, credential until {member.get('credential_expires_at')} "
        f"({member.get('credential_days_left')} days)",
        "  outbox      "
        + ", ".join(f"{k} {v}" for k, v in outbox["records"].items() if v)
        + f"; oldest undelivered {outbox['oldest_undelivered_age_s']} s",
        f"  jobs        {found['jobs_running']} running; sandbox {found['sandbox']}",
        f"  peers       {len(found['peers'])}: "
        + ", ".join(f"{p['id']} ({p['status']}, {p['credential_days_left']} days)" for p in found["peers"]),
    ]
    return "\n".join(lines + [f"  problem: {problem}" for problem in found["problems"]])


def _space_lines(found: dict[str, Any]) -> str:
    ledger = found["ledger"]
    lines = [
        f"space: {'healthy' if found['healthy'] else 'needs action'}",
        f"  log           {ledger['leaves']} leaves, signed head of {ledger['signed_size']}, "
        f"{ledger['alerts']} alerts",
        "  participants  " + ", ".join(f"{k} {v}" for k, v in found["participants"].items()),
        f"  credentials ending within 30 days: {len(found['credentials_ending'])}",
    ]
    return "\n".join(lines + [f"  problem: {problem}" for problem in found["problems"]])


COMMANDS = [status]
