"""``tds audit``: read and verify the usage log as an auditor, without trusting the operator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from tds.commands.common import State, audit_api, emit, pass_state
from tds.errors import TdsError


@click.group()
def audit() -> None:
    """Read and check the usage ledger (auditors, operator)."""


@audit.command("log")
@click.option("--dataset", help="Only this dataset (catalog id).")
@click.option("--participant", help="Only records where this participant is a party.")
@click.option("--agreement", help="Only this agreement.")
@click.option("--operation", help="Only this operation (e.g. psi.cardinality).")
@click.option("--outcome", type=click.Choice(["succeeded", "withheld", "denied", "failed"]))
@click.option("--space", "space_url", help="The space's URL (with --token).")
@click.option("--token", envvar="TDS_TOKEN", help="An auditor or operator token (env TDS_TOKEN).")
@pass_state
def audit_log(state: State, space_url: str | None, token: str | None, **filters: str | None) -> None:
    """List usage records (newest head first line). `tds audit verify` checks them."""
    api = audit_api(state, space_url, token)
    records: list[dict[str, Any]] = []
    try:
        after = -1
        while True:
            page = api.get("/ledger/records", **filters, after=after, limit=1000)
            records += page["records"]
            if len(page["records"]) < 1000:
                break
            after = page["records"][-1]["seq"]
    finally:
        api.close()
    head = page["head"]
    lines = [f"log size {head['tree_size']}, root {head['root_hash'][:16]}…" if head else "the log is empty"]
    for entry in records:
        r = entry["signed"]["document"]
        if entry.get("kind", "usage") != "usage":
            lines.append(f"#{entry['seq']:<5} {_leaf_line(entry['kind'], r)}")
            continue
        lines.append(
            f"#{entry['seq']:<5} {r['finished_at']}  {r['operation']:<17} {r['outcome']:<9} "
            f"{r['consumer']} → {r['provider']}  fee {r['fee_fen']} fen  {r['reason']}"
        )
    emit(state, {"head": head, "records": records}, "\n".join(lines))


def _leaf_line(kind: str, document: dict[str, Any]) -> str:
    if kind == "script-step":
        by = f" by {document['reviewer']}" if document["reviewer"] else ""
        return (
            f"{document['at']}  script step of job {document['job']}: {document['step']}{by}, "
            f"code {document['code_sha256'][:12]}  {document['consumer']} → {document['provider']}"
        )
    if kind == "countersignature":
        return f"{document['received_at']}  countersignature of {document['record']} by {document['signer']}"
    return (
        f"{document['decided_at']}  the operator's decision on {document['record']}: "
        f"{document['decision']} ({document['reason']}), by {document['decided_by']}"
    )


@audit.command("verify")
@click.option("--space", "space_url", help="The space's URL (with --token).")
@click.option("--token", envvar="TDS_TOKEN", help="An auditor or operator token (env TDS_TOKEN).")
@click.option("--export", "export_file", type=click.Path(path_type=Path, dir_okay=False),
              help="Check an export file offline instead of a live space.")  # fmt: skip
@click.option("--receipts", "receipt_files", multiple=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Receipts a connector holds (`tds outbox receipts --out FILE`); repeatable.")  # fmt: skip
@click.option("--state", "state_dir", type=click.Path(path_type=Path, file_okay=False),
              help="Where this auditor keeps the heads it has seen "
                   "(default: $XDG_STATE_HOME/tds, else ~/.local/state/tds).")  # fmt: skip
@pass_state
def audit_verify(
    state: State,
    space_url: str | None,
    token: str | None,
    export_file: Path | None,
    receipt_files: tuple[Path, ...],
    state_dir: Path | None,
) -> None:
    """Check the usage log without trusting its operator.

    Every record's signatures against the participants' keys; that the records hash to every
    signed tree head; that every head seen on an earlier run is still a prefix of the log
    (and the space's consistency proofs to it); every receipt given. Exit 0 when all holds,
    1 with each problem listed."""
    from tds import audit as auditing

    memory = auditing.State(state_dir or auditing.default_state_dir())
    receipts = [r for path in receipt_files for r in auditing.read_receipts(path)]
    proofs = None
    if export_file is not None:
        if space_url or token:
            raise click.UsageError("give --export or --space/--token, not both")
        bundle = auditing.read_export(export_file)
    else:
        api = audit_api(state, space_url, token)
        try:
            bundle = auditing.fetch(api)
            memory.pinned_key(bundle.space_url, bundle.space_public_key)
            proofs = auditing.consistency_proofs(api, memory, bundle)
        finally:
            api.close()
    report = auditing.verify(bundle, memory, receipts, proofs)
    memory.save()
    summary = f"{report.records} records, {report.heads} signed heads, {report.receipts} receipts; " + (
        f"log size {report.latest.size}, root {report.latest.root.hex()[:16]}…"
        if report.latest
        else "empty log"
    )
    emit(state, report.to_json(), "\n".join([summary, *(f"FAILED: {p}" for p in report.problems)]))
    if not report.ok:
        raise TdsError(f"the log does not verify: {len(report.problems)} problem(s)")
    if not state.as_json:
        click.echo(f"verified (the heads seen are kept in {memory.path})")


@audit.command("export")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), required=True, help="File to write.")
@click.option("--space", "space_url", help="The space's URL (with --token).")
@click.option("--token", envvar="TDS_TOKEN", help="An auditor or operator token (env TDS_TOKEN).")
@pass_state
def audit_export(state: State, out: Path, space_url: str | None, token: str | None) -> None:
    """Write the log, its signed heads and the participants' keys to a file `verify` can check offline."""
    from tds import audit as auditing

    api = audit_api(state, space_url, token)
    try:
        bundle = auditing.fetch(api)
    finally:
        api.close()
    tmp = out.with_name(out.name + ".partial")
    with tmp.open("w", encoding="utf-8") as handle:
        lines = auditing.write_export(bundle, handle)
    tmp.replace(out)  # never a half-written export under the real name
    counts = {
        "records": len(bundle.records),
        "heads": len(bundle.heads),
        "participants": len(bundle.participants),
    }
    emit(
        state,
        {"file": str(out), "lines": lines, **counts},
        f"wrote {out}: " + ", ".join(f"{v} {k}" for k, v in counts.items()),
    )


COMMANDS = [audit]
