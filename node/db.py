"""Database engines, sessions and Alembic migrations for a node.

The embedded default is SQLite in WAL mode in the node's data directory; a
``postgresql+psycopg://`` URL selects PostgreSQL. Schema changes go through Alembic only.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

SUPPORTED = ("sqlite", "postgresql")


class DatabaseURLError(ValueError):
    pass


def check_url(url: str) -> str:
    scheme = url.split(":", 1)[0].split("+", 1)[0]
    if scheme not in SUPPORTED:
        raise DatabaseURLError(
            f"database URL {url.split('@')[-1]!r} is not supported; use sqlite:///PATH "
            "or postgresql+psycopg://USER@HOST:PORT/DB"
        )
    return url


def make_engine(url: str, durable: bool = False) -> Engine:
    """``durable``: SQLite syncs every commit to disk (``synchronous=FULL``), not only at WAL
    checkpoints, so that a commit survives power loss as well as a crash (PostgreSQL always
    does)."""
    check_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10)


class Database:
    """An engine and its session factory; ``write_lock`` serialises writers that read-then-write
    a single row (SQLite has no row locks; PostgreSQL also takes ``FOR UPDATE``)."""

    def __init__(self, url: str, durable: bool = False) -> None:
        self.url = url
        self.engine = make_engine(url, durable)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.write_lock = threading.RLock()

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.sessions() as session:
            yield session

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with self.sessions() as session, session.begin():
            yield session

    def update(self, model: type[Any], key: Any, **changes: Any) -> None:
        """Sets ``changes`` on the row of ``model`` with primary key ``key``, in a transaction."""
        with self.transaction() as session:
            row = session.get(model, key)
            if row is None:
                raise LookupError(f"no {model.__name__} {key!r}")
            for name, value in changes.items():
                setattr(row, name, value)

    def dispose(self) -> None:
        self.engine.dispose()


def run_migrations(metadata: Any) -> None:
    """The body of each package's Alembic env.py: migrate on the connection ``migrate`` passes,
    or on one opened from the URL when run from the alembic command line."""
    from alembic import context

    def run(connection: Any) -> None:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()

    connection = context.config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return
    engine = create_engine(context.config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as own:
        run(own)


def create_database(url: str, script_location: str, token_model: Any, role: str) -> str:
    """Migrate a new node's database and store its first person token; return the token."""
    from node.tokens import new_token, token_hash

    migrate(url, script_location)
    token = new_token()
    db = Database(url)
    try:
        with db.transaction() as session:
            # the label names the actor wherever its acts show (operator actions, review steps)
            label = {"operator": "operator", "admin": "administrator"}.get(role, role)
            session.add(token_model(token_hash=token_hash(token), role=role, label=label))
    finally:
        db.dispose()
    return token


def migrate(url: str, script_location: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` (the newest) of ``script_location``."""
    config = Config()
    config.set_main_option("script_location", script_location)
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        engine.dispose()
