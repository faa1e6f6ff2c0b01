"""Auditing the usage log without trusting its operator (pure).

Given the records (in leaf order), the signed tree heads, the participants' public keys, the
heads this auditor saw before (kept locally), and receipts that connectors hold, :func:`audit`
checks that

- every usage record carries valid signatures of its provider (and of its consumer, if it has
  one); every countersignature and decision leaf is signed by the space and names a record
  earlier in the log, and a countersignature is that record's consumer's valid signature,
- the records, hashed as RFC 9162 leaves in their order, give exactly the root of every signed
  head — so no record was altered, dropped, inserted or reordered under a head,
- every head is signed by the space, and every head seen before is still a prefix of today's
  log (with today's leaves, each old root must be recomputed exactly; where the space's
  consistency proof between consecutive heads is given, it must verify too),
- every receipt verifies and names a head that agrees with the log,

and reports every failure it finds, each saying what failed and where.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from contracts import leaves
from contracts.canonical import canonical_bytes
from contracts.documents import verify_document
from contracts.errors import ContractError
from contracts.keys import b64url_decode, verify
from contracts.merkle import node_hash
from contracts.script_steps import validate_step
from contracts.treehead import (
    SPACE_SIGNER,
    Head,
    ReceiptError,
    check_consistency,
    check_head,
    check_receipt,
    record_leaf,
)


@dataclass
class Report:
    records: int = 0
    heads: int = 0
    receipts: int = 0
    problems: list[str] = field(default_factory=list)
    latest: Head | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": self.records,
            "heads": self.heads,
            "receipts": self.receipts,
            "tree_size": self.latest.size if self.latest else 0,
            "root_hash": self.latest.root.hex() if self.latest else None,
            "problems": self.problems,
        }


class _Frontier:
    """The right edge of the tree as leaves stream in: perfect subtrees, largest first."""

    def __init__(self) -> None:
        self.stack: list[tuple[int, bytes]] = []
        self.size = 0

    def push(self, leaf: bytes) -> None:
        size, value = 1, leaf
        while self.stack and self.stack[-1][0] == size:
            left = self.stack.pop()[1]
            size, value = size * 2, node_hash(left, value)
        self.stack.append((size, value))
        self.size += 1

    def root(self) -> bytes:
        # RFC 9162 splits at the largest power of two: a right fold of the perfect subtrees
        value = self.stack[-1][1]
        for _, left in reversed(self.stack[:-1]):
            value = node_hash(left, value)
        return value


def _signatures(seq: int, signed: Mapping[str, Any], keys: Mapping[str, str]) -> list[str]:
    """A usage record's leaf: its provider signed it, and every signature on it verifies."""
    problems = []
    document = signed["document"]
    record_id = document.get("id")
    signatures = dict(signed.get("signatures") or {})
    provider, consumer = document.get("provider"), document.get("consumer")
    if provider not in signatures:
        problems.append(f"leaf {seq} ({record_id}): no signature of its provider {provider}")
    message = canonical_bytes(document)
    for signer, value in signatures.items():
        if signer not in (provider, consumer):
            problems.append(f"leaf {seq} ({record_id}): signed by {signer}, who is not a party")
            continue
        if signer not in keys:
            problems.append(f"leaf {seq} ({record_id}): no public key for {signer}")
            continue
        try:
            verify(keys[signer], message, b64url_decode(str(value)))
        except (ContractError, ValueError):
            problems.append(f"leaf {seq} ({record_id}): signature of {signer} does not verify")
    return problems


def _step(seq: int, signed: Mapping[str, Any], keys: Mapping[str, str]) -> list[str]:
    """A script step: well formed and signed by its provider alone (its consumer never signs
    one: each step is the provider's act)."""
    try:
        validate_step(signed["document"])
    except ContractError as exc:
        return [f"leaf {seq} (script step): {exc}"]
    provider = signed["document"]["provider"]
    if set(signed.get("signatures") or {}) != {provider}:
        return [f"leaf {seq} (script step): expected the signature of {provider} alone"]
    return _signatures(seq, signed, keys)


def _space_leaf(
    seq: int,
    signed: Mapping[str, Any],
    kind: str,
    space_public_key: str,
    records: Mapping[str, Mapping[str, Any]],
    keys: Mapping[str, str],
) -> list[str]:
    """A countersignature or decision leaf: signed by the space, about a record earlier in the
    log; a countersignature's own signature is the record's consumer's."""
    document = signed["document"]
    try:
        verify_document(signed, [SPACE_SIGNER], lambda _signer: space_public_key)
    except ContractError as exc:
        return [f"leaf {seq} ({kind}): {exc}"]
    record = records.get(str(document.get("record")))
    if record is None:
        return [f"leaf {seq} ({kind}): names record {document.get('record')!r}, which no earlier leaf holds"]
    try:
        if kind == "countersignature":
            consumer = str(record.get("consumer"))
            if consumer not in keys:
                return [f"leaf {seq} (countersignature): no public key for {consumer}"]
            leaves.check_countersignature(document, record, keys[consumer])
        else:
            leaves.check_decision(document)
    except ContractError as exc:
        return [f"leaf {seq} ({kind}): {exc}"]
    return []


def audit(
    space_public_key: str,
    participants: Mapping[str, str],
    records: Iterable[Mapping[str, Any]],
    heads: Iterable[Any],
    seen: Iterable[Any] = (),
    receipts: Iterable[Mapping[str, Any]] = (),
    consistency_proofs: Mapping[tuple[int, int], Any] | None = None,
) -> Report:
    """``records``: {seq, signed, leaf_hash?} in leaf order (every leaf, of every kind); ``heads`` and
    ``seen``: signed tree heads; ``receipts``: {signed, receipt}; ``consistency_proofs``:
    (old size, new size) → the space's proof, for consecutive heads."""
    report = Report()
    checked = _heads(report, space_public_key, heads, seen)
    receipt_list = list(receipts)
    wanted = set(checked)
    for item in receipt_list:
        head = item.get("receipt", {}).get("tree_head", {})
        size = head.get("document", {}).get("tree_size") if isinstance(head, Mapping) else None
        if isinstance(size, int):
            wanted.add(size)
    log = _replay(report, space_public_key, participants, records, wanted)
    _against_heads(report, checked, log, consistency_proofs or {})
    for item in receipt_list:
        _receipt(report, space_public_key, log, item)
    return report


def _heads(
    report: Report, space_public_key: str, heads: Iterable[Any], seen: Iterable[Any]
) -> dict[int, Head]:
    """The heads that verify, by size; two of one size with different roots are a fork."""
    checked: dict[int, Head] = {}
    for origin, batch in (("head", heads), ("previously seen head", seen)):
        for signed in batch:
            try:
                found = check_head(signed, space_public_key)
            except ReceiptError as exc:
                report.problems.append(f"{origin}: {exc}")
                continue
            other = checked.get(found.size)
            if other is not None and other.root != found.root:
                report.problems.append(
                    f"two signed heads of size {found.size} with different roots: the log was forked"
                )
            checked.setdefault(found.size, found)
            report.heads += origin == "head"
    return checked


@dataclass
class _Replayed:
    """The log rebuilt from its records: its size, and its root at each size asked for."""

    size: int
    roots: dict[int, bytes]


def _replay(
    report: Report,
    space_public_key: str,
    participants: Mapping[str, str],
    records: Iterable[Mapping[str, Any]],
    wanted: set[int],
) -> _Replayed:
    """Check every leaf's signatures and hash, in order, keeping the roots at the ``wanted`` sizes."""
    roots: dict[int, bytes] = {}
    records_by_id: dict[str, Mapping[str, Any]] = {}
    frontier = _Frontier()
    for expected, entry in enumerate(records):
        seq = entry.get("seq")
        if seq != expected:
            report.problems.append(
                f"leaf {expected}: the log gives index {seq}; records are missing or reordered"
            )
        signed = entry.get("signed", {})
        kind = leaves.kind_of(signed)
        if kind is None:
            report.problems.append(
                f"leaf {expected}: not a usage record, countersignature, decision or script step"
            )
        elif kind == "usage":
            report.problems += _signatures(expected, signed, participants)
            records_by_id.setdefault(str(signed["document"].get("id")), signed["document"])
        elif kind == "script-step":
            report.problems += _step(expected, signed, participants)
        else:
            report.problems += _space_leaf(
                expected, signed, kind, space_public_key, records_by_id, participants
            )
        leaf = record_leaf(signed)
        if entry.get("leaf_hash") not in (None, leaf.hex()):
            report.problems.append(
                f"leaf {expected}: the stored leaf hash is not the hash of the stored record"
            )
        frontier.push(leaf)
        report.records += 1
        if frontier.size in wanted:
            roots[frontier.size] = frontier.root()
    return _Replayed(frontier.size, roots)


def _against_heads(
    report: Report,
    checked: dict[int, Head],
    log: _Replayed,
    consistency_proofs: Mapping[tuple[int, int], Any],
) -> None:
    """Every signed head's root is the log's at its size, and each head extends the one before."""
    for size in sorted(checked):
        head = checked[size]
        if size > log.size:
            report.problems.append(f"head of size {size}: the log has only {log.size} records")
        elif size > 0 and log.roots.get(size) != head.root:
            report.problems.append(
                f"head of size {size}: the records do not hash to its root "
                "(a record was altered, removed, inserted or reordered)"
            )
    for (old, new), proof in sorted(consistency_proofs.items()):
        if isinstance(proof, str):  # the space refused to give one
            report.problems.append(f"consistency proof {old} → {new}: the space gives none: {proof}")
            continue
        if old not in checked or new not in checked:
            report.problems.append(f"consistency proof {old} → {new}: no signed head of one of these sizes")
            continue
        try:
            check_consistency(checked[old], checked[new], proof)
        except ReceiptError as exc:
            report.problems.append(str(exc))
    sizes = sorted(checked)
    report.latest = checked[sizes[-1]] if sizes else None


def _receipt(report: Report, space_public_key: str, log: _Replayed, item: Mapping[str, Any]) -> None:
    """A connector's receipt verifies, and its head agrees with the log as replayed."""
    receipt, signed = item.get("receipt", {}), item.get("signed", {})
    report.receipts += 1
    try:
        head = check_receipt(receipt, signed, space_public_key)
    except ReceiptError as exc:
        report.problems.append(f"receipt for {receipt.get('record_id')}: {exc}")
        return
    if head.size > log.size or log.roots.get(head.size) != head.root:
        report.problems.append(
            f"receipt for {receipt.get('record_id')}: "
            f"its head of size {head.size} does not agree with the log"
        )
