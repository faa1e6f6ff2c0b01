"""The X25519 PSI engine: commutative, one point per item and key, the same answers as the
openmined-psi engine on the same sets, and refusals of malformed or forged messages."""

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.errors import WorkerFailed
from sandbox.ops import psi, psi_engines
from sandbox.ops import psi_x25519 as x


def times(key: bytes, u: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(key).exchange(X25519PublicKey.from_public_bytes(u))


def run(engine, ours: list[str], theirs: list[str], reveal: bool, workers: int = 1):  # type: ignore[no-untyped-def]
    key = engine.new_key()
    request = engine.client_request(ours, key, reveal, workers)
    setup, response = engine.server_respond(theirs, engine.parse_request(request), workers)
    return engine.client_result(key, reveal, setup, response, workers, None, len(ours), len(theirs))


def test_encryption_commutes_and_gives_one_point_per_item_and_key() -> None:
    a, b = x.new_key(), x.new_key()
    for item in ("13800000001", "郑州", ""):
        u = x.hash_to_u(item)
        assert times(a, times(b, u)) == times(b, times(a, u))
    items = [f"139{i:08d}" for i in range(2000)]
    request = x.parse_request(x.client_request(items, a, True, 2))
    assert len(set(request.encrypted_elements)) == 2000  # distinct items, distinct points
    again = x.parse_request(x.client_request(items, b, True, 2))
    assert not set(request.encrypted_elements) & set(again.encrypted_elements)  # another key, other points
    assert (
        request.encrypted_elements == x.parse_request(x.client_request(items, a, True, 1)).encrypted_elements
    )


@pytest.mark.parametrize("reveal", [False, True])
def test_the_same_answers_as_the_openmined_engine(reveal: bool) -> None:
    ours = [f"138{i:08d}" for i in range(0, 3000)]
    theirs = [f"138{i:08d}" for i in range(2000, 6000)] + ["郑州", "a,b"]
    assert run(x, ours, theirs, reveal, 2) == run(psi, ours, theirs, reveal, 2)
    assert run(x, ours, theirs, reveal) == (list(range(2000, 3000)) if reveal else 1000)


@settings(max_examples=25, deadline=None)
@given(st.sets(st.integers(0, 60), max_size=30), st.sets(st.integers(0, 60), max_size=30))
def test_cardinality_and_indices_are_exact(a: set[int], b: set[int]) -> None:
    ours, theirs = [str(i) for i in sorted(a)], [str(i) for i in sorted(b)]
    assert run(x, ours, theirs, False) == len(a & b)
    assert [ours[i] for i in run(x, ours, theirs, True)] == [str(i) for i in sorted(a & b)]  # in our order


def test_a_cardinality_response_is_sorted_and_an_intersection_keeps_the_order() -> None:
    items = [f"137{i:08d}" for i in range(500)]
    for reveal in (False, True):
        request = x.parse_request(x.client_request(items, x.new_key(), reveal, 1))
        _, response = x.server_respond(items, request, 1)
        elements = x.parse_request(response).encrypted_elements
        assert (elements == sorted(elements)) is not reveal  # 500 random points are never sorted by chance


def test_malformed_forged_and_mismatched_messages_are_refused() -> None:
    key = x.new_key()
    request = x.client_request(["1", "2"], key, False, 1)
    setup, response = x.server_respond(["2", "3"], x.parse_request(request), 1)
    with pytest.raises(ValueError, match="response has 2 items, the request had 3"):
        x.client_result(key, False, setup, response, 1, None, 3)
    with pytest.raises(ValueError, match="setup has 2 items, 5 were declared"):
        x.client_result(key, False, setup, response, 1, None, 2, 5)
    with pytest.raises(ValueError, match="the response's reveal flag is not the request's"):
        x.client_result(key, True, setup, response, 1, None, 2)
    openmined = psi.client_request(["1"], psi.new_key(), False, 1)
    with pytest.raises(ValueError, match="not an X25519 PSI message"):
        x.parse_request(openmined)
    with pytest.raises(ValueError, match="not a multiple of 32"):
        x.parse_request(request[:-1])
    # a point of small order (u = 0) would give an all-zero shared value: refused, not computed
    with pytest.raises(ValueError, match="a message holds a point of small order"):
        x.server_process(x.parse_request(x.encode([bytes(32)], False)), key, 1)


def test_a_request_names_its_engine_or_means_the_first_one() -> None:
    assert psi_engines.of({}) is psi and psi_engines.of({"engine": "ecdh-x25519"}) is x
    with pytest.raises(
        WorkerFailed, match=r"engine: expected one of \['ecdh-p256', 'ecdh-x25519'\], got 'rsa'"
    ):
        psi_engines.of({"engine": "rsa"})
