"""The kinds of leaf in the usage log, and the two the space writes itself (pure).

The log holds four kinds of signed document, told apart by ``@type``:

- ``tds:UsageRecord`` — a use, signed by its provider and (usually) its consumer
  (:mod:`contracts.usage`);
- ``tds:Countersignature`` — a consumer's signature over a record that entered the log without
  it. The leaf of a record never changes, so a signature that arrives later is a leaf of its own:
  deleting it would change every later root, which auditors see;
- ``tds:ScriptStep`` — a step of a reviewed script (submitted, mock run, approved or rejected,
  output released or withheld), signed by its provider (:mod:`contracts.script_steps`);
- ``tds:DisputeDecision`` — the operator's decision on a use its provider alone signed: ``bill``
  it or ``void`` it, with the reason. It is the operator's act, in the log, not a row beside it.

The space signs the last two (signer ``space``); a countersignature carries the consumer's own
signature over the record's document, which anyone can check with the consumer's key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from contracts.canonical import canonical_bytes
from contracts.errors import ContractError, UsageRecordError
from contracts.keys import b64url_decode, verify
from contracts.usage import MAX_TEXT, RECORD_TYPE, timestamp

COUNTERSIGNATURE_TYPE = "tds:Countersignature"
DECISION_TYPE = "tds:DisputeDecision"
STEP_TYPE = "tds:ScriptStep"  # contracts.script_steps: a provider's leaf, signed as a usage record is
KINDS = {
    RECORD_TYPE: "usage",
    COUNTERSIGNATURE_TYPE: "countersignature",
    DECISION_TYPE: "decision",
    STEP_TYPE: "script-step",
}
DECISIONS = ("bill", "void")


def kind_of(signed: Any) -> str | None:
    """usage, countersignature, decision or script-step; None for anything else."""
    document = signed.get("document") if isinstance(signed, Mapping) else None
    kind = document.get("@type") if isinstance(document, Mapping) else None
    return KINDS.get(kind) if isinstance(kind, str) else None


def _leaf_id(prefix: str, *parts: str) -> str:
    # derived, not random: a second countersignature by the same signer, or a second decision on
    # one record, gets the same id, and the log's unique record ids refuse it
    return f"{prefix}-{hashlib.sha256(chr(0).join(parts).encode()).hexdigest()[:40]}"


def countersignature(
    record: Mapping[str, Any], record_leaf: int, signer: str, signature: str, received_at: str
) -> dict[str, Any]:
    return {
        "@type": COUNTERSIGNATURE_TYPE,
        "id": _leaf_id("cs", str(record["id"]), signer),
        "record": record["id"],
        "record_leaf": record_leaf,
        "signer": signer,
        "signature": signature,
        "received_at": received_at,
    }


def decision(
    record: Mapping[str, Any], record_leaf: int, verdict: str, reason: str, actor: str, decided_at: str
) -> dict[str, Any]:
    document = {
        "@type": DECISION_TYPE,
        "id": _leaf_id("dd", str(record["id"])),
        "record": record["id"],
        "record_leaf": record_leaf,
        "decision": verdict,
        "reason": reason,
        "decided_by": actor,
        "decided_at": decided_at,
    }
    check_decision(document)
    return document


def check_decision(document: Mapping[str, Any]) -> None:
    verdict, reason = document.get("decision"), document.get("reason")
    if verdict not in DECISIONS:
        raise UsageRecordError(f"decision: expected one of {list(DECISIONS)}, got {verdict!r}")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_TEXT:
        raise UsageRecordError(f"decision reason: expected 1 to {MAX_TEXT} characters saying why")
    if not isinstance(document.get("decided_by"), str):
        raise UsageRecordError("decision decided_by: expected the operator's name")
    timestamp(document, "decided_at")


def check_countersignature(document: Mapping[str, Any], record: Mapping[str, Any], consumer_key: str) -> None:
    """Is this a valid countersignature of ``record`` by its consumer? Raises if not."""
    if document.get("record") != record.get("id"):
        raise UsageRecordError(
            f"countersignature: names record {document.get('record')!r}, not {record.get('id')!r}"
        )
    if document.get("signer") != record.get("consumer"):
        raise UsageRecordError(
            f"countersignature: signed by {document.get('signer')!r}, "
            f"but record {record.get('id')}'s consumer is {record.get('consumer')!r}"
        )
    try:
        verify(consumer_key, canonical_bytes(record), b64url_decode(str(document.get("signature"))))
    except (ContractError, ValueError) as exc:
        raise UsageRecordError(
            f"countersignature of record {record.get('id')}: the signature of "
            f"{record.get('consumer')} does not verify"
        ) from exc
