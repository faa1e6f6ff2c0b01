"""Alembic environment for the connectors database (run through node.db.migrate)."""

from alembic import context
from sqlalchemy import create_engine

from connectors.models import Base

target_metadata = Base.metadata


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:  # alembic command line: open our own connection
        engine = create_engine(context.config.get_main_option("sqlalchemy.url"))
        with engine.begin() as own:
            context.configure(connection=own, target_metadata=target_metadata, render_as_batch=True)
            with context.begin_transaction():
                context.run_migrations()
        return
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


run()
