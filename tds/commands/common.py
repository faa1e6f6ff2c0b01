"""What every command module uses: the node's data directory and output mode (State), printing
for people or as JSON, and calls to this node's own API or the space's."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import click

from node.config import ConfigError, NodeConfig, load
from tds.client import NodeAPI
from tds.errors import TdsError


class State:
    """What the global options say (tds.cli): given before the command or after it."""

    def __init__(self, data_dir: Path = Path("."), as_json: bool = False) -> None:
        self.data_dir = data_dir
        self.as_json = as_json
        self.verbose = False

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


def call(
    state: State, method: str, path: str, body: Any = None, *, role: str = "connector", **params: Any
) -> Any:
    """One call to this node's own API with its admin (connector) or operator (space) token."""
    api = state.api(role)
    try:
        return api.call(method, path, json=body, params=params)
    finally:
        api.close()


def operator_call(state: State, method: str, path: str, body: Any = None) -> Any:
    return call(state, method, path, body, role="space")


def audit_api(state: State, space_url: str | None, token: str | None) -> NodeAPI:
    if space_url and token:
        return NodeAPI(space_url, token)
    if space_url or token:
        raise click.UsageError("give both --space and --token, or neither (then --data-dir is the space's)")
    return state.api("space")


LOG_FORMATS = ("text", "json")


def setup_logging(state: State, node: str, log_format: str | None = None) -> None:
    """A serving node's log: its own INFO lines; each outgoing HTTP request (httpx logs one line
    per request at INFO) only with ``-v``. ``log_format`` (or ``TDS_LOG_FORMAT``) ``json``
    writes one JSON object a line — time (UTC), level, logger, message, the node's id — for a
    log collector, through python-json-logger."""
    chosen = log_format or os.environ.get("TDS_LOG_FORMAT") or "text"
    if chosen not in LOG_FORMATS:
        raise TdsError(
            f"log format: expected one of {', '.join(LOG_FORMATS)}, got {chosen!r} (TDS_LOG_FORMAT)"
        )
    handler = logging.StreamHandler()
    if chosen == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                static_fields={"node": node},
                datefmt="%Y-%m-%dT%H:%M:%S%z",
            )
        )
        handler.formatter.converter = time.gmtime  # type: ignore[union-attr]
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=os.environ.get("TDS_LOG", "INFO"), handlers=[handler])
    if not state.verbose:
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).setLevel(logging.WARNING)


def plural(n: int, noun: str) -> str:
    """``1 agreement``, ``2 agreements``: English plurals of the nouns the CLI counts."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def add_token_commands(group: click.Group, role: str, path: str, own_role: str, where: str) -> None:
    """``list``, ``revoke ID`` and ``rotate`` under a node's ``token`` group (``tds space token``,
    ``tds connector token``): ``path`` is the node's token API, ``own_role`` the role of its
    data directory's admin.token, ``where`` how the help names the node."""

    @group.command("list")
    @pass_state
    def token_list(state: State) -> None:
        found = call(state, "GET", path, role=role)
        emit(state, found, token_lines(found["tokens"]))

    token_list.help = f"Every token of {where}: id, role, label, whether revoked (never the token)."

    @group.command("revoke")
    @click.argument("token_id")
    @pass_state
    def token_revoke(state: State, token_id: str) -> None:
        found = call(state, "POST", f"{path}/{token_id}/revoke", role=role)
        emit(state, found, f"revoked {found['id']} ({found['role']} {found['label']})".rstrip())

    token_revoke.help = f"Revoke a token of {where} by the id `list` shows."

    @group.command("rotate")
    @pass_state
    def token_rotate(state: State) -> None:
        rotated = rotate_token(state, role, path, {"role": own_role, "label": "rotated"})
        emit(
            state,
            rotated,
            f"{own_role} token rotated: {rotated['old']} revoked, {rotated['new']} in admin.token",
        )

    token_rotate.help = (
        f"Replace this data directory's {own_role} token (admin.token): a new one is issued and saved, "
        "then the old one is revoked."
    )


def token_lines(found: list[dict[str, Any]]) -> str:
    lines = []
    for t in found:
        state = "revoked" if t["revoked"] else "live"
        lines.append(f"{t['id']}  {t['role']:<11} {state:<7}  {t['created_at']}  {t['label']}".rstrip())
    return "\n".join(lines)


def rotate_token(state: State, role: str, path: str, body: dict[str, Any]) -> dict[str, str]:
    """Issue a new token with this data directory's own, save it as its admin.token (0600, in
    one rename), then revoke the old one with the new: at no moment is the node without one."""
    from node.config import TOKEN, write_file
    from node.tokens import token_id

    config = state.config(role)
    old = config.admin_token()
    new = call(state, "POST", path, body, role=role)["token"]
    write_file(config.path / TOKEN, (new + "\n").encode(), mode=0o600, replace=True)
    call(state, "POST", f"{path}/{token_id(old)}/revoke", role=role)
    return {"old": token_id(old), "new": token_id(new)}
