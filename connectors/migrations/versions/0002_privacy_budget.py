"""the differential-privacy budget spent under each agreement; a negotiated price

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("negotiations") as batch:
        batch.add_column(sa.Column("epsilon_spent", sa.Float(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("price", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("negotiations") as batch:
        batch.drop_column("price")
        batch.drop_column("epsilon_spent")
