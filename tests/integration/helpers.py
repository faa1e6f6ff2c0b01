"""Shared values for tests that register participants."""

from contracts.audit import Report, audit
from tds.audit import fetch
from tds.client import NodeAPI
from tds.local import credit_code

CODES = [credit_code(i) for i in range(1, 10)]


def verified_log(operator: NodeAPI) -> Report:
    """The whole log as an auditor checks it: every signature, every signed head's root."""
    bundle = fetch(operator)
    report = audit(bundle.space_public_key, bundle.participants, bundle.records, bundle.heads)
    assert report.problems == []
    assert report.records == len(bundle.records) and report.latest is not None
    assert report.latest.size == len(bundle.records)
    return report
