"""Requests in two parts (sandbox/twopart.py), on every backend: the consumer's decryptions given
their key first and the ciphertexts later give what the one-part request gives; a cancelled
request ends its worker; a wrong or oversized second part is refused with its reason."""

from __future__ import annotations

import numpy as np
import pytest

from sandbox import warm
from sandbox.backends import create_backend
from sandbox.errors import LimitExceeded, WorkerFailed
from sandbox.interface import Backend, WorkerJob
from sandbox.limits import Limits
from sandbox.ops import he
from tests.sandbox.conftest import gone, idle_with


@pytest.fixture(scope="module")
def scored() -> tuple[bytes, list[bytes], np.ndarray]:
    """A secret context, encrypted scores of 5 000 rows, and the scores in plaintext."""
    secret, public = he.new_context()
    weights = [0.5, -2.0, 1.25]
    features = np.random.default_rng(3).uniform(0, 10, (5000, 3))
    batches = he.score(public, he.encrypt_weights(he.load_secret(secret), weights), features)
    return secret, batches, features @ np.array(weights)


def test_two_parts_give_what_one_part_gives(backend: Backend, scored) -> None:  # type: ignore[no-untyped-def]
    secret, batches, expected = scored
    whole = backend.run(WorkerJob("he.score.finish", {"found": 5000}, [secret, *batches]))
    pool = warm.WarmPool(backend, "he")
    try:
        started = pool.begin(WorkerJob("he.score.finish", {}, [secret]))
        # the worker reads the key, loads it, then reads the rest: the same steps whether the
        # rest is on the pipe already or comes later (the next test waits for it to be asked)
        parted = started.send({"found": 5000}, batches)
    finally:
        pool.close()
    assert parted.blobs == whole.blobs and parted.header == whole.header
    assert parted.header["scored"] == 5000
    assert (parted.backend, parted.isolation) == (whole.backend, whole.isolation)
    assert np.max(np.abs(np.frombuffer(parted.blobs[0], "<f8") - expected)) < 1e-3


def test_an_aggregate_total_is_decrypted_in_two_parts(backend: Backend) -> None:
    secret, public = he.new_context()
    params = {"stats": ["count", "sum"], "column": "x"}
    total = he.encrypt(he.load_public(public), [4.0, 10.0])
    pool = warm.WarmPool(backend, "he")
    try:
        result = pool.begin(WorkerJob("he.aggregate.finish", params, [secret])).send({}, [total])
    finally:
        pool.close()
    assert result.header["result"]["count"] == 4
    assert abs(result.header["result"]["sum"] - 10.0) < 1e-6


def test_a_prestarted_worker_takes_the_first_part_and_a_cancel_ends_it(prestartable: Backend, scored) -> None:  # type: ignore[no-untyped-def]
    secret, batches, _ = scored
    started = warm.prestart(prestartable, None, None, "he")
    pid = started.launched.proc.pid  # type: ignore[attr-defined]
    waiting = started.begin(WorkerJob("he.score.finish", {}, [secret]))
    assert started.launched is None  # taken by this job: never given to another
    assert idle_with(pid, "tenseal")  # it has the key and waits for the ciphertexts
    waiting.cancel()
    assert gone(pid)
    waiting.cancel()  # twice is fine
    with pytest.raises(ValueError, match=r"^he.score.finish: the second part was sent already$"):
        waiting.send({"found": 1}, batches)


def test_a_bad_second_part_is_refused_with_its_reason(prestartable: Backend, scored) -> None:  # type: ignore[no-untyped-def]
    secret, batches, _ = scored
    with pytest.raises(WorkerFailed) as refused:
        prestartable.begin(WorkerJob("he.score.finish", {}, [secret])).send({"found": "all"}, batches)  # type: ignore[attr-defined]
    assert (refused.value.kind, str(refused.value)) == (
        "request",
        "he.score.finish: found must be a whole number ≥ 0, got 'all'",
    )
    with pytest.raises(WorkerFailed) as refused:
        prestartable.begin(WorkerJob("he.sum", {}, [secret])).send({}, batches)  # type: ignore[attr-defined]
    assert (refused.value.kind, str(refused.value)) == (
        "request",
        "he.sum takes its request in one part, not 2",
    )


def test_a_second_part_over_the_input_limit_is_refused_and_ends_the_worker(scored) -> None:  # type: ignore[no-untyped-def]
    secret, batches, _ = scored
    started = warm.prestart(create_backend("process", Limits(wall_seconds=120, input_mb=1)), None, None, "he")
    pid = started.launched.proc.pid  # type: ignore[attr-defined]
    waiting = started.begin(WorkerJob("he.score.finish", {}, [secret]))
    with pytest.raises(LimitExceeded, match=r"^sandbox: job input \d+\.\d MiB exceeds 1 MiB$") as refused:
        waiting.send({"found": 5000}, [*batches, *batches])
    assert refused.value.limit == "input" and gone(pid)


def test_a_first_part_without_a_secret_key_is_refused_when_the_rest_is_sent(prestartable: Backend) -> None:
    _, public = he.new_context()
    waiting = prestartable.begin(WorkerJob("he.score.finish", {}, [public]))  # type: ignore[attr-defined]
    with pytest.raises(WorkerFailed) as refused:
        waiting.send({"found": 0}, [])
    assert (refused.value.kind, str(refused.value)) == (
        "request",
        "the consumer's context lost its secret key",
    )
