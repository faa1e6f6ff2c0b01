"""Signed tree heads and append receipts of the usage log (pure).

A tree head is a signed document ``{"@type": "tds:TreeHead", "log", "tree_size", "root_hash",
"timestamp"}`` (RFC 9162 §4.10's fields, in this project's signed-document form, signed by the
space). A receipt is what an append returns: the leaf's index and hash, the first tree head
that includes it, and the inclusion proof against that head (RFC 9162 §2.1.3). Everyone who
holds a receipt and the space's public key can check it without asking anyone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from contracts.canonical import canonical_bytes
from contracts.documents import verify_document
from contracts.errors import ContractError, SignatureError
from contracts.merkle import ProofError, leaf_hash, verify_consistency, verify_inclusion

TREE_HEAD_TYPE = "tds:TreeHead"
SPACE_SIGNER = "space"


class ReceiptError(ContractError):
    """A tree head or a receipt does not check out; the message says what."""


@dataclass(frozen=True)
class Head:
    size: int
    root: bytes
    timestamp: str
    signed: Mapping[str, Any]


def tree_head_document(log_id: str, size: int, root: bytes, timestamp: str) -> dict[str, Any]:
    return {
        "@type": TREE_HEAD_TYPE,
        "log": log_id,
        "tree_size": size,
        "root_hash": root.hex(),
        "timestamp": timestamp,
    }


def record_leaf(signed_record: Mapping[str, Any]) -> bytes:
    """The leaf hash of a signed usage record: over its canonical bytes, signatures included."""
    return leaf_hash(canonical_bytes(signed_record))


def check_head(signed: Any, space_public_key: str) -> Head:
    """The tree head, after its shape and the space's signature are checked."""
    try:
        verify_document(signed, [SPACE_SIGNER], lambda _signer: space_public_key)
    except SignatureError as exc:
        raise ReceiptError(f"tree head: {exc}") from exc
    doc = signed["document"]
    size, root = doc.get("tree_size"), doc.get("root_hash")
    if doc.get("@type") != TREE_HEAD_TYPE or not isinstance(size, int) or size < 0:
        raise ReceiptError(f"tree head: expected @type {TREE_HEAD_TYPE} and a tree_size ≥ 0")
    try:
        root_bytes = bytes.fromhex(root) if isinstance(root, str) else b""
    except ValueError:
        root_bytes = b""
    if len(root_bytes) != 32:
        raise ReceiptError("tree head: root_hash must be 64 hex characters")
    return Head(size, root_bytes, str(doc.get("timestamp")), signed)


def _hashes(values: Any, what: str) -> list[bytes]:
    if not isinstance(values, Sequence) or isinstance(values, str):
        raise ReceiptError(f"{what}: expected a list of hex hashes")
    try:
        return [bytes.fromhex(v) for v in values]
    except (TypeError, ValueError) as exc:
        raise ReceiptError(f"{what}: expected hex hashes") from exc


def check_receipt(
    receipt: Mapping[str, Any], signed_record: Mapping[str, Any], space_public_key: str
) -> Head:
    """Checks that ``receipt`` proves ``signed_record`` is in the log under a head the space
    signed; returns that head. Raises ReceiptError saying what does not hold."""
    head = check_head(receipt.get("tree_head"), space_public_key)
    index = receipt.get("leaf_index")
    if not isinstance(index, int):
        raise ReceiptError("receipt: leaf_index must be a whole number")
    leaf = record_leaf(signed_record)
    if receipt.get("leaf_hash") != leaf.hex():
        raise ReceiptError("receipt: its leaf hash is not the hash of the record that was sent")
    try:
        verify_inclusion(
            index, head.size, leaf, _hashes(receipt.get("inclusion_proof"), "inclusion_proof"), head.root
        )
    except ProofError as exc:
        raise ReceiptError(f"receipt for leaf {index}: {exc}") from exc
    return head


def check_consistency(old: Head, new: Head, proof: Any) -> None:
    """Both heads already checked; raises ReceiptError unless ``new`` extends ``old``."""
    try:
        if old.size == 0:
            return  # the empty log is a prefix of every log
        verify_consistency(old.size, new.size, _hashes(proof, "consistency proof"), old.root, new.root)
    except ProofError as exc:
        raise ReceiptError(f"tree heads {old.size} → {new.size}: {exc}") from exc
