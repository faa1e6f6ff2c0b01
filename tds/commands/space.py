"""``tds space``: run the space and act as its operator (admission, reviews, disputes, tokens)."""

from __future__ import annotations

import click

from tds.commands.common import (
    LOG_FORMATS,
    State,
    add_token_commands,
    emit,
    operator_call,
    pass_state,
    setup_logging,
)


@click.group()
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
@click.option(
    "--log-format",
    type=click.Choice(LOG_FORMATS),
    help="text (default) or json: one JSON object a line (env TDS_LOG_FORMAT).",
)
@pass_state
def space_serve(state: State, log_format: str | None) -> None:
    """Serve the space's API until interrupted."""
    from node.web import serve
    from space.app import create_app

    config = state.config("space")
    setup_logging(state, config.id, log_format)
    serve(create_app(config), config.host, config.port)


@space.command("admit")
@click.argument("participant")
@pass_state
def space_admit(state: State, participant: str) -> None:
    """Admit a registered participant and issue its membership credential."""
    found = operator_call(state, "POST", f"/admin/participants/{participant}/admit")
    expires = found["credential"]["document"]["expires_at"]
    emit(state, found, f"{participant} admitted; credential valid until {expires}")


@space.command("suspend")
@click.argument("participant")
@pass_state
def space_suspend(state: State, participant: str) -> None:
    """Suspend a participant: its signed requests are refused from now on."""
    found = operator_call(state, "POST", f"/admin/participants/{participant}/suspend")
    emit(state, found, f"{participant} suspended")


@space.command("participants")
@pass_state
def space_participants(state: State) -> None:
    """List participants and their status."""
    found = operator_call(state, "GET", "/admin/participants")
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
        entry = operator_call(
            state, "POST", f"/admin/reviews/{approve_id or reject_id}/{decision}", {"note": note}
        )
        emit(state, entry, f"{entry['id']} is now {entry['status']}")
        return
    found = operator_call(state, "GET", "/admin/reviews")
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
        receipt = operator_call(
            state,
            "POST",
            f"/admin/disputes/{bill_id or void_id}/decision",
            {"decision": verdict, "reason": reason},
        )
        emit(state, receipt, f"{bill_id or void_id}: {verdict}, decided at leaf {receipt['leaf_index']}")
        return
    found = operator_call(state, "GET", "/admin/disputes")
    lines = []
    for entry in found["disputed"]:
        r = entry["signed"]["document"]
        lines.append(
            f"{r['id']}  {r['finished_at']}  {r['operation']} {r['outcome']}  "
            f"{r['consumer']} ← {r['provider']}  fee {r['fee_fen']} fen"
        )
    emit(state, found, "\n".join(lines) or "no disputed uses")


@space.group("token", invoke_without_command=True)
@click.option(
    "--role", type=click.Choice(["auditor", "operator", "participant"]), default="auditor", show_default=True
)
@click.option("--participant", help="The participant a participant token belongs to.")
@click.option("--label", default="", help="Who the token is for (the log of operator actions names them so).")
@click.pass_context
def space_token(ctx: click.Context, role: str, participant: str | None, label: str) -> None:
    """Issue a bearer token for a person: for the API and for signing in to the web console
    (/console). Auditors read everything and change nothing; a participant sees its own.
    `list`, `revoke ID` and `rotate` manage the tokens issued."""
    if ctx.invoked_subcommand is not None:
        return
    state = ctx.find_object(State)
    assert state is not None
    body = {"role": role, "label": label, **({"participant": participant} if participant else {})}
    found = operator_call(state, "POST", "/admin/tokens", body)
    emit(state, found, found["token"])


add_token_commands(
    space_token, "space", "/admin/tokens", "operator", "the space (a revocation is an operator act)"
)


COMMANDS = [space]
