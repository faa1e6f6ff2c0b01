"""Unified social credit codes (统一社会信用代码), GB 32100-2015.

18 characters over the 31-character alphabet ``0-9 A-H J-N P-R T U W-Y`` (no I, O, Z, S, V).
The 18th is a check character: weights 3^i mod 31 for positions 1–17,
check = (31 − Σ value·weight mod 31) mod 31 (GB 32100-2015 §4.3 and Annex B).
"""

from __future__ import annotations

from contracts.errors import CreditCodeError

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = tuple(pow(3, i, 31) for i in range(17))  # 1, 3, 9, 27, 19, 26, 16, …


def check_character(first17: str) -> str:
    total = sum(ALPHABET.index(ch) * w for ch, w in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def validate_credit_code(code: str) -> str:
    """Return the normalised (upper-case) code, or raise CreditCodeError saying what is wrong."""
    if not isinstance(code, str):
        raise CreditCodeError("unified social credit code must be a string")
    normalised = code.strip().upper()
    if len(normalised) != 18:
        raise CreditCodeError(f"unified social credit code must have 18 characters, got {len(normalised)}")
    bad = sorted({ch for ch in normalised if ch not in ALPHABET})
    if bad:
        raise CreditCodeError(
            f"unified social credit code contains {''.join(bad)!r}; "
            "allowed are digits and A–Y except I, O, S, V, Z"
        )
    expected = check_character(normalised[:17])
    if normalised[17] != expected:
        raise CreditCodeError(
            f"unified social credit code {normalised} has check character {normalised[17]!r}, "
            f"expected {expected!r} (GB 32100); check the code for typing errors"
        )
    return normalised
