"""The additive parts of he.aggregate: layout, refusals, finishing, sensitivity."""

import numpy as np
import pytest

from sandbox.ops import stats
from sandbox.ops.stats import Layout, StatsError, finish, local_parts, sensitivity


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"stats": ["median"], "column": "x"}, "stats: expected some of"),
        ({"stats": ["sum", "sum"], "column": "x"}, "a statistic is named twice"),
        ({"stats": ["sum"]}, r"column: \['sum'\] need a column"),
        ({"stats": ["histogram"], "column": "x", "bins": [5]}, "a histogram needs 2 to 257 numeric edges"),
        ({"stats": ["histogram"], "column": "x", "bins": [5, 5]}, "edges must ascend strictly"),
        ({"stats": ["linreg"], "features": [], "target": "y"}, "linreg needs 1 to 32 feature columns"),
        ({"stats": ["linreg"], "features": ["a"]}, "linreg needs a target column"),
    ],
)
def test_refusals(params: dict, message: str) -> None:
    with pytest.raises(StatsError, match=message):
        Layout.from_params(params)


def test_parts_and_their_statistics() -> None:
    layout = Layout.from_params(
        {"stats": ["mean", "variance", "histogram"], "column": "x", "bins": [0, 2, 4]}
    )
    assert layout.parts() == ["count", "sum", "sumsq", "bin0", "bin1"]
    table = {"x": np.array(["1", "2", "3", "9"], dtype=object)}
    parts = local_parts(layout, table, np.array([True, True, True, False]))
    assert list(parts) == [3.0, 6.0, 14.0, 1.0, 2.0]
    assert finish(layout, list(parts)) == {
        "mean": 2.0,
        "variance": 1.0,
        "histogram": {"edges": [0.0, 2.0, 4.0], "counts": [1, 2]},
    }


def test_clipping_and_sensitivity() -> None:
    layout = Layout.from_params({"stats": ["count", "sum"], "column": "x"})
    table = {"x": np.array(["-50", "5", "500"], dtype=object)}
    assert list(local_parts(layout, table, np.ones(3, dtype=bool), (0.0, 100.0))) == [3.0, 105.0]
    assert sensitivity(layout, (0.0, 100.0)) == 101.0


def test_non_numbers_are_named() -> None:
    layout = Layout.from_params({"stats": ["sum"], "column": "x"})
    with pytest.raises(StatsError, match="column 'x' holds values that are not numbers"):
        local_parts(layout, {"x": np.array(["1", "two"], dtype=object)}, np.ones(2, dtype=bool))


def test_l2_sensitivity_and_the_gaussian_scale() -> None:
    from sandbox.ops.stats import gaussian_sigma

    layout = Layout.from_params({"stats": ["count", "sum", "histogram"], "column": "x", "bins": [0, 1, 2]})
    assert sensitivity(layout, (0.0, 3.0)) == 5.0  # 1 + 3 + 1
    assert sensitivity(layout, (0.0, 3.0), norm=2) == pytest.approx(11**0.5)  # √(1 + 9 + 1)
    assert gaussian_sigma(1.0, 0.5, 1e-5) == pytest.approx(2 * (2 * np.log(1.25e5)) ** 0.5)


def test_each_statistic_says_how_much_noise_it_carries() -> None:
    layout = stats.Layout.from_params(
        {"stats": ["count", "sum", "mean", "histogram"], "column": "x", "bins": [0, 5, 10]}
    )
    sigma = stats.part_sigma(layout, {"epsilon": 0.5, "bounds": [0, 10]})
    assert sigma == pytest.approx(2**0.5 * (1 + 10 + 1) / 0.5)  # Laplace(Δ₁/ε) has variance 2b²
    count, total = 2000.0, 9000.0
    noise = stats.noise_std(layout, [count, total, 1200.0, 800.0], sigma)
    assert (noise["count"], noise["sum"], noise["histogram"]) == (sigma, sigma, sigma)
    # mean = sum / count: to first order σ·√(1 + mean²) / count
    assert noise["mean"] == pytest.approx(sigma * (1 + (total / count) ** 2) ** 0.5 / count, rel=1e-6)
    assert stats.part_sigma(layout, {"bounds": [0, 10]}) is None  # no ε, no noise


def test_the_noise_of_a_regression_follows_its_coefficients() -> None:
    layout = stats.Layout.from_params({"stats": ["linreg"], "features": ["a"], "target": "y"})
    rng = np.random.default_rng(3)
    a = rng.normal(size=400)
    design = np.column_stack([np.ones(400), a])
    totals = [*(design.T @ design).ravel(), *(design.T @ (2 * a + 1))]
    noise = stats.noise_std(layout, totals, 1.0)["linreg"]
    sampled = []
    for _ in range(400):  # the coefficients' spread when each part gets N(0, 1): the same order
        noisy = np.array(totals) + rng.normal(size=len(totals))
        sampled.append(stats.finish(layout, list(noisy))["linreg"]["coefficients"]["a"])
    assert noise["coefficients"]["a"] == pytest.approx(float(np.std(sampled)), rel=0.2)
    assert stats.gaussian_sigma(1.0, 0.5, 1e-5) == stats.part_sigma(
        stats.Layout.from_params({"stats": ["count"], "column": "x"}),
        {"epsilon": 0.5, "bounds": [0, 1], "mechanism": "gaussian", "delta": 1e-5},
    )
