"""The additive parts of he.aggregate: layout, refusals, finishing, sensitivity."""

import numpy as np
import pytest

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
