"""Script steps: the review trail of a reviewed script, one signed document per step (pure).

A consumer's script passes through steps at the provider — submitted, run on the mock sample,
approved or rejected by a reviewer, its output released or withheld — and each is a
``tds:ScriptStep`` document the provider signs and the space's log holds beside the usage
records, so that an auditor can tell which code touched which data and what left. The run
itself is a usage record (operation ``script``), written when its output is released or
withheld; its step names the same job.

A step carries the SHA-256 of the code (and of the output, once there is one), never the code or
the output: the log is read by every auditor, and a script's output is the provider's to release.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from contracts.errors import UsageRecordError
from contracts.leaves import STEP_TYPE
from contracts.usage import MAX_ID, MAX_TEXT, SPACE_LEAF_PREFIXES, check_fields, timestamp

OPERATION = "script"
STEPS = ("submitted", "mock-run", "approved", "rejected", "released", "withheld")
SHA256 = re.compile(r"^[0-9a-f]{64}$")

FIELDS: dict[str, tuple[type, ...]] = {
    "@type": (str,),
    "id": (str,),
    "job": (str,),
    "agreement": (str,),
    "dataset": (str,),
    "provider": (str,),
    "consumer": (str,),
    "operation": (str,),
    "step": (str,),
    "code_sha256": (str,),
    "output_sha256": (str, type(None)),
    "runs": (int, type(None)),  # approved: the runs the approval grants
    "reviewer": (str, type(None)),  # approved, rejected, released, withheld by a person
    "note": (str,),
    "at": (str,),
}


def build_step(**fields: Any) -> dict[str, Any]:
    step = {"@type": STEP_TYPE, "operation": OPERATION, **fields}
    validate_step(step)
    return step


def validate_step(step: Mapping[str, Any]) -> None:
    """Raise UsageRecordError saying what is wrong with a step document; None when well formed."""
    check_fields(step, FIELDS, "script step")
    for key, value in step.items():
        if isinstance(value, str) and len(value) > MAX_ID.get(key, MAX_TEXT):
            raise UsageRecordError(
                f"script step field {key}: at most {MAX_ID.get(key, MAX_TEXT)} characters, got {len(value)}"
            )
    if step["@type"] != STEP_TYPE or step["operation"] != OPERATION:
        raise UsageRecordError(f"script step: expected @type {STEP_TYPE} and operation {OPERATION}")
    if step["id"].startswith(SPACE_LEAF_PREFIXES):
        raise UsageRecordError(f"script step id {step['id']!r}: use urn:uuid:…")
    if step["step"] not in STEPS:
        raise UsageRecordError(f"script step: expected one of {list(STEPS)}, got {step['step']!r}")
    for key in ("code_sha256", "output_sha256"):
        if step[key] is not None and not SHA256.match(step[key]):
            raise UsageRecordError(f"script step field {key}: expected 64 lower-case hex digits")
    # a released output always has its hash; a mock run or a withholding has one when the code
    # gave an output; the other steps come before any output
    if step["step"] == "released" and step["output_sha256"] is None:
        raise UsageRecordError("script step released: output_sha256 names the output released")
    if step["step"] not in ("mock-run", "released", "withheld") and step["output_sha256"] is not None:
        raise UsageRecordError(f"script step {step['step']}: has no output, so no output_sha256")
    if (step["runs"] is not None) != (step["step"] == "approved") or (
        step["runs"] is not None and step["runs"] < 1
    ):
        raise UsageRecordError("script step runs: a whole number ≥ 1 for approved, null otherwise")
    timestamp(step, "at")


def check_step(step: Mapping[str, Any], agreement: Mapping[str, Any]) -> None:
    """Does a (well-formed) step belong to the agreement it names: its parties and dataset, and
    an agreement that permits scripts? The space's check before it appends one."""
    expected = {
        "agreement": agreement.get("@id"),
        "provider": agreement.get("assigner"),
        "consumer": agreement.get("assignee"),
        "dataset": agreement.get("target"),
    }
    for key, value in expected.items():
        if step[key] != value:
            raise UsageRecordError(
                f"script step {key}: agreement {expected['agreement']} says {value!r}, the step {step[key]!r}"
            )
    if OPERATION not in (agreement.get("tds:operations") or []):
        raise UsageRecordError(f"script step: agreement {expected['agreement']} does not permit scripts")
