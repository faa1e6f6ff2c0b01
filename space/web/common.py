"""What every blueprint of the space uses: the node's parts, and who is calling — a member with
an RFC 9421-signed request, or a person with a bearer token (operator, auditor)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import current_app, request

from contracts.errors import RequestSignatureError
from contracts.keys import SigningKey
from node import signing
from node.config import NodeConfig
from node.db import Database
from node.egress import GuardedBackend
from node.models import utcnow
from node.problems import Problem
from node.web import require_token, token_of
from policies import export_list
from policies.errors import RuleSetError
from policies.export_list import ExportRule
from policies.negative_list import ListRule, parse_rules
from sandbox import warm
from sandbox.backends import create_backend
from sandbox.limits import Limits
from space import notify, operator, registry
from space.errors import Refused
from space.models import Participant, Token
from space.settings import SpaceSettings

NEGATIVE_LIST = "negative_list.json"
EXPORT_LIST = "export_list.json"


def part(name: str) -> Any:
    return current_app.extensions["tds"][name]


def db() -> Database:
    database: Database = part("db")
    return database


def config() -> NodeConfig:
    node_config: NodeConfig = part("config")
    return node_config


def settings() -> SpaceSettings:
    space_settings: SpaceSettings = part("settings")
    return space_settings


def space_key() -> SigningKey:
    key: SigningKey = part("key")
    return key


def _rules(path: Path, parse: Callable[[object], Any], what: str) -> Any:
    """An operator's rule file, parsed; one it broke refuses what needs it with a clear 503
    (and ``tds status`` says so) rather than a bare 500."""
    try:
        return parse(json.loads(path.read_text("utf-8")))
    except (OSError, ValueError, RuleSetError) as exc:  # json's errors are ValueErrors
        raise Problem(
            503,
            "Rule file unusable",
            f"the space's {what} ({path.name}) cannot be used: {exc}; the operator fixes the file",
            kind="rule-file",
        ) from exc


def load_negative_list(data_dir: Path) -> tuple[ListRule, ...]:
    rules: tuple[ListRule, ...] = _rules(data_dir / NEGATIVE_LIST, parse_rules, "negative list")
    return rules


def load_export_list(data_dir: Path) -> tuple[ExportRule, ...]:
    """The operator's export list, read on every agreement; a space made before it had one has
    none (no rule applies) until the operator writes the file."""
    path = data_dir / EXPORT_LIST
    if not path.exists():
        return ()
    rules: tuple[ExportRule, ...] = _rules(path, export_list.parse_rules, "export list")
    return rules


def key_of(allowed: tuple[str, ...], self_id: str | None = None) -> Any:
    """The public key of a signing participant whose status is in ``allowed`` (or who is
    ``self_id``), for RFC 9421 verification; a suspended or expired member is refused."""

    def resolve(key_id: str) -> str | None:
        with db().session() as session:
            participant = session.get(Participant, key_id)
        if participant is None:
            return None
        if participant.status == "suspended":
            raise RequestSignatureError(f"participant {key_id} is suspended")
        if participant.status in allowed or key_id == self_id:
            if participant.status == "admitted" and not registry.credential_valid(participant, utcnow()):
                raise RequestSignatureError(f"membership credential of {key_id} has expired")
            return participant.public_key
        raise RequestSignatureError(f"participant {key_id} is {participant.status}, not admitted")

    return resolve


def signed_caller(self_id: str | None = None) -> str:
    verified = signing.verify_incoming(part("nonces"), config().url, key_of(("admitted",), self_id))
    return verified.key_id


def token_or_caller(roles: tuple[str, ...] = ("operator", "auditor")) -> tuple[str, str]:
    """("token", role) for a person with a token, ("participant", id) for a signed node."""
    if request.headers.get("Authorization"):
        return "token", require_token(db(), Token, roles)
    return "participant", signed_caller()


def operator_actor() -> str:
    """The operator making this request, as the log of operator actions names them."""
    return operator.actor_of(token_of(db(), Token, ("operator",)))


def reader() -> str | None:
    """Who reads the log: None for an operator or auditor (everything), else the participant
    (its own records only)."""
    kind, who = token_or_caller()
    return who if kind == "participant" else None


def int_args(**defaults: int) -> dict[str, int]:
    try:
        return {name: int(request.args.get(name, value)) for name, value in defaults.items()}
    except ValueError as exc:
        raise Refused(f"{', '.join(defaults)}: expected whole numbers", status=400) from exc


def tell_parties(view: dict[str, Any]) -> None:
    """After a termination is committed: tell both parties' connectors at once."""
    egress: GuardedBackend = part("egress")
    with db().session() as session:
        parties = [registry.get(session, pid) for pid in (view["provider"], view["consumer"])]
    notify.termination(space_key(), view, [p.endpoint for p in parties], egress)


def adders() -> warm.WarmPool:
    """Workers that add ciphertexts, each started ahead of the job it serves (sandbox/warm.py);
    made on first use: most spaces never add a ciphertext."""
    pool: list[warm.WarmPool] = part("adders")
    if not pool:
        pool.append(warm.WarmPool(create_backend(settings().sandbox_backend, Limits()), "he"))
    return pool[0]
