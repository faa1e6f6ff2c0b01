"""Shared values for tests that register participants."""

from tds.local import credit_code

CODES = [credit_code(i) for i in range(1, 10)]
