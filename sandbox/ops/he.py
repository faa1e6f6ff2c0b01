"""CKKS homomorphic encryption for he.aggregate and he.score (TenSEAL), inside the sandbox.

Parameters: polynomial degree 8192, coefficient moduli 60/40/40/60 bits, scale 2^40 — 128-bit
security (homomorphicencryption.org standard), 4 096 slots, one plaintext multiplication deep.
A *public* context is the serialised context without its secret key (and without Galois or
relinearisation keys: additions and ciphertext × plaintext products need neither), and its
fingerprint is SHA-256 of those bytes. Everything that comes from another party — a context, a
ciphertext — is checked here before use: a context that carries a secret key is refused, a
ciphertext must name the job's context fingerprint and deserialise under it, sizes must match.

he.score packs by column: the consumer encrypts each weight repeated across the slots, and the
provider computes Σⱼ wⱼ·X[:, j] for 4 096 rows at a time — a batched vector × matrix product
that needs no rotations, so no Galois keys leave the consumer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import tenseal as ts

POLY_DEGREE = 8192
COEFF_BITS = (60, 40, 40, 60)
SCALE = 2**40
SLOTS = POLY_DEGREE // 2
MAX_WEIGHTS = 64


class HEError(ValueError):
    """A context or ciphertext cannot be used; the message says why."""


def new_context() -> tuple[bytes, bytes]:
    """(secret context, public context) of a fresh key pair."""
    context = ts.context(ts.SCHEME_TYPE.CKKS, POLY_DEGREE, coeff_mod_bit_sizes=list(COEFF_BITS))
    context.global_scale = SCALE
    secret = context.serialize(save_secret_key=True, save_galois_keys=False, save_relin_keys=False)
    public = context.serialize(save_secret_key=False, save_galois_keys=False, save_relin_keys=False)
    return secret, public


def warm_up() -> None:
    """One throwaway product under a throwaway key, in a worker waiting for its job: SEAL's
    memory pool then holds ciphertext-sized blocks, and the job's first products do not fault
    their pages in one by one (he.score's part in a fresh worker: 3–6 ms less)."""
    context = ts.context(ts.SCHEME_TYPE.CKKS, POLY_DEGREE, coeff_mod_bit_sizes=list(COEFF_BITS))
    context.global_scale = SCALE
    vector = ts.ckks_vector(context, [1.0] * SLOTS)
    (vector * ([0.5] * SLOTS)).decrypt()


def fingerprint(public: bytes) -> str:
    return hashlib.sha256(public).hexdigest()


def load_public(public: bytes) -> ts.Context:
    """A peer's public context, refused if it carries a secret key or keys it should not."""
    try:
        context = ts.context_from(public)
    except Exception as exc:  # TenSEAL raises several types for malformed input
        raise HEError(f"the context cannot be read: {str(exc)[:200]}") from exc
    if context.is_private():
        raise HEError("the context carries a secret key; send the public context only")
    if context.has_galois_keys():
        raise HEError(
            "the context carries Galois keys; these operations need none, send the public context only"
        )
    try:
        ts.ckks_vector(context, [0.0] * SLOTS)
    except Exception as exc:
        raise HEError(f"the context is not a CKKS context with {SLOTS} slots: {str(exc)[:200]}") from exc
    return context


def load_secret(secret: bytes) -> ts.Context:
    context = ts.context_from(secret)
    if not context.is_private():
        raise HEError("the consumer's context lost its secret key")
    return context


def encrypt(context: ts.Context, values: Sequence[float]) -> bytes:
    if len(values) > SLOTS:
        raise HEError(f"{len(values)} values do not fit in {SLOTS} slots")
    return bytes(ts.ckks_vector(context, [float(v) for v in values]).serialize())


def load_vector(context: ts.Context, data: bytes, size: int, what: str) -> ts.CKKSVector:
    try:
        vector = ts.ckks_vector_from(context, data)
    except Exception as exc:
        raise HEError(f"{what} is not a ciphertext of this context: {str(exc)[:200]}") from exc
    if vector.size() != size:
        raise HEError(f"{what} holds {vector.size()} values, expected {size}")
    return vector


def add_all(public: bytes, ciphertexts: Sequence[bytes], size: int) -> bytes:
    """The sum of ciphertexts, computed without any secret key."""
    context = load_public(public)
    total = None
    for i, data in enumerate(ciphertexts):
        vector = load_vector(context, data, size, f"contribution {i}")
        total = vector if total is None else total + vector
    if total is None:
        raise HEError("nothing to add")
    return bytes(total.serialize())


def decrypt(context: ts.Context, data: bytes, size: int) -> list[float]:
    """The total under the consumer's secret context (:func:`load_secret`)."""
    return list(load_vector(context, data, size, "the total").decrypt())


# --- he.score ------------------------------------------------------------------------------
def encrypt_weights(context: ts.Context, weights: Sequence[float]) -> list[bytes]:
    if not 1 <= len(weights) <= MAX_WEIGHTS:
        raise HEError(f"a model has 1 to {MAX_WEIGHTS} weights, got {len(weights)}")
    return [bytes(ts.ckks_vector(context, [float(w)] * SLOTS).serialize()) for w in weights]


def score(
    public: bytes,
    weights: Sequence[bytes],
    features: np.ndarray,
    flood: float = 0.0,
    rng: np.random.Generator | None = None,
) -> list[bytes]:
    """Encrypted w·x for every row of ``features`` (rows × weights), SLOTS rows per ciphertext;
    with ``flood``, N(0, flood²) added to every slot, so that the decrypted scores' CKKS error,
    which depends on the features, is drowned (noise flooding)."""
    context = load_public(public)
    if features.ndim != 2 or features.shape[1] != len(weights):
        raise HEError(f"the model has {len(weights)} weights, the features {features.shape[-1]} columns")
    encrypted = [load_vector(context, w, SLOTS, f"weight {j}") for j, w in enumerate(weights)]
    out = []
    for start in range(0, len(features), SLOTS):
        batch = np.zeros((SLOTS, features.shape[1]))
        part = features[start : start + SLOTS]
        batch[: len(part)] = part
        total = None
        for j, weight in enumerate(encrypted):
            term = weight * batch[:, j].tolist()
            total = term if total is None else total + term
        assert total is not None
        if flood:
            total = total + (rng or np.random.default_rng()).normal(0.0, flood, SLOTS).tolist()
        out.append(bytes(total.serialize()))
    return out


def decrypt_scores(context: ts.Context, batches: Sequence[bytes], rows: int) -> list[float]:
    """The scores of ``rows`` rows under the consumer's secret context (:func:`load_secret`)."""
    if len(batches) != -(-rows // SLOTS):
        raise HEError(f"{len(batches)} score batches for {rows} rows; expected {-(-rows // SLOTS)}")
    scores: list[float] = []
    for i, data in enumerate(batches):
        scores += load_vector(context, data, SLOTS, f"score batch {i}").decrypt()
    return scores[:rows]
