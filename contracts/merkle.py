"""Merkle tree hashing, proofs and their verification (RFC 9162 §2.1; the same as RFC 6962).

Pure functions over hashes. A log stores the hash of every *perfect* subtree — the 2^level
leaves starting at ``index << level`` — as leaves arrive (two writes per leaf, amortised), so
any subtree the RFC's recursion names, and so any root or proof, comes from O(log n) stored
hashes: :func:`needed_nodes` says which, and :func:`subtree_hash` folds them.

Proof generation (:func:`inclusion_ranges`, :func:`consistency_ranges`) follows the RFC's
recursive definitions PATH (§2.1.3.1) and SUBPROOF (§2.1.4.1), but returns leaf ranges rather
than hashes, so that the caller can fetch every hash it needs in one query. Verification
(:func:`verify_inclusion`, :func:`verify_consistency`) follows §2.1.3.2 and §2.1.4.2 step by
step; it is written here because it is short, it is the heart of what auditors rely on, and it
is checked against the transparency-dev conformance vectors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

from contracts.errors import ContractError

Range = tuple[int, int]  # leaves [start, end)
Node = tuple[int, int]  # (level, index): the perfect subtree of leaves [index << level, (index + 1) << level)

EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ContractError):
    """A proof does not verify; the message says which check failed."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split(n: int) -> int:
    """The largest power of two smaller than n (n ≥ 2): where the RFC splits D[n]."""
    return 1 << ((n - 1).bit_length() - 1)


# --- storing and folding subtrees ---------------------------------------------------------
def completed_nodes(index: int) -> list[Node]:
    """The perfect subtrees completed by appending leaf ``index``, smallest first
    (level 0 is the leaf itself)."""
    nodes = [(0, index)]
    level, i = 0, index
    while i & 1:
        level, i = level + 1, i >> 1
        nodes.append((level, i))
    return nodes


def append_leaf(frontier: dict[Node, bytes], index: int, leaf: bytes) -> list[tuple[int, int, bytes]]:
    """The subtree hashes completed by leaf ``index`` (hash ``leaf``), as (level, index, hash),
    smallest first. ``frontier`` holds the hashes of the tree's right edge (the perfect subtrees
    not yet joined into larger ones); it is updated in place, combined children leave it."""
    added = []
    for level, position in completed_nodes(index):
        value = (
            leaf
            if level == 0
            else node_hash(
                frontier.pop((level - 1, 2 * position)), frontier.pop((level - 1, 2 * position + 1))
            )
        )
        frontier[(level, position)] = value
        added.append((level, position, value))
    return added


def _is_perfect(start: int, end: int) -> bool:
    size = end - start
    return size > 0 and size & (size - 1) == 0 and start % size == 0


def decompose(start: int, end: int) -> list[Node]:
    """The perfect subtrees whose hashes make up MTH(D[start:end]) in the RFC's recursion."""
    if _is_perfect(start, end):
        level = (end - start).bit_length() - 1
        return [(level, start >> level)]
    k = split(end - start)
    return decompose(start, start + k) + decompose(start + k, end)


def subtree_hash(start: int, end: int, node: Callable[[Node], bytes]) -> bytes:
    """MTH(D[start:end]) from stored perfect-subtree hashes (``node((level, index))``)."""
    if end == start:
        return EMPTY_ROOT
    if _is_perfect(start, end):
        level = (end - start).bit_length() - 1
        return node((level, start >> level))
    k = split(end - start)
    return node_hash(subtree_hash(start, start + k, node), subtree_hash(start + k, end, node))


def needed_nodes(ranges: Iterable[Range]) -> set[Node]:
    return {n for start, end in ranges if end > start for n in decompose(start, end)}


# --- proof generation (as leaf ranges) ----------------------------------------------------
def inclusion_ranges(index: int, size: int) -> list[Range]:
    """PATH(index, D[size]) as the leaf ranges whose subtree hashes form the proof, in order."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")

    def path(m: int, start: int, end: int) -> list[Range]:
        n = end - start
        if n == 1:
            return []
        k = split(n)
        if m < k:
            return [*path(m, start, start + k), (start + k, end)]
        return [*path(m - k, start + k, end), (start, start + k)]

    return path(index, 0, size)


def consistency_ranges(old: int, new: int) -> list[Range]:
    """PROOF(old, D[new]) (RFC 9162 §2.1.4.1) as leaf ranges, in order."""
    if not 0 < old <= new:
        raise ProofError(f"no consistency proof from size {old} to size {new}")

    def subproof(m: int, start: int, end: int, whole: bool) -> list[Range]:
        n = end - start
        if m == n:
            return [] if whole else [(start, end)]
        k = split(n)
        if m <= k:
            return [*subproof(m, start, start + k, whole), (start + k, end)]
        return [*subproof(m - k, start + k, end, False), (start, start + k)]

    return subproof(old, 0, new, True)


def hashes_for(ranges: Sequence[Range], node: Callable[[Node], bytes]) -> list[bytes]:
    return [subtree_hash(start, end, node) for start, end in ranges]


# --- verification -------------------------------------------------------------------------
HASH_SIZE = 32


def _check_sizes(**hashes: bytes | Sequence[bytes]) -> None:
    for name, value in hashes.items():
        values = [value] if isinstance(value, bytes) else list(value)
        for v in values:
            if len(v) != HASH_SIZE:
                raise ProofError(f"{name}: expected {HASH_SIZE}-byte SHA-256 hashes, got {len(v)} bytes")


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """RFC 9162 §2.1.3.2; raises ProofError unless ``leaf`` is at ``index`` in the tree ``root``."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    _check_sizes(leaf=leaf, root=root, proof=proof)
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            raise ProofError(f"inclusion proof has {len(proof)} hashes, more than the tree needs")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError(f"inclusion proof has {len(proof)} hashes, fewer than the tree needs")
    if r != root:
        raise ProofError("inclusion proof does not lead to the root: the leaf is not in this tree")


def verify_consistency(old: int, new: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes) -> None:
    """RFC 9162 §2.1.4.2; raises ProofError unless tree ``old_root`` is a prefix of ``new_root``."""
    if not 0 <= old <= new:
        raise ProofError(f"a tree cannot shrink: size {old} to {new}")
    if old == 0:  # every tree extends the empty one; a proof of it proves nothing
        raise ProofError("no consistency proof from the empty tree")
    if old == new:
        if proof:
            raise ProofError("consistency proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofError("equal sizes with different roots: the log was rewritten")
        return
    _check_sizes(old_root=old_root, new_root=new_root, proof=proof)
    if not proof:
        raise ProofError("consistency proof is empty")
    path = list(proof)
    if old & (old - 1) == 0:  # a power of two: the old root is the first node of the path
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"consistency proof has {len(proof)} hashes, more than needed")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError(f"consistency proof has {len(proof)} hashes, fewer than needed")
    if fr != old_root:
        raise ProofError("consistency proof does not lead to the old root: the log was rewritten")
    if sr != new_root:
        raise ProofError("consistency proof does not lead to the new root")
