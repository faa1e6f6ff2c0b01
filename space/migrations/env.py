"""Alembic environment for the space database (node.db.migrate runs it)."""

from node.db import run_migrations
from space.models import Base

run_migrations(Base.metadata)
