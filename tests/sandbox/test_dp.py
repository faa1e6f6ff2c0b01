"""The discrete Laplace mechanism for released counts (sandbox.ops.dp)."""

import math
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox.ops import dp


@pytest.mark.parametrize("epsilon", [0.0, -1.0, math.nan, math.inf])
def test_epsilon_must_be_finite_and_positive(epsilon: float) -> None:
    with pytest.raises(ValueError, match="epsilon: expected a finite ε > 0"):
        dp.discrete_laplace(epsilon)


def test_samples_follow_the_two_sided_geometric_distribution() -> None:
    """P(k) = (1 - q) / (1 + q) · q^|k| with q = e^-ε; 20 000 samples at ε = 1 hold each checked
    probability to within five standard errors."""
    n, q = 20_000, math.exp(-1.0)
    seen = Counter(dp.discrete_laplace(1.0) for _ in range(n))
    for k in (-2, -1, 0, 1, 2):
        p = (1 - q) / (1 + q) * q ** abs(k)
        assert abs(seen[k] / n - p) < 5 * math.sqrt(p * (1 - p) / n), (k, seen[k] / n, p)
    mean = sum(k * c for k, c in seen.items()) / n
    assert abs(mean) < 5 * math.sqrt(2 * q / (1 - q) ** 2 / n)


@given(st.integers(0, 10**9), st.floats(0.01, 10.0))
def test_a_noisy_count_is_never_negative(count: int, epsilon: float) -> None:
    assert dp.noisy_count(count, epsilon) >= 0
