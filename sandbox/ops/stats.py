"""The statistics of ``he.aggregate`` as one vector of additive parts (pure, NumPy).

Every statistic is built from sums that add across providers: count, Σx, Σx², one count per
histogram bin, and XᵀX, Xᵀy over [1, features…] for a linear regression. A provider computes
its part over the rows it holds; the parts are added under encryption; the consumer turns the
totals into count, sum, mean, variance, histogram and regression coefficients
(:func:`finish`). With differential privacy, each provider clips values to the consumer's
declared bounds and adds Laplace noise scaled to the vector's L1 sensitivity over ε
(one row added or removed) before encrypting.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

STATISTICS = ("count", "sum", "mean", "variance", "histogram", "linreg")
MAX_BINS = 256
MAX_FEATURES = 32


class StatsError(ValueError):
    pass


@dataclass(frozen=True)
class Layout:
    """Which additive parts a request needs, in vector order."""

    stats: tuple[str, ...]
    column: str | None  # the column of count/sum/mean/variance/histogram
    bins: tuple[float, ...] = ()  # histogram edges, ascending
    features: tuple[str, ...] = ()  # linreg inputs
    target: str | None = None  # linreg output

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Layout:
        stats = params.get("stats")
        if not isinstance(stats, list) or not stats or not all(s in STATISTICS for s in stats):
            raise StatsError(f"stats: expected some of {list(STATISTICS)}, got {stats!r}")
        if len(set(stats)) != len(stats):
            raise StatsError("stats: a statistic is named twice")
        column = params.get("column")
        needs_column = set(stats) - {"linreg"}
        if needs_column and (not isinstance(column, str) or not column):
            raise StatsError(f"column: {sorted(needs_column)} need a column")
        bins = tuple(params.get("bins") or ())
        if "histogram" in stats:
            if not 2 <= len(bins) <= MAX_BINS + 1 or not all(isinstance(b, int | float) for b in bins):
                raise StatsError(f"bins: a histogram needs 2 to {MAX_BINS + 1} numeric edges")
            if any(b >= c for b, c in itertools.pairwise(bins)):
                raise StatsError("bins: edges must ascend strictly")
        features = tuple(params.get("features") or ())
        target = params.get("target")
        if "linreg" in stats:
            if not 1 <= len(features) <= MAX_FEATURES or not all(isinstance(f, str) and f for f in features):
                raise StatsError(f"features: linreg needs 1 to {MAX_FEATURES} feature columns")
            if not isinstance(target, str) or not target:
                raise StatsError("target: linreg needs a target column")
        return cls(
            tuple(stats), column if needs_column else None, tuple(float(b) for b in bins), features, target
        )

    @property
    def columns(self) -> set[str]:
        return {c for c in (self.column, self.target, *self.features) if c}

    def parts(self) -> list[str]:
        names: list[str] = []
        if set(self.stats) & {"count", "mean", "variance"}:
            names.append("count")
        if set(self.stats) & {"sum", "mean", "variance"}:
            names.append("sum")
        if "variance" in self.stats:
            names.append("sumsq")
        if "histogram" in self.stats:
            names += [f"bin{i}" for i in range(len(self.bins) - 1)]
        if "linreg" in self.stats:
            d = len(self.features) + 1
            names += [f"xtx{i}_{j}" for i in range(d) for j in range(d)] + [f"xty{i}" for i in range(d)]
        return names

    @property
    def size(self) -> int:
        return len(self.parts())


def _numbers(cells: np.ndarray, column: str) -> np.ndarray:
    try:
        return cells.astype(float)
    except ValueError as exc:
        # never the cell itself (NumPy's message quotes it): this text leaves the provider
        raise StatsError(f"column {column!r} holds values that are not numbers") from exc


def local_parts(
    layout: Layout,
    table: Mapping[str, np.ndarray],
    selected: np.ndarray,
    bounds: tuple[float, float] | None = None,
) -> np.ndarray:
    """This provider's additive parts over its ``selected`` rows (values clipped to ``bounds``)."""
    missing = sorted(layout.columns - set(table))
    if missing:
        raise StatsError(f"unknown columns {missing}; the data has {sorted(table)}")

    def values(column: str) -> np.ndarray:
        x = _numbers(table[column][selected], column)
        return np.clip(x, *bounds) if bounds else x

    out: list[float] = []
    names = layout.parts()
    x = values(layout.column) if layout.column else None
    if "count" in names:
        out.append(float(selected.sum()))
    if "sum" in names:
        assert x is not None
        out.append(float(x.sum()))
    if "sumsq" in names:
        assert x is not None
        out.append(float((x * x).sum()))
    if "histogram" in layout.stats:
        assert x is not None
        counts, _ = np.histogram(x, bins=np.array(layout.bins))
        out += [float(c) for c in counts]
    if "linreg" in layout.stats:
        design = np.column_stack([np.ones(int(selected.sum()))] + [values(f) for f in layout.features])
        y = values(layout.target or "")
        out += list((design.T @ design).ravel()) + list(design.T @ y)
    return np.array(out, dtype=float)


def sensitivity(layout: Layout, bounds: tuple[float, float], norm: int = 1) -> float:
    """How far (L1 or L2) the parts vector moves when one row is added or removed, with every
    value within ``bounds``."""
    big = max(abs(bounds[0]), abs(bounds[1]))
    names = layout.parts()
    changes: list[float] = []  # the most each part (or group of parts) can change by
    changes += [1.0] if "count" in names else []
    changes += [big] if "sum" in names else []
    changes += [big * big] if "sumsq" in names else []
    changes += [1.0] if "histogram" in layout.stats else []  # a row lands in one bin at most
    if "linreg" in layout.stats:
        d, one = len(layout.features) + 1, max(1.0, big)
        changes += [one * one] * (d * d) + [one * big] * d
    if norm == 1:
        return float(sum(changes))
    return float(np.sqrt(sum(c * c for c in changes)))


def add_laplace(parts: np.ndarray, scale: float) -> np.ndarray:
    """Laplace noise of ``scale`` on every part, from the operating system's randomness."""
    rng = np.random.default_rng(int.from_bytes(os.urandom(16), "big"))
    return parts + rng.laplace(0.0, scale, size=parts.shape)


def add_gaussian(parts: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian noise of standard deviation ``sigma`` on every part."""
    rng = np.random.default_rng(int.from_bytes(os.urandom(16), "big"))
    return parts + rng.normal(0.0, sigma, size=parts.shape)


def gaussian_sigma(l2: float, epsilon: float, delta: float) -> float:
    """The classic Gaussian mechanism's σ for (ε, δ)-differential privacy, ε < 1
    (Dwork & Roth, The Algorithmic Foundations of Differential Privacy, theorem A.1)."""
    return float(l2 * np.sqrt(2.0 * np.log(1.25 / delta)) / epsilon)


def part_sigma(layout: Layout, params: Mapping[str, Any]) -> float | None:
    """The standard deviation of the noise one provider adds to each part (None: no noise):
    Laplace of scale b has variance 2b²; the Gaussian mechanism's σ is its own."""
    epsilon, bounds = params.get("epsilon"), params.get("bounds")
    if epsilon is None or not bounds:
        return None
    clip = (float(bounds[0]), float(bounds[1]))
    if params.get("mechanism", "laplace") == "gaussian":
        return gaussian_sigma(sensitivity(layout, clip, norm=2), float(epsilon), float(params["delta"]))
    return float(np.sqrt(2.0) * sensitivity(layout, clip) / float(epsilon))


def noise_std(layout: Layout, totals: Sequence[float], sigma: float) -> dict[str, Any]:
    """Each statistic's noise standard deviation, shaped as :func:`finish`'s result, when every
    summed part carries independent noise of standard deviation ``sigma``: exactly ``sigma`` for
    count, sum and each histogram count (one part each); to first order for mean, variance and
    the regression's coefficients (the delta method: the gradient by central differences)."""
    base = np.array(totals, dtype=float)
    # the statistics with each part moved up and down a step, computed once for all of them
    # (a regression over 32 features has 1 122 parts: once per coefficient would be 33 times)
    shifted: list[tuple[dict[str, Any], dict[str, Any], float]] = []
    if set(layout.stats) & {"mean", "variance", "linreg"}:
        for i, value in enumerate(base):
            step = 1e-4 * max(1.0, abs(value))
            up, down = base.copy(), base.copy()
            up[i], down[i] = value + step, value - step
            shifted.append((finish(layout, list(up)), finish(layout, list(down)), step))

    def gradient_std(pick: Any) -> float | None:
        squares = 0.0
        for up_stats, down_stats, step in shifted:
            high, low = pick(up_stats), pick(down_stats)
            if high is None or low is None:
                return None
            squares += ((high - low) / (2 * step)) ** 2
        return float(sigma * np.sqrt(squares))

    out: dict[str, Any] = {}
    for name in ("count", "sum"):
        if name in layout.stats:
            out[name] = sigma
    for name in ("mean", "variance"):
        if name in layout.stats:
            out[name] = gradient_std(lambda stats, name=name: stats[name])
    if "histogram" in layout.stats:
        out["histogram"] = sigma  # each bin's count
    if "linreg" in layout.stats:

        def term(name: str | None) -> Any:
            def pick(stats: dict[str, Any]) -> float | None:
                fit = stats["linreg"]
                if fit is None:
                    return None
                return float(fit["intercept"] if name is None else fit["coefficients"][name])

            return pick

        intercept = gradient_std(term(None))
        out["linreg"] = None if intercept is None else {
            "intercept": intercept,
            "coefficients": {f: gradient_std(term(f)) for f in layout.features},
        }  # fmt: skip
    return out


def finish(layout: Layout, totals: Sequence[float]) -> dict[str, Any]:
    """The statistics from the summed parts."""
    parts = dict(zip(layout.parts(), totals, strict=True))
    out: dict[str, Any] = {}
    count = parts.get("count")
    if "count" in layout.stats:
        out["count"] = round(count or 0.0)
    if "sum" in layout.stats:
        out["sum"] = parts["sum"]
    if "mean" in layout.stats:
        out["mean"] = parts["sum"] / count if count else None
    if "variance" in layout.stats:
        # sample variance from the three sums; None below two rows
        out["variance"] = (
            (parts["sumsq"] - parts["sum"] ** 2 / count) / (count - 1) if count and count > 1 else None
        )
    if "histogram" in layout.stats:
        out["histogram"] = {
            "edges": list(layout.bins),
            "counts": [round(parts[f"bin{i}"]) for i in range(len(layout.bins) - 1)],
        }
    if "linreg" in layout.stats:
        d = len(layout.features) + 1
        xtx = np.array([parts[f"xtx{i}_{j}"] for i in range(d) for j in range(d)]).reshape(d, d)
        xty = np.array([parts[f"xty{i}"] for i in range(d)])
        try:
            coefficients = np.linalg.solve(xtx, xty)
        except np.linalg.LinAlgError:
            out["linreg"] = None  # too few or collinear rows
        else:
            out["linreg"] = {
                "intercept": float(coefficients[0]),
                "coefficients": dict(zip(layout.features, map(float, coefficients[1:]), strict=True)),
            }
    return out
