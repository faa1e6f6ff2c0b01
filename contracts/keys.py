"""Ed25519 node keys (pycryptodome, RFC 8032 pure EdDSA).

A node's private key lives in its data directory as PKCS#8 PEM with mode 0600. Public keys
travel as unpadded base64url of the 32 raw bytes (the JWK ``x`` form, RFC 8037 §2).
"""

from __future__ import annotations

import base64
import functools
import os
import stat
from pathlib import Path

from Crypto.PublicKey import ECC
from Crypto.Signature import eddsa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from contracts.errors import KeyFileError, SignatureError


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise SignatureError(f"not base64url: {text[:20]!r}…") from exc


class SigningKey:
    """A private Ed25519 key."""

    def __init__(self, key: ECC.EccKey) -> None:
        if key.curve != "Ed25519" or not key.has_private():
            raise KeyFileError(f"expected a private Ed25519 key, got a {key.curve} key")
        self._key = key

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(ECC.generate(curve="ed25519"))

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        """The key for a 32-byte RFC 8032 seed (fixed test keys use this)."""
        return cls(eddsa.import_private_key(seed))

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        try:
            mode = path.stat().st_mode
            text = path.read_text("ascii")
        except OSError as exc:
            raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from exc
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyFileError(
                f"key file {path} is readable by others (mode {stat.S_IMODE(mode):o}); run: chmod 600 {path}"
            )
        try:
            key = ECC.import_key(text)
        except (ValueError, IndexError, TypeError) as exc:
            raise KeyFileError(f"key file {path} is not a PEM Ed25519 private key") from exc
        return cls(key)

    def save(self, path: Path) -> None:
        """Write the key with mode 0600, refusing to overwrite an existing key."""
        pem = self._key.export_key(format="PEM").encode("ascii")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError as exc:
            raise KeyFileError(f"key file {path} already exists; refusing to overwrite it") from exc
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)

    def sign(self, message: bytes) -> bytes:
        return eddsa.new(self._key, "rfc8032").sign(message)

    @property
    def public_key(self) -> str:
        return b64url(self._key.public_key().export_key(format="raw"))


def load_public_key(public_key: str) -> ECC.EccKey:
    raw = b64url_decode(public_key)
    if len(raw) != 32:
        raise SignatureError(f"an Ed25519 public key has 32 bytes, got {len(raw)}")
    try:
        return eddsa.import_public_key(raw)
    except ValueError as exc:
        raise SignatureError("not a valid Ed25519 public key") from exc


@functools.lru_cache(maxsize=4096)
def _verifier(public_key: str) -> Ed25519PublicKey:
    load_public_key(public_key)  # the same checks and messages as everywhere else
    return Ed25519PublicKey.from_public_bytes(b64url_decode(public_key))


def verify(public_key: str, message: bytes, signature: bytes) -> None:
    """Return None if ``signature`` is ``public_key``'s signature over ``message``; else raise.

    Verification goes through ``cryptography`` (OpenSSL), three times faster than pycryptodome
    here, with parsed keys cached: auditors verify every signature of the whole log."""
    try:
        _verifier(public_key).verify(signature, message)
    except InvalidSignature as exc:
        raise SignatureError("signature does not verify") from exc
