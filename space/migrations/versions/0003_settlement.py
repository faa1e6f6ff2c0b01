"""settlement: settled periods, signed statements, the price index

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27

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
        "settlements",
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("period"),
    )
    op.create_table(
        "statements",
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("participant", sa.String(length=40), nullable=False),
        sa.Column("signed_json", sa.Text(), nullable=False),
        sa.Column("csv", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["period"], ["settlements.period"]),
        sa.PrimaryKeyConstraint("period", "participant"),
    )
    op.create_table(
        "price_index",
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("sector", sa.String(length=50), nullable=False),
        sa.Column("uses", sa.BigInteger(), nullable=False),
        sa.Column("median_unit_fen", sa.Float(), nullable=False),
        sa.Column("chained_index", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["period"], ["settlements.period"]),
        sa.PrimaryKeyConstraint("period", "sector"),
    )


def downgrade() -> None:
    op.drop_table("price_index")
    op.drop_table("statements")
    op.drop_table("settlements")
