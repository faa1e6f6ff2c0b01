"""``tds connector``: set up, serve and inspect a participant's connector."""

from __future__ import annotations

import json
from typing import Any

import click

from tds.commands.common import (
    LOG_FORMATS,
    State,
    add_token_commands,
    call,
    emit,
    pass_state,
    setup_logging,
)
from tds.errors import TdsError


@click.group()
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
@click.option(
    "--log-format",
    type=click.Choice(LOG_FORMATS),
    help="text (default) or json: one JSON object a line (env TDS_LOG_FORMAT).",
)
@pass_state
def connector_serve(state: State, log_format: str | None) -> None:
    """Serve the connector's API until interrupted."""
    from connectors.app import create_app
    from node.web import serve

    config = state.config("connector")
    setup_logging(state, config.id, log_format)
    serve(create_app(config), config.host, config.port)


@connector.command("status")
@pass_state
def connector_status(state: State) -> None:
    """Show this connector's membership as the space sees it."""
    found = call(state, "GET", "/api/status")
    member = found["membership"]
    emit(state, found, f"{found['id']}: {member['status']} at {found['space']}; sandbox {found['sandbox']}")


@connector.command("renew")
@pass_state
def connector_renew(state: State) -> None:
    """Renew this connector's membership credential without a suspension. The space agrees in
    the credential's last 30 days (renew_within_days); the connector also does it by itself."""
    found = call(state, "POST", "/api/membership/renewal")
    until = found["credential"]["document"]["expires_at"]
    emit(state, found, f"{found['id']}: membership credential renewed, valid until {until}")


@connector.group("token", invoke_without_command=True)
@click.option("--role", type=click.Choice(["reviewer", "admin"]), default="reviewer", show_default=True)
@click.option("--label", default="", help="Who the token is for: a reviewer's steps name them so.")
@click.pass_context
def connector_token(ctx: click.Context, role: str, label: str) -> None:
    """Issue a bearer token: a reviewer reads consumers' scripts and approves, rejects, releases or
    withholds (tds review, the review console), and can do nothing else here. `list`,
    `revoke ID` and `rotate` manage the tokens issued."""
    if ctx.invoked_subcommand is not None:
        return
    state = ctx.find_object(State)
    assert state is not None
    found = call(state, "POST", "/api/tokens", {"role": role, "label": label})
    emit(state, found, f"{role} token (shown once): {found['token']}")


add_token_commands(connector_token, "connector", "/api/tokens", "admin", "this connector")


COMMANDS = [connector]
