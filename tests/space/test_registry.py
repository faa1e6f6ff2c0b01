import datetime as dt

import pytest

from contracts.documents import verify_document
from contracts.keys import SigningKey
from node.db import Database
from node.models import utcnow
from space import registry
from space.errors import Conflict, NotFound, Refused
from tests.conftest import ALICE, BOB
from tests.integration.helpers import CODES
from tests.space.conftest import fields

SPACE_KEY = SigningKey.from_seed(bytes(32))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"id": "X"}, "participant id 'X': expected 3–40 characters"),
        ({"id": "space"}, "and not 'space'"),
        (
            {"credit_code": CODES[0][:-1] + ("0" if CODES[0][-1] != "0" else "1")},
            "expected .* \\(GB 32100\\)",
        ),
        ({"roles": ["admin"]}, "roles: expected a non-empty subset"),
        ({"jurisdiction": "Henan"}, "jurisdiction: expected an ISO 3166 code"),
        ({"endpoint": "ftp://x"}, "endpoint: expected the connector's http"),
        ({"public_key": "short"}, "public_key: expected an Ed25519 public key"),
        ({"public_key": "AAAA"}, "public_key: .*32 bytes, got 3"),
        ({"legal_name": " "}, "legal_name"),
    ],
)
def test_bad_registrations_say_what_is_wrong(change: dict, message: str) -> None:
    body = {
        "id": "bank",
        "legal_name": "Bank",
        "credit_code": CODES[0],
        "roles": ["consumer"],
        "jurisdiction": "CN-HA",
        "public_key": ALICE.public_key,
        "endpoint": "http://127.0.0.1:9",
    }
    with pytest.raises(Refused, match=message):
        registry.validate_registration({**body, **change})


def test_register_admit_and_credential(db: Database) -> None:
    now = utcnow()
    with db.transaction() as session:
        participant, created = registry.register(session, fields("bank", BOB.public_key, CODES[1]))
        assert created and participant.status == "pending"
        assert not registry.credential_valid(participant, now)
        session.flush()
        registry.admit(session, "bank", SPACE_KEY, now, 30)
    with db.session() as session:
        stored = registry.get(session, "bank")
        assert stored.status == "admitted"
        verify_document(stored.credential, {"space"}, lambda _: SPACE_KEY.public_key)
        document = stored.credential["document"]
        assert (document["participant"], document["public_key"]) == ("bank", BOB.public_key)
        assert registry.credential_valid(stored, now)
        assert not registry.credential_valid(stored, now + dt.timedelta(days=31))


def test_registering_again_is_idempotent_but_not_with_another_key(db: Database) -> None:
    with db.transaction() as session:
        registry.register(session, fields("bank", BOB.public_key, CODES[1]))
    with db.transaction() as session:
        _, created = registry.register(session, fields("bank", BOB.public_key, CODES[1]))
        assert not created
    with db.transaction() as session, pytest.raises(Conflict, match="registered with another key"):
        registry.register(session, fields("bank", ALICE.public_key, CODES[1]))
    with (
        db.transaction() as session,
        pytest.raises(Conflict, match=f"credit code {CODES[1]} is registered as bank"),
    ):
        registry.register(session, fields("bank2", ALICE.public_key, CODES[1]))


def test_suspend_and_unknown(members: Database) -> None:
    with members.transaction() as session:
        assert registry.suspend(session, "bank").status == "suspended"
    with members.session() as session, pytest.raises(NotFound, match="no participant 'nobody'"):
        registry.get(session, "nobody")
