"""``tds settle``, ``tds statement``, ``tds market``: settlement of periods, statements, the price index."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from tds.commands.common import State, audit_api, call, emit, pass_state, plural
from tds.errors import TdsError


@click.command("settle")
@click.option("--period", help="The month, YYYY-MM: a closed one to settle; with --preview any begun one.")
@click.option(
    "--preview",
    is_flag=True,
    help="Show the period as it would settle now: unsigned, provisional, nothing issued "
    "(default period: the current month).",
)
@click.option("--space", "space_url", help="The space's URL (with --token; --preview only).")
@click.option("--token", envvar="TDS_TOKEN", help="An auditor or operator token (env TDS_TOKEN).")
@pass_state
def settle(state: State, period: str | None, preview: bool, space_url: str | None, token: str | None) -> None:
    """Settle a closed period from the usage log: fees, commission, revenue shares (operator).

    Settling a period again prints what was settled; it never changes. With --preview, an
    operator or auditor sees what the period would give if it closed now."""
    if preview:
        shown = _preview(state, period or "current", space_url, token)  # the space's open month
        emit(state, shown, _lines(shown["period"], shown["summary"], provisional=shown["as_of"]))
        return
    if period is None:
        raise click.UsageError("give --period YYYY-MM (a closed month), or --preview")
    if space_url or token:
        raise click.UsageError(
            "--space and --token go with --preview; settling is the operator's, from the space's --data-dir"
        )
    summary = call(state, "POST", "/admin/settlements", {"period": period}, role="space")
    emit(state, summary, _lines(period, summary["document"]))


def _preview(state: State, period: str, space_url: str | None, token: str | None) -> Any:
    api = audit_api(state, space_url, token)
    try:
        return api.call("GET", f"/settlements/{period}/preview")
    finally:
        api.close()


def _lines(period: str, document: dict[str, Any], provisional: str | None = None) -> str:
    lines = [
        (f"PROVISIONAL, as of {provisional} (unsigned; the period is not settled): " if provisional else "")
        + f"period {period}: {plural(len(document['agreements']), 'agreement')}, "
        f"fees {document['fees_fen']} fen, commission {document['commission_fen']} fen "
        f"({document['commission_bp']} bp), "
        f"over the log's first {document['log']['tree_size']} records"
    ]
    for item in document["agreements"]:
        split = ", ".join(f"{s['party']} {s['amount_fen']}" for s in item["split"])
        lines.append(f"  {item['agreement']}: {plural(item['uses'], 'use')}, {item['fee_fen']} fen → {split}")
    if document.get("disputed"):
        lines.append(
            f"  disputed (not billed): {plural(len(document['disputed']), 'use')}, "
            f"{document['disputed_fen']} fen"
        )
    return "\n".join(lines)


@click.command("statement")
@click.option("--period", required=True, help="A settled month, YYYY-MM.")
@click.option("--participant", required=True, help="Whose statement (the operator's is 'space').")
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="csv", show_default=True)
@click.option(
    "--out", type=click.Path(path_type=Path, dir_okay=False), help="Write to a file instead of stdout."
)
@click.option("--space", "space_url", help="The space's URL (with --token).")
@click.option("--token", envvar="TDS_TOKEN", help="An auditor or operator token (env TDS_TOKEN).")
@pass_state
def statement(
    state: State,
    period: str,
    participant: str,
    fmt: str,
    out: Path | None,
    space_url: str | None,
    token: str | None,
) -> None:
    """A participant's signed statement for a settled period, as CSV or JSON."""
    api = audit_api(state, space_url, token)
    try:
        response = api.http.get(f"/settlements/{period}/statements/{participant}.{fmt}")
    finally:
        api.close()
    if response.status_code >= 400:
        raise TdsError(response.json().get("detail", response.text))
    if out is None:
        click.echo(response.text, nl=False)
    else:
        out.write_bytes(response.content)
        click.echo(f"wrote {out}", err=True)


@click.group()
def market() -> None:
    """Market figures from settled periods."""


@market.command("index")
@click.option("--sector", help="Only this sector.")
@click.option("--space", "space_url", help="The space's URL (with --token).")
@click.option("--token", envvar="TDS_TOKEN", help="An auditor or operator token (env TDS_TOKEN).")
@pass_state
def market_index(state: State, sector: str | None, space_url: str | None, token: str | None) -> None:
    """The price index per sector: median unit price of settled uses, chained to the first period = 100."""
    api = audit_api(state, space_url, token)
    try:
        points = api.get("/market/index", sector=sector)["index"]
    finally:
        api.close()
    if not points:
        emit(state, {"index": points}, "nothing is settled yet: the index starts with the first settled "
             "period (`tds settle --period YYYY-MM`, once a month is over)")  # fmt: skip
        return
    lines = [f"{'sector':12} {'period':8} {'uses':>6} {'median fen':>11} {'index':>8}"]
    for p in points:
        lines.append(f"{p['sector']:12} {p['period']:8} {p['uses']:>6} {p['median_unit_fen']:>11.1f} ")
        lines[-1] += f"{p['chained_index']:>8.2f}"
    emit(state, {"index": points}, "\n".join(lines))


COMMANDS = [settle, statement, market]
