"""The ``tds`` command line.

Exit codes: 0 success; 1 an error (refused request, unreachable node, bad configuration);
2 a usage error; 3 a job was denied; 4 a job failed; 5 a job's result was withheld.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

from contracts.errors import ContractError
from node.config import PRIVATE_UMASK, ConfigError, NodeConfig, load
from node.db import DatabaseURLError
from tds.client import NodeAPI
from tds.errors import JobEnded, TdsError


class State:
    def __init__(self, data_dir: Path, as_json: bool) -> None:
        self.data_dir = data_dir
        self.as_json = as_json

    def config(self, role: str | None = None) -> NodeConfig:
        try:
            return load(self.data_dir, role)
        except ConfigError as exc:
            raise TdsError(str(exc)) from exc

    def api(self, role: str | None = None) -> NodeAPI:
        return NodeAPI.of(self.config(role))


pass_state = click.make_pass_decorator(State)


def emit(state: State, data: Any, human: str | None = None) -> None:
    if state.as_json or human is None:
        click.echo(json.dumps(data, ensure_ascii=False, indent=None if state.as_json else 2))
    else:
        click.echo(human)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tds", message="tds %(version)s")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    envvar="TDS_DATA_DIR",
    default=Path("."),
    show_default=True,
    help="The node's data directory (env TDS_DATA_DIR).",
)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_context
def cli(ctx: click.Context, data_dir: Path, as_json: bool) -> None:
    """TDS: a trusted data space with privacy-preserving compute."""
    ctx.obj = State(data_dir, as_json)


# --- space ---------------------------------------------------------------------------------
@cli.group()
def space() -> None:
    """Run and operate the space (operator)."""


@space.command("init")
@click.option("--url", default="http://127.0.0.1:8700", show_default=True, help="Base URL to serve on.")
@click.option("--db", "db_url", help="Database URL (default: SQLite in the data directory).")
@click.option("--auto-admit", is_flag=True, help="Admit every registration at once (development).")
@click.option("--dev", is_flag=True, help="Development space: admit connector endpoints on loopback.")
@pass_state
def space_init(state: State, url: str, db_url: str | None, auto_admit: bool, dev: bool) -> None:
    """Create a space: key (0600), config, database, negative list, operator token."""
    from space.setup import init_space

    config, token = init_space(state.data_dir, url, db_url, auto_admit, dev)
    emit(
        state,
        {"id": config.id, "url": config.url, "operator_token": token},
        f"space created in {config.data_dir}\noperator token (shown once, also in admin.token): {token}",
    )


@space.command("serve")
@pass_state
def space_serve(state: State) -> None:
    """Serve the space's API until interrupted."""
    from node.web import serve
    from space.app import create_app

    config = state.config("space")
    _logging()
    serve(create_app(config), config.host, config.port)


def _call(
    state: State, method: str, path: str, body: Any = None, *, role: str = "connector", **params: Any
) -> Any:
    """One call to this node's own API with its admin (connector) or operator (space) token."""
    api = state.api(role)
    try:
        return api.call(method, path, json=body, params=params)
    finally:
        api.close()


def _operator_call(state: State, method: str, path: str, body: Any = None) -> Any:
    return _call(state, method, path, body, role="space")


@space.command("admit")
@click.argument("participant")
@pass_state
def space_admit(state: State, participant: str) -> None:
    """Admit a registered participant and issue its membership credential."""
    found = _operator_call(state, "POST", f"/admin/participants/{participant}/admit")
    expires = found["credential"]["document"]["expires_at"]
    emit(state, found, f"{participant} admitted; credential valid until {expires}")


@space.command("suspend")
@click.argument("participant")
@pass_state
def space_suspend(state: State, participant: str) -> None:
    """Suspend a participant: its signed requests are refused from now on."""
    found = _operator_call(state, "POST", f"/admin/participants/{participant}/suspend")
    emit(state, found, f"{participant} suspended")


@space.command("participants")
@pass_state
def space_participants(state: State) -> None:
    """List participants and their status."""
    found = _operator_call(state, "GET", "/admin/participants")
    lines = [
        f"{p['id']:<20} {p['status']:<10} {p['legal_name']} ({', '.join(p['roles'])})  {p['endpoint']}"
        for p in found["participants"]
    ]
    emit(state, found, "\n".join(lines) or "no participants")


@space.command("review")
@click.option("--approve", "approve_id", help="Publish this pending entry.")
@click.option("--reject", "reject_id", help="Refuse this pending entry.")
@click.option("--note", default="", help="The reviewer's note.")
@pass_state
def space_review(state: State, approve_id: str | None, reject_id: str | None, note: str) -> None:
    """List catalog entries held for review, or approve / reject one."""
    if approve_id and reject_id:
        raise click.UsageError("give --approve or --reject, not both")
    if approve_id or reject_id:
        decision = "approve" if approve_id else "reject"
        entry = _operator_call(
            state, "POST", f"/admin/reviews/{approve_id or reject_id}/{decision}", {"note": note}
        )
        emit(state, entry, f"{entry['id']} is now {entry['status']}")
        return
    found = _operator_call(state, "GET", "/admin/reviews")
    lines = [f"{e['id']}  {e['title']}  ({e['provider']}) — {e['review_rule']}" for e in found["pending"]]
    emit(state, found, "\n".join(lines) or "nothing waits for review")


@space.command("disputes")
@click.option("--bill", "bill_id", metavar="RECORD", help="Bill this disputed use.")
@click.option("--void", "void_id", metavar="RECORD", help="Void this disputed use: it is never billed.")
@click.option("--reason", help="Why (required with --bill or --void); it goes into the log.")
@pass_state
def space_disputes(state: State, bill_id: str | None, void_id: str | None, reason: str | None) -> None:
    """List uses only their provider signed, or decide one: the decision is a leaf of the log."""
    if bill_id and void_id:
        raise click.UsageError("give --bill or --void, not both")
    if bill_id or void_id:
        if not reason or not reason.strip():
            raise click.UsageError("--reason is required: the decision and why go into the log")
        verdict = "bill" if bill_id else "void"
        receipt = _operator_call(
            state,
            "POST",
            f"/admin/disputes/{bill_id or void_id}/decision",
            {"decision": verdict, "reason": reason},
        )
        emit(state, receipt, f"{bill_id or void_id}: {verdict}, decided at leaf {receipt['leaf_index']}")
        return
    found = _operator_call(state, "GET", "/admin/disputes")
    lines = []
    for entry in found["disputed"]:
        r = entry["signed"]["document"]
        lines.append(
            f"{r['id']}  {r['finished_at']}  {r['operation']} {r['outcome']}  "
            f"{r['consumer']} ← {r['provider']}  fee {r['fee_fen']} fen"
        )
    emit(state, found, "\n".join(lines) or "no disputed uses")


@space.command("token")
@click.option(
    "--role", type=click.Choice(["auditor", "operator", "participant"]), default="auditor", show_default=True
)
@click.option("--participant", help="The participant a participant token belongs to.")
@click.option("--label", default="", help="Who the token is for (the log of operator actions names them so).")
@pass_state
def space_token(state: State, role: str, participant: str | None, label: str) -> None:
    """Issue a bearer token for a person: for the API and for signing in to the web console
    (/console). Auditors read everything and change nothing; a participant sees its own."""
    body = {"role": role, "label": label, **({"participant": participant} if participant else {})}
    found = _operator_call(state, "POST", "/admin/tokens", body)
    emit(state, found, found["token"])


# --- connector -----------------------------------------------------------------------------
@cli.group()
def connector() -> None:
    """Run a participant's connector."""


@connector.command("init")
@click.option("--name", required=True, help="Participant id: 3–40 of a-z, 0-9 and '-'.")
@click.option("--space", "space_url", required=True, help="The space's base URL.")
@click.option("--url", default="http://127.0.0.1:8701", show_default=True, help="Base URL to serve on.")
@click.option("--legal-name", required=True, help="Registered legal name.")
@click.option("--credit-code", required=True, help="Unified social credit code (GB 32100).")
@click.option("--roles", default="provider,consumer", show_default=True)
@click.option("--jurisdiction", default="CN", show_default=True, help="ISO 3166 code, e.g. CN-HA.")
@click.option("--db", "db_url", help="Database URL (default: SQLite in the data directory).")
@click.option("--option", "options", multiple=True, help="KEY=VALUE connector setting (JSON values).")
@pass_state
def connector_init(
    state: State,
    name: str,
    space_url: str,
    url: str,
    legal_name: str,
    credit_code: str,
    roles: str,
    jurisdiction: str,
    db_url: str | None,
    options: tuple[str, ...],
) -> None:
    """Create a connector and register it with the space (which admits it)."""
    from connectors.setup import SetupError, init_connector
    from node.signing import RemoteError

    parsed: dict[str, Any] = {}
    for item in options:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.UsageError(f"--option {item!r}: expected KEY=VALUE")
        try:
            parsed[key] = json.loads(value)
        except json.JSONDecodeError:
            parsed[key] = value
    try:
        config, token, registration = init_connector(
            state.data_dir,
            name=name,
            url=url,
            space_url=space_url,
            legal_name=legal_name,
            credit_code=credit_code,
            roles=[r.strip() for r in roles.split(",") if r.strip()],
            jurisdiction=jurisdiction,
            db_url=db_url,
            options=parsed,
        )
    except RemoteError as exc:
        raise TdsError(f"the space refused the registration: {exc.problem.get('detail', exc)}") from exc
    except SetupError as exc:
        raise TdsError(str(exc)) from exc
    emit(
        state,
        {"id": name, "status": registration["status"], "admin_token": token},
        f"connector {name} created in {config.data_dir}; registration is {registration['status']}"
        + ("" if registration["status"] == "admitted" else f" (the operator runs: tds space admit {name})")
        + f"\nadmin token (shown once, also in admin.token): {token}",
    )


@connector.command("serve")
@pass_state
def connector_serve(state: State) -> None:
    """Serve the connector's API until interrupted."""
    from connectors.app import create_app
    from node.web import serve

    config = state.config("connector")
    _logging()
    serve(create_app(config), config.host, config.port)


@connector.command("status")
@pass_state
def connector_status(state: State) -> None:
    """Show this connector's membership as the space sees it."""
    found = _call(state, "GET", "/api/status")
    member = found["membership"]
    emit(state, found, f"{found['id']}: {member['status']} at {found['space']}; sandbox {found['sandbox']}")


# --- datasets ------------------------------------------------------------------------------
@cli.group()
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
    found = _call(
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
    found = _call(state, "GET", "/api/datasets")
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
    entry = _call(state, "POST", f"/api/datasets/{name}/publish", {"offers": offers})
    offers_line = ", ".join(f"{o['id']} ({', '.join(o['operations'])})" for o in entry["offers"])
    emit(
        state,
        entry,
        f"{entry['id']} {entry['status']}"
        + (f" — {entry['review_rule']}" if entry["review_rule"] else "")
        + f"\noffers: {offers_line}",
    )


# --- catalog -------------------------------------------------------------------------------
@cli.group()
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
    found = _call(state, "GET", "/api/catalog", q=text, sector=sector, op=op, limit=limit)
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
    emit(state, _call(state, "GET", f"/api/catalog/{entry_id}"))


# --- contracts -----------------------------------------------------------------------------
@cli.group()
def contract() -> None:
    """Negotiate, approve and terminate usage agreements."""


def _contract_line(neg: dict[str, Any]) -> str:
    line = (
        f"{neg['id']}  {neg['role']:<8} {neg['state']:<10} {neg['peer']:<16} {', '.join(neg['operations'])}"
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
    found = _call(state, "GET", "/api/contracts")
    emit(state, found, "\n".join(_contract_line(n) for n in found["contracts"]) or "no contracts")


@contract.command("show")
@click.argument("ref")
@pass_state
def contract_show(state: State, ref: str) -> None:
    """Show a negotiation or agreement (by negotiation or agreement id)."""
    emit(state, _call(state, "GET", f"/api/contracts/{ref}"))


@contract.command("approve")
@click.argument("ref")
@pass_state
def contract_approve(state: State, ref: str) -> None:
    """Provider: agree to a queued request."""
    neg = _call(state, "POST", f"/api/contracts/{ref}/approve")
    emit(state, neg, _contract_line(neg))


@contract.command("reject")
@click.argument("ref")
@click.option("--reason", default="rejected by the provider")
@pass_state
def contract_reject(state: State, ref: str, reason: str) -> None:
    """Provider: refuse a queued request."""
    neg = _call(state, "POST", f"/api/contracts/{ref}/reject", {"reason": reason})
    emit(state, neg, _contract_line(neg))


@contract.command("terminate")
@click.argument("ref")
@click.option("--reason", default="terminated")
@pass_state
def contract_terminate(state: State, ref: str, reason: str) -> None:
    """End an agreement for both sides and at the space."""
    neg = _call(state, "POST", f"/api/contracts/{ref}/terminate", {"reason": reason})
    emit(state, neg, _contract_line(neg))


# --- jobs ----------------------------------------------------------------------------------
@cli.group()
def job() -> None:
    """Run sandboxed jobs under agreements."""


def _job_line(found: dict[str, Any]) -> str:
    line = f"{found['id']}  {found['operation']}  {found['status']}"
    if found["summary"]:
        line += "  " + ", ".join(f"{k} {v}" for k, v in found["summary"].items())
    if found["error"]:
        line += f"\n    {found['error']}"
    return line


@job.command("submit")
@click.option("--agreement", "agreements", required=True, multiple=True,
              help="Agreement (or negotiation) id; repeat for he.aggregate.")  # fmt: skip
@click.option(
    "--op",
    "operation",
    required=True,
    type=click.Choice(["psi.cardinality", "psi.intersection", "he.aggregate", "he.score"]),
)
@click.option("--input", "input_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="PSI: the CSV whose key column is matched.")  # fmt: skip
@click.option(
    "--column", help="PSI: the input's key column; he.aggregate: the column; he.score: the ids' column."
)
@click.option("--stats", help="he.aggregate: count,sum,mean,variance,histogram,linreg.")
@click.option(
    "--where", "where_expr", help="he.aggregate: a filter, e.g. \"age >= 18 and city in ('郑州')\"."
)
@click.option("--bins", help="he.aggregate histogram: ascending edges, e.g. 0,10,20,50.")
@click.option("--features", help="he.aggregate linreg: feature columns, comma-separated.")
@click.option("--target", help="he.aggregate linreg: the target column.")
@click.option("--epsilon", type=float,
              help="he.aggregate, psi.cardinality: differential privacy ε for this job.")  # fmt: skip
@click.option("--bounds", help="he.aggregate with ε: clip values to LOWER,UPPER.")
@click.option(
    "--mechanism", type=click.Choice(["laplace", "gaussian"]), help="he.aggregate with ε: the noise."
)
@click.option("--delta", type=float, help="he.aggregate, Gaussian noise: δ (≤ 0.001).")
@click.option("--ids", "ids_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="he.score: CSV of the ids to score.")  # fmt: skip
@click.option("--model", "model_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help='he.score: {"features": [...], "weights": [...], "bias": n}.')  # fmt: skip
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal).")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait for the job to end.")
@pass_state
def job_submit(state: State, agreements: tuple[str, ...], operation: str, progress: bool | None, wait: bool,
               **options: Any) -> None:  # fmt: skip
    """Submit a job; the input never leaves this connector."""
    body = _job_body(operation, agreements, options)
    api = state.api("connector")
    try:
        found = api.post("/api/jobs", body)
        if wait:
            found = _follow(api, found, sys.stderr.isatty() if progress is None else progress)
    finally:
        api.close()
    emit(state, found, _job_line(found))
    if found["status"] in JobEnded.CODES:
        raise JobEnded(found["status"], found["error"] or found["status"])


def _numbers(text: str | None, option: str) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(part) for part in text.split(",")]
    except ValueError as exc:
        raise click.UsageError(f"{option}: expected comma-separated numbers, got {text!r}") from exc


def _job_body(operation: str, agreements: tuple[str, ...], o: dict[str, Any]) -> dict[str, Any]:
    if operation != "he.aggregate" and len(agreements) != 1:
        raise click.UsageError(f"{operation} runs under exactly one --agreement")
    if operation.startswith("psi."):
        if o["input_file"] is None or o["column"] is None:
            raise click.UsageError(f"{operation} needs --input and --column")
        psi: dict[str, Any] = {"agreement": agreements[0], "operation": operation,
                               "input": str(o["input_file"].resolve()), "column": o["column"]}  # fmt: skip
        if o["epsilon"] is not None:  # psi.cardinality counted by the provider, with noise of ε
            psi["epsilon"] = o["epsilon"]
        return psi
    if operation == "he.score":
        if o["ids_file"] is None or o["model_file"] is None or o["column"] is None:
            raise click.UsageError("he.score needs --ids, --column and --model")
        return {"agreement": agreements[0], "operation": operation, "ids": str(o["ids_file"].resolve()),
                "column": o["column"], "model": str(o["model_file"].resolve())}  # fmt: skip
    if not o["stats"]:
        raise click.UsageError("he.aggregate needs --stats")
    body: dict[str, Any] = {
        "agreements": list(agreements),
        "operation": operation,
        "stats": o["stats"].split(","),
    }
    for key in ("column", "target"):
        if o[key]:
            body[key] = o[key]
    if o["where_expr"]:
        body["where"] = o["where_expr"]
    if o["features"]:
        body["features"] = o["features"].split(",")
    if o["bins"]:
        body["bins"] = _numbers(o["bins"], "--bins")
    if o["epsilon"] is not None:
        body["epsilon"] = o["epsilon"]
    if o["bounds"]:
        body["bounds"] = _numbers(o["bounds"], "--bounds")
    for key in ("mechanism", "delta"):
        if o[key] is not None:
            body[key] = o[key]
    return body


def _follow(api: NodeAPI, found: dict[str, Any], show: bool) -> dict[str, Any]:
    path = f"/api/jobs/{found['id']}"
    if not show:
        return dict(api.wait_for_job(found["id"], timeout=7 * 24 * 3600))
    with click.progressbar(length=1000, label="job", file=sys.stderr, show_eta=True) as bar:
        done = 0
        while found["status"] == "running":
            found = api.get(path, wait=0.2)  # answered at once when the job ends
            target = int(found["progress"] * 1000)
            bar.label = f"job: {found['phase']:<10}"
            bar.update(max(0, target - done))
            done = max(done, target)
        bar.update(1000 - done)
    return found


@job.command("status")
@click.argument("job_id")
@pass_state
def job_status(state: State, job_id: str) -> None:
    """Show a job's state, progress and outcome."""
    found = _call(state, "GET", f"/api/jobs/{job_id}")
    emit(state, found, _job_line(found))


@job.command("result")
@click.argument("job_id")
@click.option("--offset", type=int, default=0)
@click.option("--limit", type=int, default=1000)
@pass_state
def job_result(state: State, job_id: str, offset: int, limit: int) -> None:
    """Print a finished job's result."""
    found = _call(state, "GET", f"/api/jobs/{job_id}/result", offset=offset, limit=limit)
    if "cardinality" in found:
        emit(state, found, f"|A ∩ B| = {found['cardinality']}")
    elif "statistics" in found:
        lines = [
            f"{name}: {json.dumps(value, ensure_ascii=False)}" for name, value in found["statistics"].items()
        ]
        lines.append(
            f"from {found['contributors']} providers: {json.dumps(found['answers'], ensure_ascii=False)}"
        )
        emit(state, found, "\n".join(lines))
    elif "scores" in found:
        emit(
            state,
            found,
            "\n".join(
                f"{r['id']},{'not found' if r.get('not_found') else r['score']}" for r in found["scores"]
            ),
        )
    else:
        emit(state, found, "\n".join(found["intersection"]))


@job.command("list")
@pass_state
def job_list(state: State) -> None:
    """List recent jobs."""
    found = _call(state, "GET", "/api/jobs")
    emit(state, found, "\n".join(_job_line(j) for j in found["jobs"]) or "no jobs")


@cli.group()
def outbox() -> None:
    """Usage records waiting for delivery to the ledger."""


@outbox.command("flush")
@pass_state
def outbox_flush(state: State) -> None:
    """Deliver every due usage record now."""
    found = _call(state, "POST", "/api/outbox/flush")
    emit(state, found, f"delivered {found['delivered']}, failed {found['failed']}")


@outbox.command("receipts")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), required=True, help="File to write.")
@pass_state
def outbox_receipts(state: State, out: Path) -> None:
    """Write this connector's receipts (JSON Lines) for `tds audit verify --receipts`."""
    found = _call(state, "GET", "/api/outbox/receipts")["receipts"]
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in found), "utf-8")
    emit(state, {"file": str(out), "receipts": len(found)}, f"wrote {len(found)} receipts to {out}")


# --- audit ---------------------------------------------------------------------------------
@cli.group()
def audit() -> None:
    """Read and check the usage ledger (auditors, operator)."""


def _audit_api(state: State, space_url: str | None, token: str | None) -> NodeAPI:
    if space_url and token:
        return NodeAPI(space_url, token)
    if space_url or token:
        raise click.UsageError("give both --space and --token, or neither (then --data-dir is the space's)")
    return state.api("space")


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
    api = _audit_api(state, space_url, token)
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
              help="Where this auditor keeps the heads it has seen (default: --data-dir).")  # fmt: skip
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

    memory = auditing.State(state_dir or state.data_dir)
    receipts = [r for path in receipt_files for r in auditing.read_receipts(path)]
    proofs = None
    if export_file is not None:
        if space_url or token:
            raise click.UsageError("give --export or --space/--token, not both")
        bundle = auditing.read_export(export_file)
    else:
        api = _audit_api(state, space_url, token)
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
        click.echo("verified")


@audit.command("export")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), required=True, help="File to write.")
@click.option("--space", "space_url", help="The space's URL (with --token).")
@click.option("--token", envvar="TDS_TOKEN", help="An auditor or operator token (env TDS_TOKEN).")
@pass_state
def audit_export(state: State, out: Path, space_url: str | None, token: str | None) -> None:
    """Write the log, its signed heads and the participants' keys to a file `verify` can check offline."""
    from tds import audit as auditing

    api = _audit_api(state, space_url, token)
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


# --- settlement --------------------------------------------------------------------------
@cli.command("settle")
@click.option("--period", required=True, help="The closed month to settle, YYYY-MM.")
@pass_state
def settle(state: State, period: str) -> None:
    """Settle a closed period from the usage log: fees, commission, revenue shares (operator).

    Settling a period again prints what was settled; it never changes."""
    summary = _call(state, "POST", "/admin/settlements", {"period": period}, role="space")
    document = summary["document"]
    lines = [
        f"period {period}: {len(document['agreements'])} agreements, fees {document['fees_fen']} fen, "
        f"commission {document['commission_fen']} fen ({document['commission_bp']} bp), "
        f"over the log's first {document['log']['tree_size']} records"
    ]
    for item in document["agreements"]:
        split = ", ".join(f"{s['party']} {s['amount_fen']}" for s in item["split"])
        lines.append(f"  {item['agreement']}: {item['uses']} uses, {item['fee_fen']} fen → {split}")
    emit(state, summary, "\n".join(lines))


@cli.command("statement")
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
    api = _audit_api(state, space_url, token)
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


@cli.group()
def market() -> None:
    """Market figures from settled periods."""


@market.command("index")
@click.option("--sector", help="Only this sector.")
@click.option("--space", "space_url", help="The space's URL (with --token).")
@click.option("--token", envvar="TDS_TOKEN", help="An auditor or operator token (env TDS_TOKEN).")
@pass_state
def market_index(state: State, sector: str | None, space_url: str | None, token: str | None) -> None:
    """The price index per sector: median unit price of settled uses, chained to the first period = 100."""
    api = _audit_api(state, space_url, token)
    try:
        points = api.get("/market/index", sector=sector)["index"]
    finally:
        api.close()
    lines = [f"{'sector':12} {'period':8} {'uses':>6} {'median fen':>11} {'index':>8}"]
    for p in points:
        lines.append(f"{p['sector']:12} {p['period']:8} {p['uses']:>6} {p['median_unit_fen']:>11.1f} ")
        lines[-1] += f"{p['chained_index']:>8.2f}"
    emit(state, {"index": points}, "\n".join(lines))


# --- sandbox -------------------------------------------------------------------------------
@cli.group()
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


# --- demo ----------------------------------------------------------------------------------
@cli.command("demo")
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


def _logging() -> None:
    logging.basicConfig(
        level=os.environ.get("TDS_LOG", "INFO"), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def _json_here(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    state = ctx.find_object(State)  # made by the group's callback, before this command's options
    if value and state is not None:
        state.as_json = True


def _accept_json_after(group: click.Group) -> None:
    """``--json`` after any command as well as before it (``tds demo --json``), as people type
    it for gh and kubectl: every leaf command gets the option, which sets the one flag."""
    for command in group.commands.values():
        if isinstance(command, click.Group):
            _accept_json_after(command)
        elif not any("--json" in getattr(p, "opts", ()) for p in command.params):
            command.params.append(
                click.Option(["--json"], is_flag=True, expose_value=False, callback=_json_here,
                             help="Print machine-readable JSON (also accepted before the command).")
            )  # fmt: skip


_accept_json_after(cli)


def main() -> None:
    os.umask(PRIVATE_UMASK)  # every file and folder a node or the CLI creates is the owner's alone
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (TdsError, DatabaseURLError, ConfigError, ContractError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(getattr(exc, "exit_code", 1))


if __name__ == "__main__":
    main()
