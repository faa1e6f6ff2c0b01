"""The space's tables (SQLAlchemy 2.0 typed models; schema changes via Alembic)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from node.models import TYPE_MAP, SeenNonceMixin, TokenMixin, UTCDateTime, utcnow


class Base(DeclarativeBase):
    type_annotation_map = TYPE_MAP


class SeenNonce(SeenNonceMixin, Base):
    pass


class Token(TokenMixin, Base):
    participant_id: Mapped[str | None] = mapped_column(String(40))  # a participant's console token


class Participant(Base):
    __tablename__ = "participants"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    legal_name: Mapped[str] = mapped_column(String(200))
    credit_code: Mapped[str] = mapped_column(String(18), unique=True)
    roles: Mapped[list[Any]]
    jurisdiction: Mapped[str] = mapped_column(String(20))
    public_key: Mapped[str] = mapped_column(String(64))
    endpoint: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(20), index=True)  # pending, admitted, suspended
    credential: Mapped[dict[str, Any] | None]
    registered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    admitted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class CatalogEntry(Base):
    __tablename__ = "catalog_entries"
    id: Mapped[str] = mapped_column(String(60), primary_key=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    keywords: Mapped[list[Any]]
    sector: Mapped[str] = mapped_column(String(50), index=True)
    columns: Mapped[list[Any]]
    key_column: Mapped[str] = mapped_column(String(200))
    row_count: Mapped[int] = mapped_column(BigInteger)
    profile: Mapped[dict[str, Any]]
    classification: Mapped[str] = mapped_column(String(20))
    pi_level: Mapped[str] = mapped_column(String(20))
    jurisdiction: Mapped[str] = mapped_column(String(20))
    operations: Mapped[str] = mapped_column(String(300))  # " op1 op2 " for filtering
    search_text: Mapped[str] = mapped_column(Text)  # case-folded title, description, keywords
    status: Mapped[str] = mapped_column(String(20), index=True)  # published, pending_review, rejected
    review_rule: Mapped[str | None] = mapped_column(String(300))
    review_note: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    mock: Mapped[str | None] = mapped_column(Text)  # the provider's mock sample, CSV (connectors.mock)


class Offer(Base):
    __tablename__ = "offers"
    id: Mapped[str] = mapped_column(String(60), primary_key=True)
    entry_id: Mapped[str] = mapped_column(ForeignKey("catalog_entries.id"), index=True)
    document: Mapped[dict[str, Any]]


class Agreement(Base):
    __tablename__ = "agreements"
    id: Mapped[str] = mapped_column(String(60), primary_key=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), index=True)
    consumer_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), index=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("catalog_entries.id"), index=True)
    offer_id: Mapped[str] = mapped_column(ForeignKey("offers.id"))
    signed: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(20))  # FINALIZED, TERMINATED
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    terminated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    terminated_by: Mapped[str | None] = mapped_column(String(40))
    termination_reason: Mapped[str | None] = mapped_column(Text)


class LedgerHead(Base):
    """One row: the log's size, locked by each append (PostgreSQL takes FOR UPDATE)."""

    __tablename__ = "ledger_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)


class LedgerEntry(Base):
    """A leaf of the transparency log at index ``seq``: a signed usage record, or a countersignature
    of one or the operator's decision on one (``kind``; ``subject`` names the record, whose
    agreement, parties and operation the row repeats so that filters find it; contracts.leaves).

    ``leaf_hash`` = SHA-256(0x00 ‖ canonical bytes of the signed document) (RFC 9162 §2.1.1)."""

    __tablename__ = "ledger_entries"
    # filtered log pages walk (column, seq) newest first and stop after a page (migration 0005)
    __table_args__ = tuple(
        Index(f"ix_ledger_entries_{column}_seq", column, "seq")
        for column in ("agreement_id", "consumer_id", "dataset_id", "outcome", "provider_id", "operation")
    )
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    record_id: Mapped[str] = mapped_column(String(60), unique=True)
    kind: Mapped[str] = mapped_column(String(20), default="usage", server_default="usage")
    subject: Mapped[str | None] = mapped_column(String(60), index=True)
    signed: Mapped[dict[str, Any]]
    leaf_hash: Mapped[str] = mapped_column(String(64))
    agreement_id: Mapped[str] = mapped_column(String(60))
    dataset_id: Mapped[str | None] = mapped_column(String(60))
    provider_id: Mapped[str] = mapped_column(String(40))
    consumer_id: Mapped[str] = mapped_column(String(40))
    operation: Mapped[str] = mapped_column(String(40))
    outcome: Mapped[str] = mapped_column(String(20))
    fee_fen: Mapped[int] = mapped_column(BigInteger)
    appended_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    submitted_by: Mapped[str] = mapped_column(String(40))


class MerkleNode(Base):
    """The hash of a perfect subtree: leaves [index << level, (index + 1) << level)."""

    __tablename__ = "merkle_nodes"
    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    index: Mapped[int] = mapped_column("idx", BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class TreeHead(Base):
    """A signed tree head, issued only after the leaves under it were committed."""

    __tablename__ = "tree_heads"
    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root_hash: Mapped[str] = mapped_column(String(64))
    signed: Mapped[dict[str, Any]]
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LedgerAlert(Base):
    """Something the operator and auditors must see, e.g. a record id sent with other content."""

    __tablename__ = "ledger_alerts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(40))
    record_id: Mapped[str] = mapped_column(String(60), index=True)
    submitted_by: Mapped[str] = mapped_column(String(40))
    detail: Mapped[dict[str, Any]]
    raised_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LateSignature(Base):
    """Before migration 0007: a countersignature kept beside its record's leaf. At start-up the
    space appends each as a countersignature leaf and deletes the row (disputes.adopt_late)."""

    __tablename__ = "late_signatures"
    record_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    signer: Mapped[str] = mapped_column(String(40), primary_key=True)
    signature: Mapped[str] = mapped_column(String(200))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Settlement(Base):
    """A settled period: computed once from the log's succeeded uses, then immutable."""

    __tablename__ = "settlements"
    period: Mapped[str] = mapped_column(String(7), primary_key=True)  # YYYY-MM
    settled_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    tree_size: Mapped[int] = mapped_column(BigInteger)  # the log as it was settled
    summary: Mapped[str] = mapped_column(Text)  # canonical JSON of the signed summary, as served


class Statement(Base):
    """One participant's signed statement for a settled period, as served (JSON and CSV)."""

    __tablename__ = "statements"
    period: Mapped[str] = mapped_column(ForeignKey("settlements.period"), primary_key=True)
    participant: Mapped[str] = mapped_column(String(40), primary_key=True)
    signed_json: Mapped[str] = mapped_column(Text)
    csv: Mapped[str] = mapped_column(Text)


class PricePoint(Base):
    """The price index of a sector in a settled period."""

    __tablename__ = "price_index"
    period: Mapped[str] = mapped_column(ForeignKey("settlements.period"), primary_key=True)
    sector: Mapped[str] = mapped_column(String(50), primary_key=True)
    uses: Mapped[int] = mapped_column(BigInteger)
    median_unit_fen: Mapped[float] = mapped_column(Float)
    chained_index: Mapped[float] = mapped_column(Float)


class Aggregation(Base):
    """An he.aggregate job's meeting point: the consumer's public context, the agreements whose
    providers contribute, and — once all have answered — the sum of their ciphertexts."""

    __tablename__ = "aggregations"
    job: Mapped[str] = mapped_column(String(60), primary_key=True)
    consumer_id: Mapped[str] = mapped_column(String(40))
    agreements: Mapped[list[Any]]
    fingerprint: Mapped[str] = mapped_column(String(64))
    context: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    total: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Contribution(Base):
    """One provider's answer to an aggregation: its ciphertext, or why it gives none."""

    __tablename__ = "aggregation_contributions"
    job: Mapped[str] = mapped_column(ForeignKey("aggregations.job"), primary_key=True)
    agreement_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    provider_id: Mapped[str] = mapped_column(String(40))
    ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    reason: Mapped[str] = mapped_column(Text)
    # the fewest distinct providers (other than the consumer) this ciphertext may be added with
    min_providers: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class OperatorAction(Base):
    """One thing the operator did (admit, suspend, review, settle, issue a token), for auditors."""

    __tablename__ = "operator_actions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str] = mapped_column(String(200))
    detail: Mapped[dict[str, Any]]


class DailyUsage(Base):
    """Uses per day (UTC, by the record's finished_at) and outcome, kept by each append so the
    console's chart reads a few rows, not the whole log."""

    __tablename__ = "daily_usage"
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD
    outcome: Mapped[str] = mapped_column(String(20), primary_key=True)
    uses: Mapped[int] = mapped_column(BigInteger)
