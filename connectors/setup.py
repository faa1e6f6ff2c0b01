"""Creating a connector's data directory and registering it with the space."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from connectors.models import Token
from contracts.keys import SigningKey
from node.config import (
    KEY,
    TOKEN,
    ConfigError,
    NodeConfig,
    default_db,
    private_dir,
    private_files,
    write_file,
)
from node.db import check_url, create_database
from node.signing import SignedClient

MIGRATIONS = "connectors:migrations"


class SetupError(ConfigError):
    """A connector that cannot be set up: the space cannot be reached or does not answer as
    one, or the data directory is taken. A configuration error to the command line."""


def space_identity(space_url: str) -> dict[str, Any]:
    try:
        response = httpx.get(space_url.rstrip("/") + "/.well-known/tds", timeout=10, trust_env=False)
        response.raise_for_status()
        info = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise SetupError(f"cannot reach the space at {space_url}: {exc}") from exc
    if info.get("role") != "space" or not info.get("public_key"):
        raise SetupError(f"{space_url} does not answer as a TDS space")
    return info


def _endpoint_policy(space: dict[str, Any]) -> dict[str, Any]:
    """The space's endpoint policy as connector options; a space that publishes none gets the
    defaults (policies.endpoints)."""
    policy = space.get("endpoints")
    if not isinstance(policy, dict):
        return {}
    return {
        "endpoint_denied_ranges": list(policy.get("denied", [])),
        "endpoint_loopback": policy.get("loopback") is True,
    }


def init_connector(
    data_dir: Path,
    *,
    name: str,
    url: str,
    space_url: str,
    legal_name: str,
    credit_code: str,
    roles: list[str],
    jurisdiction: str,
    db_url: str | None,
    options: dict[str, Any],
) -> tuple[NodeConfig, str, dict[str, Any]]:
    """Register with the space first (nothing is written if it refuses), then create the
    data directory. Returns (config, admin token shown once, the space's participant view)."""
    if (data_dir / KEY).exists():
        raise SetupError(f"{data_dir} already holds a node key; use another --data-dir")
    space = space_identity(space_url)
    key = SigningKey.generate()
    client = SignedClient(name, key)
    try:
        registration = client.send(
            "POST",
            space_url.rstrip("/") + "/participants",
            json={
                "id": name,
                "legal_name": legal_name,
                "credit_code": credit_code,
                "roles": roles,
                "jurisdiction": jurisdiction,
                "public_key": key.public_key,
                "endpoint": url.rstrip("/"),
            },
        ).json()
    finally:
        client.close()
    private_dir(data_dir)
    config = NodeConfig(
        role="connector",
        id=name,
        url=url.rstrip("/"),
        db=check_url(db_url or default_db(data_dir)),
        data_dir=str(data_dir.resolve()),
        space_url=space_url.rstrip("/"),
        options={**options, "space_public_key": space["public_key"], **_endpoint_policy(space)},
    )
    key.save(data_dir / KEY)
    token = create_database(config.db, MIGRATIONS, Token, "admin")
    write_file(data_dir / TOKEN, token.encode(), mode=0o600)
    config.save()
    private_files(data_dir)
    return config, token, registration
