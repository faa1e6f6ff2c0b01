"""The worker's homomorphic operations: each takes (header, blobs, limits) and returns (result
header, result blobs), as every worker operation does (see ``sandbox.worker``). Key generation
and the consumer's own encryption run in the consumer's connector instead: they read nothing
from another party.

    he.aggregate.part    provider: its encrypted statistics parts over its own rows
    he.sum               space:    the sum of the providers' ciphertexts, without any key
    he.aggregate.finish  consumer: decrypt the total and compute the statistics
    he.score.part        provider: encrypted scores for the ids it holds
    he.score.finish      consumer: decrypt the scores (little-endian float64s)
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sandbox.errors import WorkerFailed
from sandbox.limits import Limits
from sandbox.ops import csvkeys, he, stats, table, where

Blobs = list[bytes]
SCORE_DTYPE = "<f8"  # he.score.finish's answer: one little-endian float64 per score
Result = tuple[dict[str, Any], Blobs]
Rest = Callable[[dict[str, Any], Blobs], Result]  # a two-part operation's second step


def _params(header: dict[str, Any]) -> dict[str, Any]:
    params = header.get("params")
    if not isinstance(params, dict):
        raise WorkerFailed("request", "request header needs a params object")
    return params


def _blobs(blobs: Blobs, count: int, op: str) -> None:
    if len(blobs) != count:
        raise WorkerFailed("request", f"{op} takes {count} blobs, got {len(blobs)}")


def _guard(fn: Any, *args: Any) -> Any:
    """Turns the HE, statistics and filter errors into the worker's typed failures."""
    try:
        return fn(*args)
    except (he.HEError, stats.StatsError, where.WhereError) as exc:
        raise WorkerFailed("request", str(exc)) from exc


def aggregate_part(header: dict[str, Any], blobs: Blobs, limits: Limits) -> Result:
    params = _params(header)
    _blobs(blobs, 1, "he.aggregate.part")
    public = blobs[0]
    if he.fingerprint(public) != params.get("fingerprint"):
        raise WorkerFailed("request", "the context is not the one this job declared (fingerprint differs)")
    layout = _guard(stats.Layout.from_params, params)
    expression = _guard(where.parse, params["where"]) if params.get("where") else None
    needed = layout.columns | (where.columns(expression) if expression else set())
    dataset = Path(str(header.get("dataset")))
    data = table.read_numbers(dataset, needed) or table.read_columns(dataset, needed)
    rows = len(next(iter(data.values()))) if data else 0
    selected = _guard(where.mask, expression, data) if expression else np.ones(rows, dtype=bool)
    epsilon, bounds = params.get("epsilon"), params.get("bounds")
    clip = (float(bounds[0]), float(bounds[1])) if bounds else None
    parts = _guard(stats.local_parts, layout, data, selected, clip)
    if epsilon is not None:
        if clip is None or not (isinstance(epsilon, int | float) and epsilon > 0 and math.isfinite(epsilon)):
            raise WorkerFailed("request", "differential privacy needs epsilon > 0 and bounds [lower, upper]")
        if params.get("mechanism", "laplace") == "gaussian":
            delta = params.get("delta")
            if not isinstance(delta, float) or not 0 < delta <= 1e-3 or not epsilon < 1:
                raise WorkerFailed(
                    "request", "the Gaussian mechanism needs 0 < delta ≤ 0.001 and epsilon < 1"
                )
            sigma = stats.gaussian_sigma(stats.sensitivity(layout, clip, norm=2), float(epsilon), delta)
            parts = stats.add_gaussian(parts, sigma)
        else:
            parts = stats.add_laplace(parts, stats.sensitivity(layout, clip) / float(epsilon))
    context = _guard(he.load_public, public)
    return {"rows": int(selected.sum()), "parts": len(parts)}, [_guard(he.encrypt, context, parts.tolist())]


def add(header: dict[str, Any], blobs: Blobs, limits: Limits) -> Result:
    params = _params(header)
    if len(blobs) < 2:
        raise WorkerFailed("request", "he.sum takes the public context and at least one ciphertext")
    if he.fingerprint(blobs[0]) != params.get("fingerprint"):
        raise WorkerFailed("request", "the context is not the one this aggregation was opened with")
    size = params.get("size")
    if not isinstance(size, int) or not 0 < size <= he.SLOTS:
        raise WorkerFailed("request", f"size: expected 1 to {he.SLOTS}")
    return {"added": len(blobs) - 1}, [_guard(he.add_all, blobs[0], blobs[1:], size)]


def aggregate_finish(header: dict[str, Any], blobs: Blobs, limits: Limits) -> Result:
    _blobs(blobs, 2, "he.aggregate.finish")
    return aggregate_keyed(header, blobs[:1], limits)({}, blobs[1:])


def aggregate_keyed(header: dict[str, Any], blobs: Blobs, limits: Limits) -> Rest:
    """he.aggregate.finish's first part: the statistics' layout and the secret context."""
    layout = _guard(stats.Layout.from_params, _params(header))
    _blobs(blobs, 1, "he.aggregate.finish's first part")
    context = _guard(he.load_secret, blobs[0])

    sigma = stats.part_sigma(layout, _params(header))  # one provider's noise on each part

    def rest(params: dict[str, Any], total: Blobs) -> Result:
        _blobs(total, 1, "he.aggregate.finish's second part")
        totals = _guard(he.decrypt, context, total[0], layout.size)
        found: dict[str, Any] = {"result": stats.finish(layout, totals)}
        noisy = params.get("contributors")
        if sigma is not None and isinstance(noisy, int) and noisy > 0:
            # each contributor's noise is independent: their sum's deviation grows as √n
            found["noise_std"] = stats.noise_std(layout, totals, sigma * noisy**0.5)
        return found, []

    return rest


def score_part(header: dict[str, Any], blobs: Blobs, limits: Limits) -> Result:
    params = _params(header)
    features, id_column = params.get("features"), params.get("id_column")
    if not isinstance(features, list) or not features or not isinstance(id_column, str):
        raise WorkerFailed("request", "he.score.part needs features (a list) and id_column")
    if len(blobs) != 2 + len(features):
        raise WorkerFailed("request", f"he.score.part takes 2 + {len(features)} blobs, got {len(blobs)}")
    public, ids_blob, weights = blobs[0], blobs[1], blobs[2:]
    if he.fingerprint(public) != params.get("fingerprint"):
        raise WorkerFailed("request", "the context is not the one this job declared (fingerprint differs)")
    try:
        ids = json.loads(ids_blob)
    except ValueError as exc:
        raise WorkerFailed("request", f"the ids are not a JSON list: {exc}") from exc
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise WorkerFailed("request", "the ids must be a JSON list of strings")
    path = Path(str(header.get("dataset")))
    keys = table.read_text(path, id_column)
    row_of = {key: i for i, key in enumerate(keys)}
    found = [row_of.get(csvkeys.normalise_key(i)) for i in ids]
    rows = [r for r in found if r is not None]
    # the features through NumPy's C reader; through the csv module (whose errors name the
    # column) when a cell is not a number or the two readers disagree on the rows
    numbers = table.read_numbers(path, set(features))
    if numbers is not None and all(len(column) == len(keys) for column in numbers.values()):
        matrix = (
            np.column_stack([numbers[f][rows] for f in features]) if rows else np.zeros((0, len(features)))
        )
    else:
        cells = table.read_columns(path, set(features))
        matrix = (
            np.column_stack([_numbers(cells[f][rows], f) for f in features])
            if rows
            else np.zeros((0, len(features)))
        )
    noise, flood = _noise(params, features)
    rng = np.random.default_rng(secrets.randbits(128))  # fresh, unpredictable noise per job
    if rows and noise.any():
        matrix = matrix + rng.standard_normal(matrix.shape) * noise  # x + N(0, σⱼ²) per column
    batches = _guard(he.score, public, weights, matrix, flood, rng) if rows else []
    mask = json.dumps([r is not None for r in found]).encode()
    return {"found": len(rows), "batches": len(batches)}, [mask, *batches]


def _noise(params: dict[str, Any], features: list[str]) -> tuple[np.ndarray, float]:
    """(σ per feature, flooding σ) as the provider's connector set them."""
    noise, flood = params.get("noise", {}), params.get("flood", 0.0)
    if not isinstance(noise, dict) or not all(
        isinstance(noise.get(f, 0.0), int | float) and noise.get(f, 0.0) >= 0 for f in features
    ):
        raise WorkerFailed("request", "he.score.part: noise must map features to σ ≥ 0")
    if isinstance(flood, bool) or not isinstance(flood, int | float) or flood < 0:
        raise WorkerFailed("request", f"he.score.part: flood must be a σ ≥ 0, got {flood!r}")
    return np.array([float(noise.get(f, 0.0)) for f in features]), float(flood)


def score_finish(header: dict[str, Any], blobs: Blobs, limits: Limits) -> Result:
    if not blobs:
        raise WorkerFailed("request", "he.score.finish takes the secret context first")
    return score_keyed(header, blobs[:1], limits)(_params(header), blobs[1:])


def score_keyed(header: dict[str, Any], blobs: Blobs, limits: Limits) -> Rest:
    """he.score.finish's first part: the secret context; the second: found and the batches."""
    _blobs(blobs, 1, "he.score.finish's first part")
    context = _guard(he.load_secret, blobs[0])

    def rest(params: dict[str, Any], batches: Blobs) -> Result:
        found = params.get("found")
        if not isinstance(found, int) or isinstance(found, bool) or found < 0:
            raise WorkerFailed("request", f"he.score.finish: found must be a whole number ≥ 0, got {found!r}")
        scores = _guard(he.decrypt_scores, context, batches, found) if found else []
        # little-endian float64s, not JSON: 10 000 scores cost 5 ms to print and parse as text
        return {"scored": len(scores)}, [np.asarray(scores, dtype=SCORE_DTYPE).tobytes()]

    return rest


def _numbers(cells: np.ndarray, column: str) -> np.ndarray:
    try:
        return cells.astype(float)
    except ValueError as exc:
        raise WorkerFailed("request", f"feature column {column!r} holds values that are not numbers") from exc


FIRST_PARTS: dict[str, Callable[[dict[str, Any], Blobs, Limits], Rest]] = {
    "he.score.finish": score_keyed,
    "he.aggregate.finish": aggregate_keyed,
}

OPERATIONS = {
    "he.aggregate.part": aggregate_part,
    "he.sum": add,
    "he.aggregate.finish": aggregate_finish,
    "he.score.part": score_part,
    "he.score.finish": score_finish,
}
