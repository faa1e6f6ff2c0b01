"""A node's data directory: config.json, its key (0600), its admin token (0600), its database."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from contracts.keys import SigningKey

CONFIG = "config.json"
KEY = "node.key"
TOKEN = "admin.token"


class ConfigError(Exception):
    pass


@dataclass
class NodeConfig:
    role: str  # "space" or "connector"
    id: str  # participant id of a connector, "space" for the space
    url: str  # base URL this node serves on, e.g. http://127.0.0.1:8701
    db: str  # SQLAlchemy URL
    data_dir: str
    space_url: str = ""  # connectors: the space they belong to
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return Path(self.data_dir)

    @property
    def host(self) -> str:
        return self.url.split("://", 1)[1].rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].split("/", 1)[0])

    def key(self) -> SigningKey:
        return SigningKey.load(self.path / KEY)

    def admin_token(self) -> str:
        return read_secret(self.path / TOKEN)

    def save(self) -> None:
        data = asdict(self)
        del data["data_dir"]
        write_file(self.path / CONFIG, json.dumps(data, indent=2).encode(), mode=0o600, replace=True)


PRIVATE_UMASK = 0o077  # what a node creates — databases, job results, logs — only it may read


def private_dir(path: Path) -> None:
    """Create ``path`` (and its parents) as a folder only its owner may enter (0700); an
    existing one is narrowed to 0700, since it will hold the node's key, database and results."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def private_files(data_dir: Path) -> None:
    """Narrow the files a node keeps in ``data_dir`` to 0600 (SQLite creates its database
    under the process's umask, which the CLI sets to PRIVATE_UMASK; a library caller may not)."""
    for path in data_dir.iterdir():
        if path.is_file() and not path.is_symlink():
            os.chmod(path, 0o600)


def default_db(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / 'tds.db').resolve()}"


def load(data_dir: Path, role: str | None = None) -> NodeConfig:
    path = data_dir / CONFIG
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{data_dir} is not a TDS node directory (no {CONFIG}); create one with "
            f"'tds space init' or 'tds connector init'"
        ) from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    config = NodeConfig(data_dir=str(data_dir.resolve()), **raw)
    if role is not None and config.role != role:
        raise ConfigError(f"{data_dir} holds a {config.role} node, expected a {role}")
    return config


def write_file(path: Path, data: bytes, *, mode: int, replace: bool = False) -> None:
    """Write atomically with ``mode`` from the start (a secret is never briefly world-readable)."""
    if path.exists() and not replace:
        raise ConfigError(f"{path} already exists; refusing to overwrite it")
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def read_secret(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
