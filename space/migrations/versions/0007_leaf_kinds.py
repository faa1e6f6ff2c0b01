"""ledger entries: countersignatures and dispute decisions are leaves of their own

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

The rows of late_signatures stay until the space starts: it appends each as a countersignature
leaf (signed with its key, which a migration does not hold) and deletes the row.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ledger_entries") as batch:
        batch.add_column(sa.Column("kind", sa.String(20), nullable=False, server_default="usage"))
        batch.add_column(sa.Column("subject", sa.String(60), nullable=True))
        batch.create_index("ix_ledger_entries_subject", ["subject"])


def downgrade() -> None:
    with op.batch_alter_table("ledger_entries") as batch:
        batch.drop_index("ix_ledger_entries_subject")
        batch.drop_column("subject")
        batch.drop_column("kind")
