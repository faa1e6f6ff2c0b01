"""Usage records: one per job attempt — succeeded, denied or failed — signed by both parties.

The provider writes the record (it decides the outcome of its side), signs it and returns it
with its answer; the consumer's connector checks that it describes the job it asked for,
countersigns it and both deliver it to the space's ledger.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contracts.errors import UsageRecordError

OUTCOMES = ("succeeded", "denied", "failed")
RECORD_TYPE = "tds:UsageRecord"

FIELDS: dict[str, tuple[type, ...]] = {
    "@type": (str,),
    "id": (str,),
    "job": (str,),
    "agreement": (str,),
    "dataset": (str, type(None)),
    "provider": (str,),
    "consumer": (str,),
    "operation": (str,),
    "purpose": (str, type(None)),
    "outcome": (str,),
    "reason": (str,),
    "consumer_set_size": (int, type(None)),
    "provider_set_size": (int, type(None)),
    "fee_fen": (int,),
    "currency": (str,),
    "started_at": (str,),
    "finished_at": (str,),
}


def build_record(**fields: Any) -> dict[str, Any]:
    record = {"@type": RECORD_TYPE, "currency": "CNY", **fields}
    validate_record(record)
    return record


def validate_record(record: Mapping[str, Any]) -> None:
    missing = sorted(set(FIELDS) - set(record))
    extra = sorted(set(record) - set(FIELDS))
    if missing or extra:
        raise UsageRecordError(f"usage record: missing fields {missing}, unknown fields {extra}")
    for key, types in FIELDS.items():
        value = record[key]
        if isinstance(value, bool) or not isinstance(value, types):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise UsageRecordError(f"usage record field {key}: expected {names}, got {value!r}")
    if record["@type"] != RECORD_TYPE:
        raise UsageRecordError(f"usage record @type: expected {RECORD_TYPE}")
    if record["outcome"] not in OUTCOMES:
        raise UsageRecordError(
            f"usage record outcome: expected one of {list(OUTCOMES)}, got {record['outcome']!r}"
        )
    if record["fee_fen"] < 0 or (record["outcome"] != "succeeded" and record["fee_fen"] != 0):
        raise UsageRecordError("usage record fee_fen: only a succeeded use carries a fee, never < 0")
    if record["currency"] != "CNY":
        raise UsageRecordError("usage record currency: expected CNY")
