"""``tds dataset``: register a local dataset with the connector and publish it with its offers."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tds.commands.common import State, call, emit, pass_state
from tds.errors import TdsError


@click.group()
def dataset() -> None:
    """Register and publish local datasets (raw rows never leave the connector)."""


@dataset.command("add")
@click.argument("name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--key", "key_column", required=True, help="The join-key column.")
@click.option("--title", help="Catalog title (default: NAME).")
@click.option("--description", default="")
@click.option("--sector", default="其他", show_default=True, help="e.g. 金融, 交通运输, 医疗健康.")
@click.option("--keyword", "keywords", multiple=True)
@click.option(
    "--classification",
    type=click.Choice(["general", "important", "core"]),
    default="general",
    show_default=True,
)
@click.option(
    "--pi-level", type=click.Choice(["none", "general", "sensitive"]), default="none", show_default=True
)
@click.option("--jurisdiction", default="CN", show_default=True)
@click.option("--tag", "tags", multiple=True, help="COLUMN=TAG semantic tag (phone, id_card, credit_code …).")
@pass_state
def dataset_add(
    state: State,
    name: str,
    file: Path,
    key_column: str,
    title: str | None,
    description: str,
    sector: str,
    keywords: tuple[str, ...],
    classification: str,
    pi_level: str,
    jurisdiction: str,
    tags: tuple[str, ...],
) -> None:
    """Register FILE (UTF-8 CSV with a header) as dataset NAME and profile it locally."""
    tag_map: dict[str, list[str]] = {}
    for item in tags:
        column, sep, tag = item.partition("=")
        if not sep or not tag:
            raise click.UsageError(f"--tag {item!r}: expected COLUMN=TAG")
        tag_map.setdefault(column, []).append(tag)
    found = call(
        state,
        "POST",
        "/api/datasets",
        {
            "name": name,
            "path": str(file.resolve()),
            "key_column": key_column,
            "title": title,
            "description": description,
            "sector": sector,
            "keywords": list(keywords),
            "classification": classification,
            "pi_level": pi_level,
            "jurisdiction": jurisdiction,
            "tags": tag_map,
        },
    )
    profile = found["profile"]
    emit(
        state,
        found,
        f"{name}: {found['row_count']} rows, {len(found['columns'])} columns, "
        f"key {found['key_column']} uniqueness {profile['key_uniqueness']}",
    )


@dataset.command("list")
@pass_state
def dataset_list(state: State) -> None:
    """List this connector's datasets."""
    found = call(state, "GET", "/api/datasets")
    lines = [
        f"{d['name']:<20} {d['row_count']:>10} rows  {d['catalog_status'] or 'unpublished'}"
        for d in found["datasets"]
    ]
    emit(state, found, "\n".join(lines) or "no datasets")


@dataset.command("publish")
@click.argument("name")
@click.option(
    "--offer",
    "offer_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON file with the offer (policy, price, auto_approve), or a list of offers.",
)
@pass_state
def dataset_publish(state: State, name: str, offer_file: Path) -> None:
    """Publish NAME's catalog entry (metadata, profile, offers) to the space."""
    try:
        offers = json.loads(offer_file.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TdsError(f"{offer_file}: not a JSON file: {exc}") from exc
    entry = call(state, "POST", f"/api/datasets/{name}/publish", {"offers": offers})
    offers_line = ", ".join(f"{o['id']} ({', '.join(o['operations'])})" for o in entry["offers"])
    emit(
        state,
        entry,
        f"{entry['id']} {entry['status']}"
        + (f" — {entry['review_rule']}" if entry["review_rule"] else "")
        + f"\noffers: {offers_line}",
    )


COMMANDS = [dataset]
