import datetime as dt
from pathlib import Path

from sqlalchemy import func, select

from node.db import Database, migrate
from node.signing import WINDOW, NonceStore
from space.models import SeenNonce

NOW = dt.datetime(2026, 11, 27, 8, 0, tzinfo=dt.UTC)


def store(tmp_path: Path) -> NonceStore:
    url = f"sqlite:///{tmp_path / 'n.db'}"
    migrate(url, "space:migrations")
    return NonceStore(Database(url), SeenNonce)


def count(nonces: NonceStore) -> int:
    with nonces.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(SeenNonce)) or 0)


def test_a_nonce_is_accepted_once_per_key(tmp_path: Path) -> None:
    nonces = store(tmp_path)
    assert nonces.remember("bank", "n1", NOW)
    assert not nonces.remember("bank", "n1", NOW)
    assert nonces.remember("telecom", "n1", NOW)  # nonces are per key


def test_old_nonces_are_pruned_but_not_recent_ones(tmp_path: Path) -> None:
    nonces = store(tmp_path)
    nonces.remember("bank", "old", NOW - dt.timedelta(seconds=3 * WINDOW))
    nonces.remember("bank", "recent", NOW - dt.timedelta(seconds=WINDOW))
    nonces._pruned_at = 0.0  # a minute has passed since the last pruning
    nonces.remember("bank", "new", NOW)
    assert count(nonces) == 2
    assert not nonces.remember("bank", "recent", NOW)  # still refused as a replay
