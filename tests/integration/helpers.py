"""Shared values for tests that register participants."""

import time
from pathlib import Path
from typing import Any

from contracts.audit import Report, audit
from tds.audit import fetch
from tds.client import NodeAPI
from tds.local import credit_code

CODES = [credit_code(i) for i in range(1, 10)]


def verified_log(operator: NodeAPI, timeout: float = 30) -> Report:
    """The whole log as an auditor checks it: every signature, every signed head's root.

    Records still arrive in the background (outboxes deliver after a job's result), and a fetch
    reads the records and the heads one after the other: it is repeated until the newest signed
    head covers exactly the records fetched (a poll for that condition, with a deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        bundle = fetch(operator)
        report = audit(bundle.space_public_key, bundle.participants, bundle.records, bundle.heads)
        assert report.problems == []
        settled = report.latest is not None and report.latest.size == len(bundle.records)
        if settled or time.monotonic() > deadline:
            break
    assert report.records == len(bundle.records) and report.latest is not None
    assert report.latest.size == len(bundle.records)
    return report


def phone_sets(root: Path, prefix: str, consumer: range, provider: range) -> tuple[Path, Path]:
    """a.csv (the consumer's) and b.csv (the provider's): phone numbers ``prefix`` + 8 digits
    for the indices in each range, so that the overlap is the ranges' intersection."""
    for name, indices in (("a.csv", consumer), ("b.csv", provider)):
        (root / name).write_text("phone\n" + "".join(f"{prefix}{i:08d}\n" for i in indices))
    return root / "a.csv", root / "b.csv"


def cardinality_offer(price: dict[str, Any]) -> dict[str, Any]:
    """An auto-approved offer of psi.cardinality at ``price``, without constraints."""
    return {"policy": {"permission": [{"action": "psi.cardinality"}]}, "price": price, "auto_approve": True}
