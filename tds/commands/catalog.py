"""``tds catalog``: search the space's catalog and show an entry."""

from __future__ import annotations

from pathlib import Path

import click

from node.config import write_file
from tds.commands.common import State, call, emit, pass_state


@click.group()
def catalog() -> None:
    """Search the space's catalog."""


@catalog.command("search")
@click.argument("text", required=False, default="")
@click.option("--sector")
@click.option("--op", help="Only entries offering this operation.")
@click.option("--limit", type=int, default=50, show_default=True)
@pass_state
def catalog_search(state: State, text: str, sector: str | None, op: str | None, limit: int) -> None:
    """Find published entries by words in title, description and keywords, and filters."""
    found = call(state, "GET", "/api/catalog", q=text, sector=sector, op=op, limit=limit)
    lines = []
    for e in found["results"]:
        lines.append(f"{e['id']}  {e['title']}  [{e['sector']}] {e['row_count']} rows — {e['provider']}")
        lines += [
            f"    offer {o['id']}: {', '.join(o['operations'])}, {o['price']['model']} "
            f"{o['price']['amount_fen']} fen"
            for o in e["offers"]
        ]
    emit(state, found, "\n".join(lines) or "no matching entries")


@catalog.command("show")
@click.argument("entry_id")
@pass_state
def catalog_show(state: State, entry_id: str) -> None:
    """Show one catalog entry with its profile and offers."""
    emit(state, call(state, "GET", f"/api/catalog/{entry_id}"))


@catalog.command("mock")
@click.argument("entry_id")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the CSV here (default: print it)."
)
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@pass_state
def catalog_mock(state: State, entry_id: str, out: Path | None, force: bool) -> None:
    """Download an entry's mock sample: synthetic rows with its schema, none of its data, for
    trying a script on (tds script try)."""
    text = call(state, "GET", f"/api/catalog/{entry_id}/mock.csv")
    if out is None:
        click.echo(text, nl=False)
        return
    write_file(out, text.encode("utf-8"), mode=0o600, replace=force)
    rows = max(0, text.count("\n") - 1)
    emit(state, {"entry": entry_id, "path": str(out), "rows": rows}, f"wrote {rows} mock rows to {out}")


COMMANDS = [catalog]
