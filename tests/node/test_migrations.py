"""The Alembic migrations build exactly the schema the models describe, on both databases."""

import importlib

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
