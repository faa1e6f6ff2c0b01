"""Alembic environment for the connectors database (node.db.migrate runs it)."""

from connectors.models import Base
from node.db import run_migrations

run_migrations(Base.metadata)
