"""Noise for counts released under differential privacy (pure, with the OS's randomness).

A count's sensitivity is 1 (one row more or less changes it by at most one), so the discrete
Laplace (two-sided geometric) mechanism with parameter e^(-ε) makes its release ε-DP (Ghosh,
Roughgarden, Sundararajan 2009; Canonne, Kamath, Steinke 2020 §2). It adds integers, so the
released count carries none of the low-order floating-point bits through which a continuous
Laplace sample can leak the true value (Mironov 2012). Each sample is the difference of two
geometric variables, each drawn by inverting its CDF at a 53-bit uniform from the OS: the
probabilities are exact up to the rounding of one logarithm.
"""

from __future__ import annotations

import math
import secrets

MAX_TRIALS = 1 << 40  # a geometric variable this large has probability below e^(-ε·2^40)


def _geometric(q: float) -> int:
    """Failures before the first success, success probability 1 - q; q in (0, 1)."""
    # inversion on a 53-bit uniform in (0, 1]: P(G ≥ k) = q^k exactly up to rounding of the log
    u = (secrets.randbits(53) + 1) / float(1 << 53)
    return min(MAX_TRIALS, math.floor(math.log(u) / math.log(q)))


def discrete_laplace(epsilon: float) -> int:
    """One sample of the two-sided geometric distribution P(k) ∝ e^(-ε|k|)."""
    if not epsilon > 0 or math.isinf(epsilon):
        raise ValueError(f"epsilon: expected a finite ε > 0, got {epsilon!r}")
    q = math.exp(-epsilon)
    return _geometric(q) - _geometric(q)


def noisy_count(count: int, epsilon: float) -> int:
    """``count`` released ε-DP; clamped at 0 (post-processing keeps the guarantee)."""
    return max(0, count + discrete_laplace(epsilon))
