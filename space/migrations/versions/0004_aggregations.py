"""aggregations: where providers' encrypted parts meet and are added

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "aggregations",
        sa.Column("job", sa.String(length=60), nullable=False),
        sa.Column("consumer_id", sa.String(length=40), nullable=False),
        sa.Column("agreements", sa.JSON(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("context", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("total", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("job"),
    )
    op.create_table(
        "aggregation_contributions",
        sa.Column("job", sa.String(length=60), nullable=False),
        sa.Column("agreement_id", sa.String(length=60), nullable=False),
        sa.Column("provider_id", sa.String(length=40), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["job"], ["aggregations.job"]),
        sa.PrimaryKeyConstraint("job", "agreement_id"),
    )


def downgrade() -> None:
    op.drop_table("aggregation_contributions")
    op.drop_table("aggregations")
