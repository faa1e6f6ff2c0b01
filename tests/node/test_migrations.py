"""The Alembic migrations build exactly the schema the models describe, on both databases."""

import importlib
import json

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from node.db import make_engine, migrate


@pytest.mark.parametrize(
    ("package", "models"), [("space", "space.models"), ("connectors", "connectors.models")]
)
def test_migrations_match_the_models(db_url: str, package: str, models: str) -> None:
    migrate(db_url, f"{package}:migrations")
    metadata = importlib.import_module(models).Base.metadata
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_the_console_migration_counts_the_uses_already_in_the_log(db_url: str) -> None:
    """0005 fills the per-day counts from the records a space already holds."""
    import datetime as dt

    from sqlalchemy import text

    migrate(db_url, "space:migrations", "0004")
    engine = make_engine(db_url)
    rows = [("2026-10-03T10:00:00Z", "succeeded"), ("2026-10-03T23:59:59Z", "succeeded"),
            ("2026-10-03T11:00:00Z", "denied"), ("2026-10-04T00:00:00Z", "succeeded")]  # fmt: skip
    try:
        with engine.begin() as connection:
            for seq, (finished, outcome) in enumerate(rows):
                signed = {"document": {"finished_at": finished, "outcome": outcome}, "signatures": {}}
                connection.execute(
                    text(
                        "INSERT INTO ledger_entries (seq, record_id, signed, leaf_hash, agreement_id,"
                        " dataset_id, provider_id, consumer_id, operation, outcome, fee_fen, appended_at,"
                        " submitted_by)"
                        " VALUES (:seq, :id, :signed, :leaf, 'a', 'd', 'p', 'c', 'psi.cardinality', :outcome,"
                        " 0, :at, 'c')"
                    ),
                    {"seq": seq, "id": f"r{seq}", "signed": json.dumps(signed), "leaf": "00" * 32,
                     "outcome": outcome, "at": dt.datetime(2026, 11, 1, tzinfo=dt.UTC)},
                )  # fmt: skip
        migrate(db_url, "space:migrations")
        with engine.connect() as connection:
            counts = connection.execute(
                text("SELECT day, outcome, uses FROM daily_usage ORDER BY day, outcome")
            )
            assert [tuple(r) for r in counts] == [
                ("2026-10-03", "denied", 1),
                ("2026-10-03", "succeeded", 2),
                ("2026-10-04", "succeeded", 1),
            ]
    finally:
        engine.dispose()
