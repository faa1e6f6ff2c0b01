"""``tds catalog``: search the space's catalog and show an entry."""

from __future__ import annotations

import click

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


COMMANDS = [catalog]
