"""The sandbox steps of psi.sum (the protocol: sandbox.ops.psi_sum), loaded with TenSEAL only
when a job runs one (sandbox.worker)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox import framing
from sandbox.errors import FrameError, WorkerFailed
from sandbox.limits import Limits
from sandbox.ops import psi, psi_sum, psi_x25519, sum_rows

Blobs = list[bytes]
Step = Callable[[dict[str, Any], Blobs, Limits], tuple[dict[str, Any], Blobs]]


def _param(params: dict[str, Any], name: str, kind: type) -> Any:
    value = params.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise WorkerFailed("request", f"parameter {name}: expected {kind.__name__}, got {value!r}")
    return value


def _message(blob: bytes, what: str, size: int, kind: str) -> psi_x25519.Message:
    try:
        message = psi_x25519.parse_request(blob)
    except ValueError as exc:
        raise WorkerFailed(kind, f"the {what} is not a valid PSI message: {exc}") from exc
    if message.reveal_intersection:
        raise WorkerFailed(kind, f"the {what} asks to reveal the intersection; psi.sum reveals a sum")
    if len(message.encrypted_elements) != size:
        raise WorkerFailed(
            kind, f"the {what} has {len(message.encrypted_elements)} items, {size} were declared"
        )
    return message


def _progress_of(progress: Callable[[float], None], start: float, span: float) -> Callable[[float], None]:
    return lambda fraction: progress(start + span * fraction)


def provider(progress: Callable[[float], None]) -> Step:
    def step(header: dict[str, Any], blobs: Blobs, limits: Limits) -> tuple[dict[str, Any], Blobs]:
        """Step 2: the answer to the request, the provider's set and its encrypted columns.
        Blobs out: setup, response, public context, secret context, the ciphertexts packed as
        one blob (sandbox.framing.pack)."""
        params = header["params"]
        if len(blobs) != 1:
            raise WorkerFailed("request", f"psi.sum.provider takes 1 blob (the request), got {len(blobs)}")
        expected = _param(params, "consumer_set_size", int)
        request = _message(blobs[0], "PSI request", expected, "request")
        by = params.get("by")
        rows = sum_rows.read(
            Path(_param(header, "dataset", str)),
            _param(params, "column", str),
            _param(params, "sum", str),
            by if isinstance(by, str) else None,
        )
        psi_sum.check_range(rows.values)
        workers = psi.worker_count(limits.workers)
        key = psi_x25519.new_key()
        mine = psi_x25519.encrypt_items(rows.keys, key, workers, _progress_of(progress, 0.0, 0.4))
        order = sorted(range(len(mine)), key=mine.__getitem__)  # sorted: the order tells nothing
        try:
            response = psi_x25519.server_process(request, key, workers, _progress_of(progress, 0.4, 0.4))
        except ValueError as exc:
            raise WorkerFailed("request", f"the PSI request cannot be used: {exc}") from exc
        keys = psi_sum.new_keys()
        labels = len(rows.labels)
        ciphertexts = psi_sum.encrypt_columns(
            keys, [rows.values[i] for i in order], [rows.categories[i] for i in order], labels
        )
        progress(1.0)
        result = {
            "provider_set_size": len(rows.keys),
            "consumer_set_size": expected,
            "labels": rows.labels,
            "category_sizes": rows.category_sizes(),
            "places": rows.places,
        }
        setup = psi_x25519.encode([mine[i] for i in order], False)
        return result, [setup, response, keys.public, keys.secret, framing.pack(ciphertexts)]

    return step


def client(progress: Callable[[float], None]) -> Step:
    def step(header: dict[str, Any], blobs: Blobs, limits: Limits) -> tuple[dict[str, Any], Blobs]:
        """Step 3 at the consumer: which of the provider's rows match, and per category their
        masked, flooded sum. Blobs in: setup, response, public context, packed ciphertexts."""
        params = header["params"]
        if len(blobs) != 4:
            raise WorkerFailed(
                "protocol",
                f"the provider's psi.sum answer has {len(blobs)} blobs, expected 4: its set, the answer, "
                "its public context and its ciphertexts",
            )
        setup = _message(blobs[0], "provider's set", _param(params, "provider_set_size", int), "protocol")
        response = _message(blobs[1], "provider's answer", _param(params, "expected", int), "protocol")
        labels = _param(params, "categories", int)
        if not 1 <= labels <= sum_rows.MAX_CATEGORIES:
            raise WorkerFailed(
                "protocol",
                f"the provider declared {labels} categories, expected 1 to {sum_rows.MAX_CATEGORIES}",
            )
        key = bytes.fromhex(_param(params, "key", str))
        try:
            theirs = psi_x25519.encrypt_points(
                setup.encrypted_elements,
                key,
                psi.worker_count(limits.workers),
                _progress_of(progress, 0.0, 0.8),
            )
        except ValueError as exc:
            raise WorkerFailed("protocol", f"the provider's set cannot be used: {exc}") from exc
        answered = set(response.encrypted_elements)
        matched = [element in answered for element in theirs]
        try:  # one ciphertext per category per ROWS rows: masked_sums checks the exact number
            ciphertexts = framing.unpack(blobs[3], labels * (len(matched) // psi_sum.ROWS + 1))
        except FrameError as exc:
            raise WorkerFailed("protocol", f"the provider's ciphertexts: {exc}") from exc
        sums, masks = psi_sum.masked_sums(blobs[2], ciphertexts, matched, labels)
        progress(1.0)
        return {"cardinality": sum(matched), "masks": masks}, sums

    return step


def reveal(header: dict[str, Any], blobs: Blobs, limits: Limits) -> tuple[dict[str, Any], Blobs]:
    """Step 4 at the provider: the counts and masked sums. Blobs in: the secret context, then
    the consumer's ciphertexts."""
    if not blobs:
        raise WorkerFailed(
            "request", "psi.sum.reveal takes the secret context and the consumer's ciphertexts"
        )
    revealed = psi_sum.reveal(blobs[0], blobs[1:], _param(header["params"], "categories", int))
    return {"counts": revealed.counts, "masked": revealed.masked}, []


def operations(progress: Callable[[float], None]) -> dict[str, Step]:
    return {
        "psi.sum.provider": provider(progress),
        "psi.sum.client": client(progress),
        "psi.sum.reveal": reveal,
    }
