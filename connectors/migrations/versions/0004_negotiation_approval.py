"""how a provider's negotiation is approved: automatic (the offer says so and the listed price is
asked) or manual (a person runs `tds contract approve`)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("negotiations") as batch:
        batch.add_column(sa.Column("approval", sa.String(length=10), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("negotiations") as batch:
        batch.drop_column("approval")
