import os
import re
from pathlib import Path

import pytest

from contracts.canonical import canonical_bytes
from contracts.documents import new_signed, sign_document, verify_document
from contracts.errors import ContractError, KeyFileError, SignatureError
from contracts.keys import SigningKey, verify
from tests.conftest import ALICE, BOB, MALLORY

KEYS = {"alice": ALICE.public_key, "bob": BOB.public_key}


def test_key_file_is_0600_and_round_trips(tmp_path: Path) -> None:
    key = SigningKey.generate()
    path = tmp_path / "node.key"
    key.save(path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert SigningKey.load(path).public_key == key.public_key


def test_key_file_is_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    ALICE.save(path)
    with pytest.raises(KeyFileError, match="already exists; refusing to overwrite"):
        BOB.save(path)
    assert SigningKey.load(path).public_key == ALICE.public_key


def test_readable_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    ALICE.save(path)
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match=r"readable by others \(mode 644\); run: chmod 600"):
        SigningKey.load(path)


def test_garbage_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    path.write_text("not a key")
    os.chmod(path, 0o600)
    with pytest.raises(KeyFileError, match="not a PEM Ed25519 private key"):
        SigningKey.load(path)


def test_fixed_test_keys_are_stable() -> None:
    # RFC 8032 seeds give the same public key on every run: documents in tests are reproducible
    assert SigningKey.from_seed(bytes(range(32))).public_key == ALICE.public_key
    assert ALICE.sign(b"tds") == ALICE.sign(b"tds")


def test_canonical_bytes_are_rfc8785() -> None:
    assert canonical_bytes({"b": 1, "a": [1.0, "é", None]}) == '{"a":[1,"é",null],"b":1}'.encode()
    with pytest.raises(ContractError, match="cannot be canonicalised"):
        canonical_bytes({"x": float("nan")})


def test_documents_need_every_party() -> None:
    signed = sign_document(new_signed({"n": 1}, "alice", ALICE), "bob", BOB)
    verify_document(signed, {"alice", "bob"}, KEYS.__getitem__)
    with pytest.raises(SignatureError, match=r"signed by 1/2 parties; missing \['bob'\]"):
        verify_document(new_signed({"n": 1}, "alice", ALICE), {"alice", "bob"}, KEYS.__getitem__)
    with pytest.raises(SignatureError, match=r"unexpected signers \['bob'\]"):
        verify_document(signed, {"alice"}, KEYS.__getitem__)


def test_tampered_document_fails() -> None:
    signed = new_signed({"fee_fen": 100}, "alice", ALICE)
    tampered = {"document": {"fee_fen": 1}, "signatures": signed["signatures"]}
    with pytest.raises(SignatureError, match="signature of alice: signature does not verify"):
        verify_document(tampered, {"alice"}, KEYS.__getitem__)


def test_signature_by_another_key_fails() -> None:
    forged = new_signed({"n": 1}, "alice", MALLORY)
    with pytest.raises(SignatureError, match="signature of alice"):
        verify_document(forged, {"alice"}, KEYS.__getitem__)


def test_verify_refuses_malformed_input() -> None:
    with pytest.raises(SignatureError, match="32 bytes"):
        verify("AAAA", b"m", b"s")
    with pytest.raises(SignatureError, match=re.escape('expected {"document"')):
        verify_document({"doc": 1}, {"alice"}, KEYS.__getitem__)
