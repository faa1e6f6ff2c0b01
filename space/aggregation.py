"""he.aggregate at the space: collect the providers' ciphertexts and add them without a key.

The consumer opens an aggregation with its public context (never a secret key; the sandbox
refuses one) and the agreements whose providers are to contribute. Each provider posts its
ciphertext — or the reason it gives none (fewer rows than the policy's k) — bound to the
context's fingerprint. When every provider has answered, the space adds the ciphertexts in its
sandbox and hands the consumer the total alone: the consumer never receives one provider's
ciphertext (unless only one contributed), and the space never holds a key to read any of them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contracts.agreements import State
from sandbox import warm
from sandbox.errors import SandboxError
from sandbox.interface import Backend, WorkerJob
from space import requests
from space.errors import Conflict, NotFound, Refused
from space.models import Aggregation, Agreement, Contribution

MAX_SLOTS = 4096
OPERATION = "he.aggregate"


def _bytes(value: Any, what: str) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Refused(f"{what}: expected base64") from exc


def open_aggregation(session: Session, caller: str, body: requests.OpenAggregation) -> Aggregation:
    job, agreements, size = body.job, list(body.agreements), body.size
    if not job.startswith("urn:uuid:"):
        raise Refused("job: expected a urn:uuid")
    if len(set(agreements)) != len(agreements):
        raise Refused("agreements: expected a list of distinct agreement ids")
    if not 0 < size <= MAX_SLOTS:
        raise Refused(f"size: expected 1 to {MAX_SLOTS} values")
    context = _bytes(body.context, "context")
    if hashlib.sha256(context).hexdigest() != body.fingerprint:
        raise Refused("fingerprint: not the SHA-256 of the context sent")
    for agreement_id in agreements:
        agreement = session.get(Agreement, agreement_id)
        if agreement is None or agreement.consumer_id != caller:
            raise Refused(f"agreement {agreement_id}: not an agreement of {caller} recorded here", status=403)
        if agreement.state != State.FINALIZED or OPERATION not in agreement.signed["document"].get(
            "tds:operations", []
        ):
            raise Refused(f"agreement {agreement_id} does not (or no longer) allow {OPERATION}", status=403)
    existing = session.get(Aggregation, job)
    if existing is not None:
        raise Conflict(f"aggregation {job} is already open")
    row = Aggregation(
        job=job,
        consumer_id=caller,
        agreements=agreements,
        fingerprint=body.fingerprint,
        context=context,
        size=size,
    )
    session.add(row)
    return row


def contribute(session: Session, caller: str, job: str, body: requests.Contribution) -> Contribution:
    aggregation = session.get(Aggregation, job)
    if aggregation is None:
        raise NotFound(f"no aggregation {job}")
    agreement_id = body.agreement
    agreement = session.get(Agreement, agreement_id)
    if agreement is None or agreement_id not in aggregation.agreements or agreement.provider_id != caller:
        raise Refused(f"{caller} is not the provider of an agreement in aggregation {job}", status=403)
    if body.fingerprint != aggregation.fingerprint:
        raise Refused(
            "the ciphertext was made under another context than the aggregation's (fingerprint differs)"
        )
    ciphertext = _bytes(body.ciphertext, "ciphertext") if body.ciphertext is not None else None
    reason = body.reason or ("contributed" if ciphertext else "")
    if ciphertext is None and not reason:
        raise Refused("a contribution carries a ciphertext or the reason there is none")
    least = body.min_providers
    if least < 1:
        raise Refused(f"min_providers: expected a whole number ≥ 1, got {least!r}")
    existing = session.get(Contribution, (job, agreement_id))
    if existing is not None:
        if existing.ciphertext != ciphertext:
            raise Conflict(f"agreement {agreement_id} already contributed to {job}")
        return existing
    row = Contribution(
        job=job,
        agreement_id=agreement_id,
        provider_id=caller,
        ciphertext=ciphertext,
        reason=reason,
        min_providers=least,
    )
    session.add(row)
    return row


def providers(session: Session, caller: str, job: str) -> dict[str, Any]:
    """For a provider deciding whether to take part: how many distinct participants other than
    the consumer provide in this aggregation (what the ``providers`` policy operand compares)."""
    aggregation = session.get(Aggregation, job)
    if aggregation is None:
        raise NotFound(f"no aggregation {job}")
    found = [session.get(Agreement, a) for a in aggregation.agreements]
    if not any(a is not None and a.provider_id == caller for a in found):
        raise Refused(f"{caller} is not a provider in aggregation {job}", status=403)
    distinct = {a.provider_id for a in found if a is not None and a.provider_id != aggregation.consumer_id}
    return {"job": job, "agreements": len(aggregation.agreements), "providers": len(distinct)}


def state(session: Session, caller: str, job: str) -> tuple[dict[str, Any], WorkerJob | None]:
    """Where an aggregation stands; once complete, the total — or, the first time, the
    sandboxed addition that makes it (run with :func:`add`, kept with :func:`keep_total`)."""
    aggregation = session.get(Aggregation, job)
    if aggregation is None:
        raise NotFound(f"no aggregation {job}")
    if aggregation.consumer_id != caller:
        raise Refused(f"aggregation {job} belongs to another participant", status=403)
    parts = {c.agreement_id: c for c in session.scalars(select(Contribution).where(Contribution.job == job))}
    answers = {a: ("contributed" if parts[a].ciphertext else parts[a].reason) for a in parts}
    if len(parts) < len(aggregation.agreements):
        return {"status": "waiting", "answers": answers, "expected": len(aggregation.agreements)}, None
    ciphertexts = [parts[a].ciphertext for a in aggregation.agreements if parts[a].ciphertext]
    found = {"status": "complete", "answers": answers, "contributors": len(ciphertexts), "total": None}
    contributing = [parts[a] for a in aggregation.agreements if parts[a].ciphertext]
    distinct = {c.provider_id for c in contributing if c.provider_id != aggregation.consumer_id}
    least = max((c.min_providers for c in contributing), default=1)
    if len(distinct) < least:
        # a provider's ciphertext is added only with as many others as it asked for: fewer
        # would let the consumer read its part out of the total
        return {
            **found,
            "contributors": 0,
            "withheld": (
                f"{len(distinct)} distinct providers contributed; a contribution requires at least {least}"
            ),
        }, None
    if aggregation.total is not None:
        return {**found, "total": base64.b64encode(aggregation.total).decode()}, None
    if not ciphertexts:
        return found, None
    params = {"fingerprint": aggregation.fingerprint, "size": aggregation.size}
    return found, WorkerJob("he.sum", params, [aggregation.context, *ciphertexts])  # type: ignore[list-item]


def add(sandbox: Backend | warm.WarmPool, addition: WorkerJob) -> bytes:
    """The sum of the contributions, computed in the space's sandbox (never in its process:
    the ciphertexts come from other parties)."""
    try:
        return sandbox.run(addition).blobs[0]
    except SandboxError as exc:
        raise Refused(f"the contributions cannot be added: {exc}", status=422) from exc


def keep_total(session: Session, job: str, total: bytes) -> str:
    """Stores the total unless a concurrent request stored one first; the stored one, base64."""
    aggregation = session.get(Aggregation, job)
    assert aggregation is not None
    if aggregation.total is None:
        aggregation.total = total
    return base64.b64encode(aggregation.total).decode()
