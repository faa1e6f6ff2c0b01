from collections.abc import Iterator

import pytest

from node.db import Database, migrate
from node.models import utcnow
from space import registry
from tests.conftest import ALICE, BOB
from tests.integration.helpers import CODES


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """A migrated space database, on SQLite and on PostgreSQL."""
    migrate(db_url, "space:migrations")
    database = Database(db_url)
    yield database
    database.dispose()


def fields(pid: str, key: str, code: str, roles: list[str] | None = None) -> dict:
    return registry.validate_registration(
        {
            "id": pid,
            "legal_name": f"{pid} Ltd",
            "credit_code": code,
            "roles": roles or ["provider", "consumer"],
            "jurisdiction": "CN-HA",
            "public_key": key,
            "endpoint": f"http://127.0.0.1:1/{pid}",
        }
    )


@pytest.fixture
def members(db: Database) -> Database:
    """telecom (ALICE's key) and bank (BOB's key), both admitted."""
    from contracts.keys import SigningKey

    space_key = SigningKey.from_seed(bytes(32))
    with db.transaction() as session:
        for pid, key, code in (("telecom", ALICE, CODES[0]), ("bank", BOB, CODES[1])):
            registry.register(session, fields(pid, key.public_key, code))
            session.flush()
            registry.admit(session, pid, space_key, utcnow(), 365)
    return db
