"""``tds sandbox``: which sandbox backends work on this machine."""

from __future__ import annotations

import click

from tds.commands.common import State, emit, pass_state
from tds.errors import TdsError


@click.group()
def sandbox() -> None:
    """Inspect the sandbox backends that run jobs on this machine."""


@sandbox.command("check")
@pass_state
def sandbox_check(state: State) -> None:
    """Which backends work here, why the others don't, and which one auto picks.

    Exit status 0 when auto has a backend stronger than process, 1 otherwise."""
    from sandbox.backends import PREFERENCE, probe

    results = {name: probe(name) for name in PREFERENCE}
    auto = next(name for name in PREFERENCE if results[name][0])
    report = {
        "backends": {name: {"works": ok, "detail": why} for name, (ok, why) in results.items()},
        "auto": auto,
    }
    lines = [f"{'yes' if ok else 'no ':3}  {name:8} {why}" for name, (ok, why) in results.items()]
    emit(state, report, "\n".join([*lines, f"auto picks: {auto}"]))
    if auto == "process":
        raise TdsError("only the process backend works here: install bubblewrap or start a Docker engine")


COMMANDS = [sandbox]
