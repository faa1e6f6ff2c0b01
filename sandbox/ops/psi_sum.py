"""psi.sum: Private Intersection-Sum-with-Cardinality (Ion et al., EuroS&P 2020, §3.2: the
protocol of Google's Private Join and Compute) on X25519 and BFV (TenSEAL), adapted so that the
consumer, who holds only keys, learns the sum, and the provider, who holds the values, learns
only |A| and the counts it checks k against.

1. consumer → provider: k_c·H(x) for x in A (sandbox.ops.psi_x25519).
2. provider → consumer: k_p·k_c·H(x), sorted as one; its own k_p·H(y), sorted, and beside them
   in the same order, BFV encryptions under a fresh key of its own (:func:`encrypt_columns`):
   per category, 4 096 rows a ciphertext, a row's value in slot i and a 1 in slot 4 096 + i
   when the row is of that category, zeros otherwise.
3. consumer: k_c·k_p·H(y) for each of the provider's elements; a row matches when that is among
   the provider's answer. Per category it adds the ciphertexts times the 0/1 match vector
   (:func:`masked_sums`), then adds a random plaintext — uniform values in the value slots, whose
   total R it keeps, and uniform values summing to 0 in the count slots — and a fresh encryption
   of zero times two random plaintexts (noise flooding: its noise exceeds the sum's by ≈ 2^50,
   so the ciphertext says nothing of which rows were added). Sends the one ciphertext per
   category.
4. provider: decrypts (:func:`reveal`); the count slots add up to the category's count, the
   value slots to sum + R. It checks k on each count and releases sum + R of the categories
   that meet it; the consumer subtracts R.

Parameters: degree 8 192, the 218-bit coefficient modulus TenSEAL and SEAL take by default for
it (128-bit security, homomorphicencryption.org), plain modulus t = 2^50 − 2^14·… (a prime ≡ 1
mod 2·8 192, so batching works). Sums are exact while the total of |value| over the provider's
rows is below t/2 ≈ 5.6·10^14 (checked before anything is encrypted).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import tenseal as ts

from sandbox.errors import WorkerFailed
from sandbox.ops.sum_rows import HALF, PLAIN_MODULUS, centred, unmasked  # noqa: F401  (unmasked: the API)

DEGREE = 8192
ROWS = DEGREE // 2  # rows per ciphertext: a value slot and a count slot each
COEFF_BITS = 218


@dataclass(frozen=True)
class Keys:
    secret: bytes  # the provider's context with its secret key: never leaves the provider
    public: bytes


def new_keys() -> Keys:
    context = ts.context(ts.SCHEME_TYPE.BFV, poly_modulus_degree=DEGREE, plain_modulus=PLAIN_MODULUS)
    return Keys(
        context.serialize(save_secret_key=True, save_galois_keys=False, save_relin_keys=False),
        context.serialize(save_secret_key=False, save_galois_keys=False, save_relin_keys=False),
    )


def check_range(values: Sequence[int]) -> None:
    """Every subset sum must stay below t/2 to come back exact (and with its sign)."""
    if sum(abs(v) for v in values) >= HALF:
        raise WorkerFailed(
            "input",
            f"the summed column's total magnitude reaches {HALF:.2e} in its smallest unit; psi.sum adds "
            "exactly below that. Sum a column in larger units",
        )


def encrypt_columns(keys: Keys, values: Sequence[int], categories: Sequence[int], labels: int) -> list[bytes]:
    """Per category, ⌈rows / 4 096⌉ ciphertexts, in row order: category-major."""
    context = ts.context_from(keys.secret)
    out: list[bytes] = []
    for category in range(labels):
        for start in range(0, max(len(values), 1), ROWS):
            chunk = range(start, min(start + ROWS, len(values)))
            sums = [values[i] if categories[i] == category else 0 for i in chunk]
            counts = [1 if categories[i] == category else 0 for i in chunk]
            slots = _halves(sums, counts)
            out.append(ts.bfv_vector(context, slots).serialize())
    return out


def _halves(first: list[int], second: list[int]) -> list[int]:
    return first + [0] * (ROWS - len(first)) + second + [0] * (ROWS - len(second))


def load_public(public: bytes) -> ts.Context:
    """The provider's public context, refused unless it has this protocol's parameters and no
    secret key (a smaller plain modulus would weaken the flooding of step 3)."""
    try:
        context = ts.context_from(public)
    except Exception as exc:  # TenSEAL raises several types for malformed input
        raise WorkerFailed(
            "protocol", f"the provider's BFV context cannot be read: {str(exc)[:200]}"
        ) from exc
    data = context.seal_context().data.key_context_data()
    found = (
        data.parms().scheme().name,
        data.parms().poly_modulus_degree(),
        2 * data.plain_upper_half_threshold() - 1,
        data.total_coeff_modulus_bit_count(),
    )
    wanted = ("BFV", DEGREE, PLAIN_MODULUS, COEFF_BITS)
    if found != wanted or context.is_private() or context.has_galois_keys():
        raise WorkerFailed(
            "protocol",
            f"the provider's BFV context: expected a public context with (scheme, degree, plain modulus, "
            f"coefficient bits) = {wanted}, got {found}{' and a secret key' if context.is_private() else ''}",
        )
    return context


def _uniform_summing_to(total: int, count: int) -> list[int]:
    """``count`` slot values, uniform mod t but for their sum, which is ``total`` mod t; centred,
    as the batch encoder takes them."""
    values = [secrets.randbelow(PLAIN_MODULUS) for _ in range(count - 1)]
    values.append((total - sum(values)) % PLAIN_MODULUS)
    return [centred(v) for v in values]


def _random_plain() -> list[int]:
    return [centred(secrets.randbelow(PLAIN_MODULUS)) for _ in range(DEGREE)]


def masked_sums(
    public: bytes, ciphertexts: Sequence[bytes], matched: Sequence[bool], labels: int
) -> tuple[list[bytes], list[int]]:
    """Step 3: per category the masked, flooded sum of the matched rows, and the masks R."""
    context = load_public(public)
    per_category = max(-(-len(matched) // ROWS), 1)
    if len(ciphertexts) != per_category * labels:
        raise WorkerFailed(
            "protocol",
            f"the provider sent {len(ciphertexts)} ciphertexts; {labels} categories of {len(matched)} rows "
            f"take {per_category * labels}",
        )
    out, masks = [], []
    for category in range(labels):
        total = ts.bfv_vector(context, [0] * DEGREE)
        for chunk in range(per_category):
            bits = [1 if m else 0 for m in matched[chunk * ROWS : (chunk + 1) * ROWS]]
            if not any(bits):
                continue  # adds nothing; the flooding below hides how many did
            try:
                vector = ts.bfv_vector_from(context, ciphertexts[category * per_category + chunk])
            except Exception as exc:
                raise WorkerFailed(
                    "protocol", f"a ciphertext of the provider cannot be read: {str(exc)[:200]}"
                ) from exc
            if vector.size() != DEGREE:
                raise WorkerFailed(
                    "protocol", f"a ciphertext of the provider has {vector.size()} slots, not {DEGREE}"
                )
            total += vector * _halves(bits, bits)
        mask = secrets.randbelow(PLAIN_MODULUS)
        total += _uniform_summing_to(mask, ROWS) + _uniform_summing_to(0, ROWS)
        total += ts.bfv_vector(context, [0] * DEGREE) * _random_plain() * _random_plain()
        out.append(total.serialize())
        masks.append(mask)
    return out, masks


@dataclass(frozen=True)
class Revealed:
    counts: list[int]
    masked: list[int]  # sum + R per category, mod t


def reveal(secret: bytes, ciphertexts: Sequence[bytes], labels: int) -> Revealed:
    """Step 4 at the provider: per category, the count and the masked sum."""
    if len(ciphertexts) != labels:
        raise WorkerFailed(
            "request", f"expected {labels} ciphertexts, one per category, got {len(ciphertexts)}"
        )
    context = ts.context_from(secret)
    counts, masked = [], []
    for blob in ciphertexts:
        try:
            slots = ts.bfv_vector_from(context, blob).decrypt()
        except Exception as exc:
            raise WorkerFailed(
                "request", f"a ciphertext of the consumer cannot be read: {str(exc)[:200]}"
            ) from exc
        if len(slots) != DEGREE:
            raise WorkerFailed(
                "request", f"a ciphertext of the consumer has {len(slots)} slots, not {DEGREE}"
            )
        masked.append(sum(slots[:ROWS]) % PLAIN_MODULUS)
        counts.append(sum(slots[ROWS:]) % PLAIN_MODULUS)
    return Revealed(counts, masked)
