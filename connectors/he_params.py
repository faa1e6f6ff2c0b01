"""The parameters of homomorphic jobs, checked the same way by the consumer (before a job is
created) and by each provider (before the guard): pure functions of the request."""

from __future__ import annotations

from typing import Any

from connectors.errors import Refused


def aggregate_params(body: dict[str, Any]) -> dict[str, Any]:
    """The aggregate request's parameters, validated; what travels to every provider."""
    from sandbox.ops import stats, where  # NumPy: only for homomorphic jobs

    params: dict[str, Any] = {
        k: body[k] for k in ("stats", "column", "bins", "features", "target") if body.get(k)
    }
    try:
        layout = stats.Layout.from_params(params)
        if body.get("where"):
            where.parse(str(body["where"]))
            params["where"] = str(body["where"])
    except (stats.StatsError, where.WhereError) as exc:
        raise Refused(str(exc)) from exc
    epsilon, bounds = body.get("epsilon"), body.get("bounds")
    if epsilon is not None:
        if isinstance(epsilon, bool) or not isinstance(epsilon, int | float) or not 0 < epsilon <= 100:
            raise Refused(f"epsilon: expected a number in (0, 100], got {epsilon!r}")
        if (
            not isinstance(bounds, list)
            or len(bounds) != 2
            or not all(isinstance(b, int | float) and not isinstance(b, bool) for b in bounds)
            or not bounds[0] < bounds[1]
        ):
            raise Refused(
                "bounds: differential privacy needs [lower, upper] with lower < upper to clip values"
            )
        params |= {"epsilon": float(epsilon), "bounds": [float(bounds[0]), float(bounds[1])]}
        mechanism = body.get("mechanism", "laplace")
        if mechanism not in ("laplace", "gaussian"):
            raise Refused(f"mechanism: expected laplace or gaussian, got {mechanism!r}")
        if mechanism == "gaussian":
            delta = body.get("delta")
            if (
                isinstance(delta, bool)
                or not isinstance(delta, int | float)
                or not 0 < delta <= 1e-3
                or epsilon >= 1
            ):
                raise Refused("the Gaussian mechanism needs delta in (0, 0.001] and epsilon < 1")
            params |= {"mechanism": "gaussian", "delta": float(delta)}
    params["size"] = layout.size
    return params


def read_columns_used(params: dict[str, Any]) -> list[str]:
    from sandbox.ops import stats, where

    used = stats.Layout.from_params(params).columns
    if params.get("where"):
        used |= where.columns(where.parse(params["where"]))
    return sorted(used)
