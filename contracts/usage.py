"""Usage records: one per job attempt — succeeded, denied or failed — signed by both parties.

The provider writes the record (it decides the outcome of its side), signs it and returns it
with its answer; the consumer's connector checks that it describes the job it asked for,
countersigns it and both deliver it to the space's ledger.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from contracts.errors import OfferError, UsageRecordError
from contracts.offers import agreed_fee
from policies import operations


class Outcome(StrEnum):
    """How a job attempt ended, as its usage record says (stored and signed by value)."""

    SUCCEEDED = "succeeded"
    DENIED = "denied"
    FAILED = "failed"
    WITHHELD = "withheld"  # computed, but the result is kept from the consumer (a policy limit)


OUTCOMES = tuple(outcome.value for outcome in Outcome)
BILLABLE = (Outcome.SUCCEEDED.value, Outcome.WITHHELD.value)  # the outcomes that may carry a fee
MAX_TEXT = 2000  # characters in any text field, such as a reason
# characters in an id field (urn:uuid ids have 45), and in a participant id: what the log's
# columns hold (space.models.LedgerEntry), so that a longer one is refused, not a database error
MAX_ID = {"id": 60, "job": 60, "agreement": 60, "dataset": 60, "provider": 40, "consumer": 40}
# prefixes of the ids of the leaves the space writes itself (contracts.leaves)
SPACE_LEAF_PREFIXES = ("cs-", "dd-")
MAX_SET_SIZE = 10**12  # items on one side of a job: anything above is not a real set
# RFC 3339 §5.6 date-time in UTC, as format_datetime writes it (seconds, optional fraction, Z)
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")
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


def check_fields(document: Mapping[str, Any], fields: Mapping[str, tuple[type, ...]], what: str) -> None:
    """Exactly ``fields``, each of its types (a boolean is never a number), or UsageRecordError."""
    missing = sorted(set(fields) - set(document))
    extra = sorted(set(document) - set(fields))
    if missing or extra:
        raise UsageRecordError(f"{what}: missing fields {missing}, unknown fields {extra}")
    for key, types in fields.items():
        value = document[key]
        if isinstance(value, bool) or not isinstance(value, types):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise UsageRecordError(f"{what} field {key}: expected {names}, got {value!r}")


def validate_record(record: Mapping[str, Any]) -> None:
    check_fields(record, FIELDS, "usage record")
    for key, value in record.items():
        if isinstance(value, str) and len(value) > MAX_TEXT:
            raise UsageRecordError(
                f"usage record field {key}: at most {MAX_TEXT} characters, got {len(value)}"
            )
    for key, most in MAX_ID.items():
        if isinstance(record[key], str) and len(record[key]) > most:
            raise UsageRecordError(
                f"usage record field {key}: at most {most} characters, got {len(record[key])}"
            )
    if record["id"].startswith(SPACE_LEAF_PREFIXES):
        raise UsageRecordError(
            f"usage record id {record['id']!r}: ids starting {' or '.join(SPACE_LEAF_PREFIXES)} name the "
            "space's own leaves; use urn:uuid:…"
        )
    if record["@type"] != RECORD_TYPE:
        raise UsageRecordError(f"usage record @type: expected {RECORD_TYPE}")
    if record["outcome"] not in OUTCOMES:
        raise UsageRecordError(
            f"usage record outcome: expected one of {list(OUTCOMES)}, got {record['outcome']!r}"
        )
    if record["operation"] not in operations.names():
        raise UsageRecordError(
            f"usage record operation: expected one of {list(operations.names())}, got {record['operation']!r}"
        )
    for key in ("consumer_set_size", "provider_set_size"):
        size = record[key]
        if size is not None and not 0 <= size <= MAX_SET_SIZE:
            raise UsageRecordError(
                f"usage record field {key}: expected 0..{MAX_SET_SIZE} or null, got {size}"
            )
    if record["fee_fen"] < 0 or (record["outcome"] not in BILLABLE and record["fee_fen"] != 0):
        raise UsageRecordError(
            f"usage record fee_fen: only a {' or '.join(BILLABLE)} use carries a fee, never < 0; "
            f"got {record['fee_fen']} for a {record['outcome']} use"
        )
    if record["currency"] != "CNY":
        raise UsageRecordError("usage record currency: expected CNY")
    started, finished = (timestamp(record, key) for key in ("started_at", "finished_at"))
    if finished < started:
        raise UsageRecordError(
            f"usage record finished_at {record['finished_at']} is before started_at {record['started_at']}"
        )


def timestamp(record: Mapping[str, Any], key: str) -> dt.datetime:
    """A record's time field as an aware UTC datetime; refused unless it is RFC 3339 in UTC."""
    text = record[key]
    if not isinstance(text, str) or TIMESTAMP.match(text) is None:
        raise UsageRecordError(
            f"usage record field {key}: expected an RFC 3339 UTC time such as "
            f"2030-06-30T08:00:00Z, got {text!r}"
        )
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:  # the right shape, but no such day (2030-02-30)
        raise UsageRecordError(f"usage record field {key}: {text!r} is not a real time ({exc})") from exc


def check_use(
    record: Mapping[str, Any],
    agreement: Mapping[str, Any],
    terminated_at: dt.datetime | None,
    now: dt.datetime,
) -> None:
    """Does a (well-formed) usage record describe a use the agreement allows, at its price?

    The space's check before it appends a record (the provider writes it, so nothing in it is
    taken on trust): the same parties, dataset and purpose; an operation the agreement permits;
    not started after the agreement was terminated (denials may come later: refusing is what a
    provider must do then); not finished in the future; the fee the agreed price gives for the
    record's sizes. Raises UsageRecordError saying what differs; returns None when it matches."""
    outcome = record["outcome"]
    expected = {
        "agreement": agreement.get("@id"),
        "provider": agreement.get("assigner"),
        "consumer": agreement.get("assignee"),
        "dataset": agreement.get("target"),
        "purpose": agreement.get("tds:purpose"),
    }
    for key, value in expected.items():
        # a provider that denies before it finds the agreement knows neither dataset nor purpose
        unknown_to_a_denial = outcome == "denied" and key in ("dataset", "purpose") and record[key] is None
        if record[key] != value and not unknown_to_a_denial:
            raise UsageRecordError(
                f"usage record {key}: agreement {expected['agreement']} says {value!r}, "
                f"the record {record[key]!r}"
            )
    permitted = agreement.get("tds:operations") or []
    if outcome != "denied" and record["operation"] not in permitted:
        raise UsageRecordError(
            f"usage record operation: agreement {expected['agreement']} permits {list(permitted)}, "
            f"not {record['operation']!r}"
        )
    started, finished = timestamp(record, "started_at"), timestamp(record, "finished_at")
    if terminated_at is not None and outcome != "denied" and started >= terminated_at:
        raise UsageRecordError(
            f"usage record started_at {record['started_at']}: agreement {expected['agreement']} was "
            f"terminated at {terminated_at.isoformat()}; only a denial may come after that"
        )
    if finished > now + CLOCK_SKEW:
        raise UsageRecordError(
            f"usage record finished_at {record['finished_at']} is in the future (the space's clock: "
            f"{now.isoformat()})"
        )
    if outcome in BILLABLE:
        try:
            fee = agreed_fee(agreement, outcome, record["consumer_set_size"])
        except OfferError as exc:
            raise UsageRecordError(f"agreement {expected['agreement']}: {exc}") from exc
        if record["fee_fen"] != fee:
            price = agreement.get("tds:price") or {}
            waived = (
                " (withheld results are not charged under it)" if outcome == "withheld" and fee == 0 else ""
            )
            raise UsageRecordError(
                f"usage record fee_fen: agreement {expected['agreement']}'s {price.get('model')} price of "
                f"{price.get('amount_fen')} fen{waived} makes it {fee} fen for a {outcome} use with "
                f"consumer_set_size {record['consumer_set_size']}, the record says {record['fee_fen']}"
            )


def check_describes(
    record: Mapping[str, Any], expected: Mapping[str, Any], agreement: Mapping[str, Any], now: dt.datetime
) -> None:
    """The consumer's check before it countersigns: the record names ``expected`` (its job,
    parties, operation, outcome and the number of items the consumer sent) and is a use the
    agreement allows at its price (:func:`check_use`). A provider that inflates a size or a fee
    gets no countersignature, so its record is disputed, never billed."""
    wrong = {key: record.get(key) for key, value in expected.items() if record.get(key) != value}
    if wrong:
        raise UsageRecordError(f"usage record does not describe this job: {wrong}")
    validate_record(record)
    check_use(record, agreement, None, now)


CLOCK_SKEW = dt.timedelta(minutes=5)  # how far a connector's clock may run ahead of the space's
