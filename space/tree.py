"""The log's Merkle tree (RFC 9162 §2.1): the size, the stored perfect-subtree hashes, signed tree
heads over committed sizes, and the inclusion and consistency proofs and receipts built from
them. :mod:`space.ledger` appends the leaves; this module only reads what they left."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from contracts import merkle
from contracts.documents import new_signed
from contracts.keys import SigningKey
from contracts.treehead import SPACE_SIGNER, tree_head_document
from policies.model import format_datetime
from space.errors import NotFound, Refused
from space.models import LedgerEntry, LedgerHead, MerkleNode, TreeHead

MAX_PAGE = 1000


def head(session: Session, lock: bool = False) -> LedgerHead:
    row = session.get(LedgerHead, 1, with_for_update=lock)
    if row is None:
        row = LedgerHead(id=1, size=0)
        session.add(row)
        session.flush()
    return row


# --- the subtree store ---------------------------------------------------------------------
def nodes(session: Session, wanted: Iterable[merkle.Node]) -> dict[merkle.Node, bytes]:
    """Stored perfect-subtree hashes, in one query."""
    keys = sorted(set(wanted))
    if not keys:
        return {}
    by_level: dict[int, list[int]] = defaultdict(list)
    for level, index in keys:
        by_level[level].append(index)
    # one IN list per level: both databases then walk the primary key (a row-value IN over
    # (level, idx) makes SQLite scan the table)
    condition = or_(
        *(and_(MerkleNode.level == level, MerkleNode.index.in_(ids)) for level, ids in by_level.items())
    )
    rows = session.execute(select(MerkleNode.level, MerkleNode.index, MerkleNode.hash).where(condition))
    found = {(level, index): bytes(value) for level, index, value in rows}
    missing = set(keys) - set(found)
    if missing:
        raise RuntimeError(f"the log's subtree store lacks {sorted(missing)[:3]}: it is damaged")
    return found


def root_at(session: Session, size: int) -> bytes:
    table = nodes(session, merkle.decompose(0, size) if size else [])
    return merkle.subtree_hash(0, size, table.__getitem__)


# --- tree heads ------------------------------------------------------------------------------
def sign_head(session: Session, key: SigningKey, log_id: str, now: dt.datetime) -> TreeHead:
    """The signed head for the log's committed size, signing one if there is none yet."""
    size = head(session).size
    latest = latest_head(session)
    if latest is not None and latest.size == size:
        return latest
    root = root_at(session, size)
    document = tree_head_document(log_id, size, root, format_datetime(now))
    signed = new_signed(document, SPACE_SIGNER, key)
    row = TreeHead(size=size, root_hash=root.hex(), signed=signed, issued_at=now)
    session.add(row)
    session.flush()
    return row


def latest_head(session: Session) -> TreeHead | None:
    return session.scalar(select(TreeHead).order_by(TreeHead.size.desc()).limit(1))


def heads(session: Session, after: int = -1, limit: int = 100) -> list[TreeHead]:
    query = select(TreeHead).where(TreeHead.size > after).order_by(TreeHead.size)
    return list(session.scalars(query.limit(max(1, min(limit, MAX_PAGE)))))


def head_of_size(session: Session, size: int) -> TreeHead:
    found = session.get(TreeHead, size)
    if found is None:
        raise NotFound(f"no signed tree head of size {size}; list them at /ledger/heads")
    return found


# --- proofs and receipts ---------------------------------------------------------------------
def inclusion_proof(session: Session, index: int, size: int) -> list[str]:
    try:
        ranges = merkle.inclusion_ranges(index, size)
    except merkle.ProofError as exc:
        raise Refused(str(exc), status=400) from exc
    table = nodes(session, merkle.needed_nodes(ranges))
    return [h.hex() for h in merkle.hashes_for(ranges, table.__getitem__)]


def consistency_proof(session: Session, old: int, new: int) -> list[str]:
    current = head(session).size
    if not 0 < old <= new <= current:
        raise Refused(
            f"consistency proof: expected 0 < from ≤ to ≤ {current}, got {old} and {new}", status=400
        )
    ranges = merkle.consistency_ranges(old, new)
    table = nodes(session, merkle.needed_nodes(ranges))
    return [h.hex() for h in merkle.hashes_for(ranges, table.__getitem__)]


def receipt(session: Session, entry: LedgerEntry) -> dict[str, Any]:
    """The leaf, the first signed head that includes it, and the inclusion proof against it:
    the same bytes every time it is asked for."""
    return receipts(session, [entry.seq])[0]


def receipts(session: Session, seqs: list[int]) -> list[dict[str, Any]]:
    """Receipts for several leaves, with the subtree hashes of all their proofs in one query."""
    if not seqs:
        return []
    rows = {e.seq: e for e in session.scalars(select(LedgerEntry).where(LedgerEntry.seq.in_(seqs)))}
    firsts: dict[int, TreeHead] = {}
    candidates: list[TreeHead] = []
    for seq in sorted(set(seqs)):
        first = next((h for h in candidates if h.size > seq), None)
        if first is None:
            first = session.scalar(
                select(TreeHead).where(TreeHead.size > seq).order_by(TreeHead.size).limit(1)
            )
            if first is None:
                raise RuntimeError(f"leaf {seq} has no signed head yet; sign_head must run first")
            candidates = [first]  # seqs ascend: a later leaf's first head is this one or later
        firsts[seq] = first
    ranges = {seq: merkle.inclusion_ranges(seq, firsts[seq].size) for seq in seqs}
    table = nodes(session, merkle.needed_nodes(r for rs in ranges.values() for r in rs))
    return [
        {
            "record_id": rows[seq].record_id,
            "leaf_index": seq,
            "leaf_hash": rows[seq].leaf_hash,
            "tree_head": firsts[seq].signed,
            "inclusion_proof": [h.hex() for h in merkle.hashes_for(ranges[seq], table.__getitem__)],
        }
        for seq in seqs
    ]
