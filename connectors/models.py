"""The connector's own tables (SQLAlchemy 2.0 typed models; schema changes via Alembic)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Float, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from contracts.usage import Outcome
from node.models import TYPE_MAP, SeenNonceMixin, TokenMixin, UTCDateTime, utcnow


class Base(DeclarativeBase):
    type_annotation_map = TYPE_MAP


class SeenNonce(SeenNonceMixin, Base):
    pass


class Token(TokenMixin, Base):
    pass


class Dataset(Base):
    __tablename__ = "datasets"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    path: Mapped[str] = mapped_column(String(500))  # the connector's own copy; never sent
    key_column: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    keywords: Mapped[list[Any]]
    sector: Mapped[str] = mapped_column(String(50))
    classification: Mapped[str] = mapped_column(String(20))
    pi_level: Mapped[str] = mapped_column(String(20))
    jurisdiction: Mapped[str] = mapped_column(String(20))
    columns: Mapped[list[Any]]
    row_count: Mapped[int] = mapped_column(BigInteger)
    profile: Mapped[dict[str, Any]]
    catalog_id: Mapped[str | None] = mapped_column(String(60), index=True)
    catalog_status: Mapped[str | None] = mapped_column(String(20))
    offers: Mapped[list[Any]]  # as published, with the space's offer ids
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Negotiation(Base):
    """One contract negotiation, from this connector's side (consumer or provider)."""

    __tablename__ = "negotiations"
    id: Mapped[str] = mapped_column(String(60), primary_key=True)  # our own pid
    role: Mapped[str] = mapped_column(String(10))  # consumer | provider
    consumer_pid: Mapped[str] = mapped_column(String(60))
    provider_pid: Mapped[str | None] = mapped_column(String(60))
    peer_id: Mapped[str] = mapped_column(String(40))
    peer_endpoint: Mapped[str] = mapped_column(String(300))  # where to send the peer DSP messages
    offer_id: Mapped[str] = mapped_column(String(60))
    dataset_id: Mapped[str] = mapped_column(String(60))
    purpose: Mapped[str] = mapped_column(String(200))
    operations: Mapped[list[Any]]
    state: Mapped[str] = mapped_column(String(20), index=True)
    agreement_id: Mapped[str | None] = mapped_column(String(60), unique=True)
    agreement: Mapped[dict[str, Any] | None]  # signed document
    decision: Mapped[dict[str, Any] | None]  # the policy decision at negotiation, with reasons
    reason: Mapped[str | None] = mapped_column(Text)
    uses: Mapped[int] = mapped_column(Integer, default=0)  # provider: uses granted so far
    epsilon_spent: Mapped[float] = mapped_column(Float, default=0.0)  # provider: DP budget used
    price: Mapped[dict[str, Any] | None]  # consumer: the price it accepts; provider: a proposed price
    approval: Mapped[str | None] = mapped_column(String(10))  # provider: automatic | manual
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Job(Base):
    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(60), primary_key=True)
    role: Mapped[str] = mapped_column(String(10))
    agreement_id: Mapped[str] = mapped_column(String(60), index=True)
    peer_id: Mapped[str] = mapped_column(String(40))
    operation: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), index=True)  # a JobStatus
    phase: Mapped[str] = mapped_column(String(40), default="queued")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    input_path: Mapped[str | None] = mapped_column(String(500))
    key_column: Mapped[str | None] = mapped_column(String(200))
    consumer_set_size: Mapped[int | None] = mapped_column(BigInteger)
    provider_set_size: Mapped[int | None] = mapped_column(BigInteger)
    result: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
    backend: Mapped[str | None] = mapped_column(String(20))
    record_id: Mapped[str | None] = mapped_column(String(60))
    metrics: Mapped[dict[str, Any] | None]  # seconds per phase, sandbox peak memory (MiB)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class ScoredId(Base):
    """How often one id was scored under an agreement (he.score's ``idRepeats``): averaging
    repeated scores of one id would strip the noise the provider adds. Ids are kept hashed
    with the agreement id, as a count needs no more."""

    __tablename__ = "scored_ids"
    agreement_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    times: Mapped[int] = mapped_column(Integer)


class JobStatus(StrEnum):
    """Where a job is (stored by value): running, or ended as its usage record's outcome."""

    RUNNING = "running"
    SUCCEEDED = Outcome.SUCCEEDED.value
    DENIED = Outcome.DENIED.value
    FAILED = Outcome.FAILED.value
    WITHHELD = Outcome.WITHHELD.value


class OutboxState(StrEnum):
    """Where a usage record is on its way to the space's ledger (stored by value)."""

    AWAITING = "awaiting_countersignature"  # the provider's record, until the consumer signs it
    READY = "ready"  # to be sent (again, after a failed attempt)
    DELIVERED = "delivered"  # in the log, with the space's receipt
    BAD_RECEIPT = "bad_receipt"  # the space's receipt did not verify: kept for a person
    CONFLICT = "conflict"  # the log holds another record under this id: kept for a person


class OutboxRecord(Base):
    """A signed usage record waiting for (or past) delivery to the space's ledger."""

    __tablename__ = "outbox"
    id: Mapped[str] = mapped_column(String(60), primary_key=True)  # the record id
    job_id: Mapped[str] = mapped_column(String(60), index=True)
    signed: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(30), index=True)  # an OutboxState
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    receipt: Mapped[dict[str, Any] | None]
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class ScriptState(StrEnum):
    """Where a reviewed script's job is at its provider (stored by value)."""

    MOCK_RUN = "mock_run"  # running on the mock sample before the review request is queued
    REVIEW = "review"  # its code waits for a reviewer
    RUNNING = "running"  # approved; running on the data
    RELEASE = "release"  # its output passed the automatic checks and waits for a reviewer
    RELEASED = "released"
    WITHHELD = "withheld"
    REJECTED = "rejected"
    FAILED = "failed"
    DENIED = "denied"


# the states in which a script job waits at its provider (for a person, or a run there)
SCRIPT_OPEN = (ScriptState.MOCK_RUN, ScriptState.REVIEW, ScriptState.RUNNING, ScriptState.RELEASE)


class ScriptCode(Base):
    """One version of a consumer's code under an agreement, as its provider reviewed it: an
    approval pins the code's SHA-256 and a number of runs."""

    __tablename__ = "script_codes"
    id: Mapped[str] = mapped_column(String(60), primary_key=True)
    agreement_id: Mapped[str] = mapped_column(String(60), index=True)
    consumer_id: Mapped[str] = mapped_column(String(40))
    code_sha256: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(20))  # review | approved | rejected
    runs_granted: Mapped[int] = mapped_column(Integer, default=0)
    runs_used: Mapped[int] = mapped_column(Integer, default=0)
    reviewer: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ScriptRun(Base):
    """A consumer's script job at its provider, from submission to released or withheld output."""

    __tablename__ = "script_runs"
    id: Mapped[str] = mapped_column(String(60), primary_key=True)  # the consumer's job id
    code_id: Mapped[str] = mapped_column(String(60), index=True)
    agreement_id: Mapped[str] = mapped_column(String(60), index=True)
    consumer_id: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(20), index=True)  # a ScriptState
    args: Mapped[dict[str, Any]]
    reason: Mapped[str] = mapped_column(Text, default="")
    columns: Mapped[list[Any] | None]  # the table columns the request declared, if any
    diff: Mapped[str] = mapped_column(Text, default="")  # against the last approved version
    mock: Mapped[dict[str, Any] | None]  # the mock run: output or error, seconds, peak memory
    output: Mapped[str | None] = mapped_column(Text)  # held here until it is released
    output_format: Mapped[str | None] = mapped_column(String(10))  # json | table
    output_sha256: Mapped[str | None] = mapped_column(String(64))
    checks: Mapped[list[Any] | None]  # the automatic checks' reasons (empty: passed)
    release: Mapped[str] = mapped_column(String(10), default="review")  # review | auto
    reviewer: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text)
    metrics: Mapped[dict[str, Any] | None]
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
