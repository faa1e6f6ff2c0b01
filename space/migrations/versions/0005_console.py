"""console: participant tokens, the log of operator actions, indexes for filtered log pages

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A filtered page of the log is "WHERE column = ? AND seq < ? ORDER BY seq DESC LIMIT n": with
# (column, seq) the database walks the index and stops after n rows, at any log size. These
# replace the single-column indexes, which are their prefixes.
FILTERED = ("agreement_id", "consumer_id", "dataset_id", "outcome", "provider_id", "operation")
REPLACED = ("agreement_id", "consumer_id", "dataset_id", "outcome", "provider_id")


def upgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("participant_id", sa.String(length=40), nullable=True))
    op.create_table(
        "operator_actions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    for column in REPLACED:
        op.drop_index(f"ix_ledger_entries_{column}", table_name="ledger_entries")
    for column in FILTERED:
        op.create_index(f"ix_ledger_entries_{column}_seq", "ledger_entries", [column, "seq"])
    daily = op.create_table(
        "daily_usage",
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("uses", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "outcome"),
    )
    _count_days(daily)


def _count_days(daily: sa.Table) -> None:
    """Uses per day and outcome of the records already in the log (by their finished_at)."""
    entries = sa.table("ledger_entries", sa.column("seq"), sa.column("signed", sa.JSON))
    counts: dict[tuple[str, str], int] = {}
    bind = op.get_bind()
    for (signed,) in bind.execute(sa.select(entries.c.signed).order_by(entries.c.seq)):
        record = signed["document"]
        key = (str(record["finished_at"])[:10], record["outcome"])
        counts[key] = counts.get(key, 0) + 1
    if counts:
        op.bulk_insert(daily, [{"day": d, "outcome": o, "uses": n} for (d, o), n in counts.items()])


def downgrade() -> None:
    op.drop_table("daily_usage")
    for column in FILTERED:
        op.drop_index(f"ix_ledger_entries_{column}_seq", table_name="ledger_entries")
    for column in REPLACED:
        op.create_index(f"ix_ledger_entries_{column}", "ledger_entries", [column])
    op.drop_table("operator_actions")
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("participant_id")
