import pytest

from contracts.credit_code import check_character, validate_credit_code
from contracts.errors import CreditCodeError

# Published codes of real companies (their registrations are public records).
REAL = ["914403001922038216", "9144030071526726XG", "91330100799655058B"]


@pytest.mark.parametrize("code", REAL)
def test_real_codes_validate(code: str) -> None:
    assert validate_credit_code(code) == code
    assert validate_credit_code(" " + code.lower() + " ") == code


def test_wrong_check_character_says_what_was_expected() -> None:
    with pytest.raises(CreditCodeError, match=r"has check character '7', expected '6' \(GB 32100\)"):
        validate_credit_code("914403001922038217")


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("91440300192203821", "must have 18 characters, got 17"),
        ("9144030019220382I6", "contains 'I'"),
        ("91440300192203O216", "contains 'O'"),
        ("", "must have 18 characters, got 0"),
    ],
)
def test_malformed_codes(code: str, message: str) -> None:
    with pytest.raises(CreditCodeError, match=message):
        validate_credit_code(code)


def test_every_single_character_typo_is_caught() -> None:
    code = REAL[0]
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    for position in range(17):
        for ch in alphabet:
            if ch == code[position]:
                continue
            typo = code[:position] + ch + code[position + 1 :]
            assert check_character(typo[:17]) != code[17], typo
