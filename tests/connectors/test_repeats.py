"""he.score's per-id counts (connectors.repeats) on SQLite and PostgreSQL."""

from __future__ import annotations

from connectors import repeats
from node.db import Database, migrate


def test_counts_add_up_per_agreement_and_id(db_url: str) -> None:
    migrate(db_url, "connectors:migrations")
    database = Database(db_url)
    try:
        first = repeats.hashes("urn:uuid:a", [f"P-{i}" for i in range(1200)])  # more than one IN chunk
        other = repeats.hashes("urn:uuid:b", ["P-0"])
        assert first[0] != other[0]  # the same id under another agreement is another count
        with database.transaction() as session:
            repeats.count(session, "urn:uuid:a", first)
        with database.transaction() as session:
            repeats.count(session, "urn:uuid:a", first[1100:])
        with database.session() as session:
            assert repeats.most_scored(session, "urn:uuid:a", first[:10]) == 1
            assert repeats.most_scored(session, "urn:uuid:a", [first[0], first[1150]]) == 2
            assert repeats.most_scored(session, "urn:uuid:b", other) == 0
    finally:
        database.dispose()
