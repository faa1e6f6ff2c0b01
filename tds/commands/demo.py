"""``tds demo``: the main story on one machine."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tds.commands.common import State, pass_state


@click.command("demo")
@click.option("--n", type=int, default=100_000, show_default=True, help="Phone numbers per party.")
@click.option("--overlap", type=int, default=30_000, show_default=True, help="Numbers both parties hold.")
@click.option("--keep", type=click.Path(path_type=Path), help="Keep the nodes' data in this folder.")
@pass_state
def demo_command(state: State, n: int, overlap: int, keep: Path | None) -> None:
    """Run the main story on loopback: a space, a bank and a telecom operator."""
    from tds.demo import run_demo

    if not 0 < overlap <= n:
        raise click.UsageError("--overlap must be between 1 and --n")
    report = run_demo(n, overlap, keep, say=None if state.as_json else click.echo)
    if state.as_json:
        click.echo(json.dumps(report, ensure_ascii=False))


COMMANDS = [demo_command]
