"""The usage ledger's hash chain (pure): each entry commits to the whole history before it.

record_hash = SHA-256(canonical signed record), entry_hash = SHA-256(prev_hash ‖ record_hash),
starting from 32 zero bytes. Changing, removing or reordering any record changes every
later entry hash, so an auditor holding the latest head detects it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from contracts.canonical import canonical_bytes
from contracts.errors import ContractError

GENESIS = "00" * 32


class ChainError(ContractError):
    pass


def record_hash(signed_record: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(signed_record)).hexdigest()


def entry_hash(prev_hash: str, rec_hash: str) -> str:
    return hashlib.sha256(bytes.fromhex(prev_hash) + bytes.fromhex(rec_hash)).hexdigest()


def verify_chain(entries: Iterable[Mapping[str, Any]], expected_head: str | None = None) -> str:
    """Recompute the chain over entries (seq, signed, prev_hash, entry_hash) in order; return
    the head hash or raise ChainError naming the first entry that does not fit."""
    prev = GENESIS
    for expected_seq, entry in enumerate(entries):
        seq = entry.get("seq")
        if seq != expected_seq:
            raise ChainError(
                f"entry {expected_seq}: sequence number is {seq}; entries are missing or reordered"
            )
        if entry.get("prev_hash") != prev:
            raise ChainError(f"entry {seq}: prev_hash does not match entry {seq - 1}")
        computed = entry_hash(prev, record_hash(entry["signed"]))
        if entry.get("entry_hash") != computed:
            raise ChainError(f"entry {seq}: record does not hash to the stored entry hash (altered)")
        prev = computed
    if expected_head is not None and prev != expected_head:
        raise ChainError(f"chain ends at {prev[:16]}…, the head says {expected_head[:16]}…")
    return prev
