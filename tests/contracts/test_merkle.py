"""The Merkle log's hashing and proofs: the transparency-dev conformance vectors, every proof
for every tree size 1–100 against a naive RFC 9162 implementation, and bit flips."""

import base64
import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts import merkle
from contracts.merkle import ProofError
from tests.conftest import TESTDATA

VECTORS = TESTDATA / "rfc6962-proofs"


# --- a naive reference: RFC 9162 §2.1.1, §2.1.3.1, §2.1.4.1 as written, over the leaves --------
def mth(leaves: list[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return merkle.leaf_hash(leaves[0])
    k = merkle.split(len(leaves))
    return merkle.node_hash(mth(leaves[:k]), mth(leaves[k:]))


def path(m: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = merkle.split(len(leaves))
    if m < k:
        return [*path(m, leaves[:k]), mth(leaves[k:])]
    return [*path(m - k, leaves[k:]), mth(leaves[:k])]


def subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if whole else [mth(leaves)]
    k = merkle.split(n)
    if m <= k:
        return [*subproof(m, leaves[:k], whole), mth(leaves[k:])]
    return [*subproof(m - k, leaves[k:], False), mth(leaves[:k])]


LEAVES = [f"record {i}".encode() for i in range(100)]


def stored(leaves: list[bytes]) -> dict[merkle.Node, bytes]:
    """The perfect-subtree table a log keeps, built append by append."""
    table: dict[merkle.Node, bytes] = {}
    for i, data in enumerate(leaves):
        for level, index in merkle.completed_nodes(i):
            table[(level, index)] = (
                merkle.leaf_hash(data)
                if level == 0
                else merkle.node_hash(table[(level - 1, 2 * index)], table[(level - 1, 2 * index + 1)])
            )
    return table


TABLE = stored(LEAVES)


def test_the_table_holds_two_hashes_per_leaf_or_fewer() -> None:
    assert len(TABLE) == 197  # 100 leaves + 50 + 25 + 12 + 6 + 3 + 1


@pytest.mark.parametrize("size", range(1, 101))
def test_roots_and_inclusion_proofs_match_the_reference(size: int) -> None:
    leaves = LEAVES[:size]
    root = merkle.subtree_hash(0, size, TABLE.__getitem__)
    assert root == mth(leaves)
    for index in range(size):
        ranges = merkle.inclusion_ranges(index, size)
        assert merkle.needed_nodes(ranges) <= set(TABLE)
        proof = merkle.hashes_for(ranges, TABLE.__getitem__)
        assert proof == path(index, leaves)
        merkle.verify_inclusion(index, size, merkle.leaf_hash(leaves[index]), proof, root)


@pytest.mark.parametrize("new", range(1, 101))
def test_consistency_proofs_match_the_reference(new: int) -> None:
    new_root = mth(LEAVES[:new])
    for old in range(1, new + 1):
        proof = merkle.hashes_for(merkle.consistency_ranges(old, new), TABLE.__getitem__)
        assert proof == subproof(old, LEAVES[:new], True)
        merkle.verify_consistency(old, new, proof, mth(LEAVES[:old]), new_root)


def test_proof_size_is_logarithmic_at_a_million() -> None:
    ranges = merkle.inclusion_ranges(765_432, 1_000_000)
    assert len(ranges) == 20
    assert len(merkle.needed_nodes(ranges)) <= 40
    assert len(merkle.needed_nodes(merkle.consistency_ranges(999_999, 1_000_000))) <= 40


def _vectors(kind: str) -> list[Path]:
    return sorted((VECTORS / kind).rglob("*.json"))


def test_all_vectors_are_there() -> None:
    assert len(_vectors("inclusion")) + len(_vectors("consistency")) == 196


def b64(values: list[str] | None) -> list[bytes]:
    return [base64.b64decode(v) for v in values or []]


@pytest.mark.parametrize("path", _vectors("inclusion"), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_inclusion_vectors(path: Path) -> None:
    v = json.loads(path.read_text())
    args = (v["leafIdx"], v["treeSize"], base64.b64decode(v["leafHash"] or ""), b64(v["proof"]))
    root = base64.b64decode(v["root"] or "")
    if v["wantErr"]:
        with pytest.raises(ProofError):
            merkle.verify_inclusion(*args, root)
    else:
        merkle.verify_inclusion(*args, root)


@pytest.mark.parametrize("path", _vectors("consistency"), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_consistency_vectors(path: Path) -> None:
    v = json.loads(path.read_text())
    args = (v["size1"], v["size2"], b64(v["proof"]))
    roots = (base64.b64decode(v["root1"] or ""), base64.b64decode(v["root2"] or ""))
    if v["wantErr"]:
        with pytest.raises(ProofError):
            merkle.verify_consistency(*args, *roots)
    else:
        merkle.verify_consistency(*args, *roots)


def _flip(proof: list[bytes], which: int, bit: int) -> list[bytes]:
    changed = bytearray(proof[which])
    changed[bit // 8] ^= 1 << (bit % 8)
    return [*proof[:which], bytes(changed), *proof[which + 1 :]]


@given(st.data())
def test_a_flipped_bit_in_an_inclusion_proof_fails(data: st.DataObject) -> None:
    size = data.draw(st.integers(2, 100))
    index = data.draw(st.integers(0, size - 1))
    proof = merkle.hashes_for(merkle.inclusion_ranges(index, size), TABLE.__getitem__)
    flipped = _flip(proof, data.draw(st.integers(0, len(proof) - 1)), data.draw(st.integers(0, 255)))
    root = merkle.subtree_hash(0, size, TABLE.__getitem__)
    with pytest.raises(ProofError, match="does not lead to the root"):
        merkle.verify_inclusion(index, size, merkle.leaf_hash(LEAVES[index]), flipped, root)


@given(st.data())
def test_a_flipped_bit_in_a_consistency_proof_fails(data: st.DataObject) -> None:
    new = data.draw(st.integers(2, 100))
    old = data.draw(st.integers(1, new - 1))
    proof = merkle.hashes_for(merkle.consistency_ranges(old, new), TABLE.__getitem__)
    flipped = _flip(proof, data.draw(st.integers(0, len(proof) - 1)), data.draw(st.integers(0, 255)))
    with pytest.raises(ProofError, match="does not lead to the"):
        merkle.verify_consistency(old, new, flipped, mth(LEAVES[:old]), mth(LEAVES[:new]))


A, B = b"a" * 32, b"b" * 32


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: merkle.inclusion_ranges(5, 5), "leaf index 5 is outside a tree of size 5"),
        (lambda: merkle.consistency_ranges(6, 5), "no consistency proof from size 6 to size 5"),
        (lambda: merkle.verify_consistency(5, 4, [], b"", b""), "a tree cannot shrink: size 5 to 4"),
        (lambda: merkle.verify_consistency(3, 3, [], A, B), "equal sizes with different roots"),
        (lambda: merkle.verify_inclusion(0, 1, b"", [], A), "leaf: expected 32-byte SHA-256 hashes, got 0"),
    ],
)
def test_impossible_requests_say_why(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ProofError, match=message):
        call()
