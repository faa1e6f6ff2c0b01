"""the usage ledger becomes a transparency log

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

Hash-chain columns give way to RFC 9162 leaf hashes and a table of perfect-subtree hashes;
signed tree heads, alerts and late countersignatures get their tables. Existing entries are
re-hashed as leaves here; the space signs a head over them when it next starts.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from contracts import merkle
from contracts.treehead import record_leaf

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "merkle_nodes",
        sa.Column("level", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx"),
    )
    op.create_table(
        "tree_heads",
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root_hash", sa.String(length=64), nullable=False),
        sa.Column("signed", sa.JSON(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("size"),
    )
    op.create_table(
        "ledger_alerts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("record_id", sa.String(length=60), nullable=False),
        sa.Column("submitted_by", sa.String(length=40), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_ledger_alerts_record_id", "ledger_alerts", ["record_id"])
    op.create_table(
        "late_signatures",
        sa.Column("record_id", sa.String(length=60), nullable=False),
        sa.Column("signer", sa.String(length=40), nullable=False),
        sa.Column("signature", sa.String(length=200), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("record_id", "signer"),
    )
    with op.batch_alter_table("ledger_entries") as batch:
        batch.add_column(sa.Column("leaf_hash", sa.String(length=64), nullable=True))
        batch.create_index("ix_ledger_entries_appended_at", ["appended_at"])
    _rehash_as_leaves()
    with op.batch_alter_table("ledger_entries") as batch:
        batch.alter_column("leaf_hash", nullable=False)
        batch.drop_column("record_hash")
        batch.drop_column("prev_hash")
        batch.drop_column("entry_hash")
    with op.batch_alter_table("ledger_head") as batch:
        batch.drop_column("head_hash")


def _rehash_as_leaves() -> None:
    bind = op.get_bind()
    entries = sa.table(
        "ledger_entries", sa.column("seq"), sa.column("signed", sa.JSON), sa.column("leaf_hash")
    )
    nodes = sa.table("merkle_nodes", sa.column("level"), sa.column("idx"), sa.column("hash"))
    table: dict[tuple[int, int], bytes] = {}
    for seq, signed in bind.execute(sa.select(entries.c.seq, entries.c.signed).order_by(entries.c.seq)):
        leaf = record_leaf(signed)
        bind.execute(entries.update().where(entries.c.seq == seq).values(leaf_hash=leaf.hex()))
        for level, index in merkle.completed_nodes(seq):
            table[(level, index)] = (
                leaf
                if level == 0
                else merkle.node_hash(table[(level - 1, 2 * index)], table[(level - 1, 2 * index + 1)])
            )
            bind.execute(nodes.insert().values(level=level, idx=index, hash=table[(level, index)]))


def downgrade() -> None:
    raise NotImplementedError("the hash chain cannot be rebuilt from a transparency log: restore a backup")
