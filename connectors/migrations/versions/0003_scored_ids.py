"""how often each id was scored under an agreement (he.score's idRepeats)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scored_ids",
        sa.Column("agreement_id", sa.String(length=60), nullable=False),
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("times", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("agreement_id", "id_hash"),
    )


def downgrade() -> None:
    op.drop_table("scored_ids")
