"""Participants: registration, admission, suspension and membership credentials."""

from __future__ import annotations

import datetime as dt
import re
import socket
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from contracts.credit_code import validate_credit_code
from contracts.documents import new_signed
from contracts.errors import ContractError
from contracts.keys import SigningKey, load_public_key
from policies import endpoints
from policies.errors import PolicyError
from policies.model import format_datetime
from space.errors import Conflict, NotFound, Refused
from space.models import Participant
from space.settings import SpaceSettings

ID_PATTERN = re.compile(r"^[a-z][a-z0-9-]{2,39}$")
JURISDICTION = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")
ROLES = ("provider", "consumer")
SPACE_ID = "space"


def validate_registration(body: dict[str, Any]) -> dict[str, Any]:
    """Check a registration; raise Refused naming the first field that is wrong."""
    pid = body.get("id")
    if not isinstance(pid, str) or not ID_PATTERN.match(pid) or pid == SPACE_ID:
        raise Refused(
            f"participant id {pid!r}: expected 3–40 characters of a-z, 0-9 and '-', "
            "starting with a letter (and not 'space')"
        )
    legal_name = body.get("legal_name")
    if not isinstance(legal_name, str) or not legal_name.strip():
        raise Refused("legal_name: expected the registered legal name")
    try:
        credit_code = validate_credit_code(body.get("credit_code", ""))
    except ContractError as exc:
        raise Refused(f"credit_code: {exc}") from exc
    try:
        load_public_key(str(body.get("public_key", "")))
    except ContractError as exc:
        raise Refused(
            f"public_key: expected an Ed25519 public key as 43 characters of base64url ({exc})"
        ) from exc
    roles = body.get("roles")
    if not isinstance(roles, list) or not roles or not set(roles) <= set(ROLES):
        raise Refused(f"roles: expected a non-empty subset of {list(ROLES)}, got {roles!r}")
    jurisdiction = body.get("jurisdiction")
    if not isinstance(jurisdiction, str) or not JURISDICTION.match(jurisdiction):
        raise Refused(f"jurisdiction: expected an ISO 3166 code such as CN or CN-HA, got {jurisdiction!r}")
    endpoint = body.get("endpoint")
    parts = urlsplit(endpoint if isinstance(endpoint, str) else "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused(f"endpoint: expected the connector's http(s) base URL, got {endpoint!r}")
    return {
        "id": pid,
        "legal_name": legal_name.strip(),
        "credit_code": credit_code,
        "roles": sorted(set(roles)),
        "jurisdiction": jurisdiction,
        "public_key": body["public_key"],
        "endpoint": endpoint.rstrip("/"),  # type: ignore[union-attr]
    }


def check_endpoint(endpoint: str, settings: SpaceSettings) -> None:
    """Refuse an endpoint the operator's policy does not admit, judged by every address its host
    resolves to now (policies.endpoints). Raises Refused (422) saying which address and range."""
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    try:
        found = socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80),
                                   type=socket.SOCK_STREAM)  # fmt: skip
    except (OSError, UnicodeError) as exc:
        raise Refused(f"endpoint {endpoint!r}: host {host!r} does not resolve ({exc})") from exc
    try:
        endpoints.check_endpoint(
            endpoint, [str(a[4][0]) for a in found], settings.endpoint_denied_ranges, settings.dev_mode
        )
    except PolicyError as exc:
        raise Refused(str(exc)) from exc


def register(session: Session, fields: dict[str, Any]) -> tuple[Participant, bool]:
    """Store a registration; the same id and key again is a no-op returning the stored one."""
    existing = session.get(Participant, fields["id"])
    if existing is not None:
        if existing.public_key != fields["public_key"]:
            raise Conflict(f"participant {fields['id']} is registered with another key")
        return existing, False
    other = session.scalar(select(Participant).where(Participant.credit_code == fields["credit_code"]))
    if other is not None:
        raise Conflict(f"credit code {fields['credit_code']} is registered as {other.id}")
    participant = Participant(**fields, status="pending", credential=None)
    session.add(participant)
    return participant, True


def issue_credential(
    participant: Participant, key: SigningKey, now: dt.datetime, days: int
) -> dict[str, Any]:
    document = {
        "@type": "tds:MembershipCredential",
        "issuer": SPACE_ID,
        "participant": participant.id,
        "legal_name": participant.legal_name,
        "credit_code": participant.credit_code,
        "roles": participant.roles,
        "jurisdiction": participant.jurisdiction,
        "public_key": participant.public_key,
        "issued_at": format_datetime(now),
        "expires_at": format_datetime(now + dt.timedelta(days=days)),
    }
    return new_signed(document, SPACE_ID, key)


def get(session: Session, pid: str) -> Participant:
    participant = session.get(Participant, pid)
    if participant is None:
        raise NotFound(f"no participant {pid!r}")
    return participant


def admit(session: Session, pid: str, key: SigningKey, now: dt.datetime, days: int) -> Participant:
    participant = get(session, pid)
    participant.status = "admitted"
    participant.admitted_at = now
    participant.credential = issue_credential(participant, key, now, days)
    return participant


def renew(
    session: Session, pid: str, key: SigningKey, now: dt.datetime, days: int, within: int
) -> Participant:
    """A new credential for an admitted member whose credential ends within ``within`` days,
    binding the same key: no suspension, no gap (the old one stays valid until it ends)."""
    participant = get(session, pid)
    if participant.status != "admitted" or not participant.credential:
        raise Conflict(f"{pid} is {participant.status}: only an admitted member renews its credential")
    expires = dt.datetime.fromisoformat(
        participant.credential["document"]["expires_at"].replace("Z", "+00:00")
    )
    if expires - now > dt.timedelta(days=within):
        raise Conflict(
            f"{pid}'s credential expires at {format_datetime(expires)}: it is renewed within {within} days "
            f"of its end, from {format_datetime(expires - dt.timedelta(days=within))}"
        )
    participant.credential = issue_credential(participant, key, now, days)
    return participant


def suspend(session: Session, pid: str) -> Participant:
    participant = get(session, pid)
    participant.status = "suspended"
    return participant


def credential_valid(participant: Participant, now: dt.datetime) -> bool:
    if participant.status != "admitted" or not participant.credential:
        return False
    expires = participant.credential["document"]["expires_at"]
    return now < dt.datetime.fromisoformat(expires.replace("Z", "+00:00"))


def public_view(participant: Participant) -> dict[str, Any]:
    return {
        "id": participant.id,
        "legal_name": participant.legal_name,
        "credit_code": participant.credit_code,
        "roles": participant.roles,
        "jurisdiction": participant.jurisdiction,
        "public_key": participant.public_key,
        "endpoint": participant.endpoint,
        "status": participant.status,
        "credential": participant.credential,
    }
