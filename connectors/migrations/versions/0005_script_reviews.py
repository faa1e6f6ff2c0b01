"""reviewed scripts: each version of a consumer's code under an agreement, and each script job
from submission to released or withheld output

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "script_codes",
        sa.Column("id", sa.String(60), primary_key=True),
        sa.Column("agreement_id", sa.String(60), nullable=False, index=True),
        sa.Column("consumer_id", sa.String(40), nullable=False),
        sa.Column("code_sha256", sa.String(64), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("runs_granted", sa.Integer(), nullable=False),
        sa.Column("runs_used", sa.Integer(), nullable=False),
        sa.Column("reviewer", sa.String(100), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "script_runs",
        sa.Column("id", sa.String(60), primary_key=True),
        sa.Column("code_id", sa.String(60), nullable=False, index=True),
        sa.Column("agreement_id", sa.String(60), nullable=False, index=True),
        sa.Column("consumer_id", sa.String(40), nullable=False),
        sa.Column("state", sa.String(20), nullable=False, index=True),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("columns", sa.JSON(), nullable=True),
        sa.Column("diff", sa.Text(), nullable=False),
        sa.Column("mock", sa.JSON(), nullable=True),
        sa.Column("output", sa.Text(), nullable=True),
        sa.Column("output_format", sa.String(10), nullable=True),
        sa.Column("output_sha256", sa.String(64), nullable=True),
        sa.Column("checks", sa.JSON(), nullable=True),
        sa.Column("release", sa.String(10), nullable=False),
        sa.Column("reviewer", sa.String(100), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("script_runs")
    op.drop_table("script_codes")
