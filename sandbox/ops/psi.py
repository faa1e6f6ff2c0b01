"""Private set intersection with openmined-psi (ECDH-PSI), spread over every core.

One protocol run per job: the consumer (client) encrypts its items with one client key, the
provider (server) encrypts its own items and re-encrypts the client's with one server key.
Large sets are cut into chunks that worker processes encrypt in parallel under those same
keys; the chunks are merged back into the single Request / Response / ServerSetup of an
unsplit run. In cardinality mode the merged response is sorted as one (as ProcessRequest sorts
an unsplit one), so the client learns the total count and nothing per chunk.

The server setup uses the RAW data structure (sorted encrypted server items) because it can
be built chunk by chunk; a Bloom filter or GCS cannot be merged. It is larger on the wire
(~33 bytes per item) and reveals nothing a Bloom filter does not: the encrypted items are
unlinkable without the server key, and the catalog already publishes the row count.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from typing import Any

import private_set_intersection.python as psi

Progress = Callable[[float], None]

# Filled in before the pool forks, so children inherit it instead of receiving it pickled.
_SHARED: dict[str, Any] = {}


def worker_count(requested: int = 0) -> int:
    return requested if requested > 0 else max(1, len(os.sched_getaffinity(0)))


def chunks(items: Sequence[Any], parts: int) -> list[Sequence[Any]]:
    size = max(1, -(-len(items) // parts))
    return [items[i : i + size] for i in range(0, len(items), size)] or [items[:0]]


def _client_encrypt(chunk: Sequence[str]) -> list[bytes]:
    client = psi.client.CreateFromKey(_SHARED["key"], _SHARED["reveal"])
    return list(client.CreateRequest(list(chunk)).encrypted_elements)


def _server_setup(chunk: Sequence[str]) -> list[bytes]:
    server = psi.server.CreateFromKey(_SHARED["key"], _SHARED["reveal"])
    setup = server.CreateSetupMessage(0.0, 1, list(chunk), psi.DataStructure.RAW)
    return list(setup.raw.encrypted_elements)


def _server_process(chunk: Sequence[bytes]) -> list[bytes]:
    server = psi.server.CreateFromKey(_SHARED["key"], _SHARED["reveal"])
    request = psi.Request()
    request.reveal_intersection = _SHARED["reveal"]
    request.encrypted_elements.extend(chunk)
    return list(server.ProcessRequest(request).encrypted_elements)


def _client_count(chunk: Sequence[bytes]) -> int:
    client = psi.client.CreateFromKey(_SHARED["key"], False)
    response = psi.Response()
    response.encrypted_elements.extend(chunk)
    return int(client.GetIntersectionSize(_SHARED["setup"], response))


def _client_indices(args: tuple[int, Sequence[bytes]]) -> list[int]:
    offset, chunk = args
    client = psi.client.CreateFromKey(_SHARED["key"], True)
    response = psi.Response()
    response.encrypted_elements.extend(chunk)
    return [offset + i for i in client.GetIntersection(_SHARED["setup"], response)]


def vm_hwm_mb() -> float:
    """This process's peak resident memory (VmHWM, MiB). Unlike ru_maxrss it is per address
    space, so it does not include the parent's memory inherited across fork and exec."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


_CHILD_PEAK_MB = [0.0]  # the largest VmHWM any pool process reported


def child_peak_mb() -> float:
    return _CHILD_PEAK_MB[0]


def _measured(task: tuple[Callable[[Any], Any], Any]) -> tuple[Any, float]:
    func, arg = task
    return func(arg), vm_hwm_mb()


def parallel_map(
    func: Callable[[Any], Any],
    tasks: Sequence[Any],
    workers: int,
    progress: Progress | None,
) -> list[Any]:
    if workers <= 1 or len(tasks) <= 1:
        out = []
        for i, task in enumerate(tasks, 1):
            out.append(func(task))
            if progress:
                progress(i / len(tasks))
        return out
    # fork: the worker is single-threaded, and children inherit _SHARED without pickling
    with multiprocessing.get_context("fork").Pool(processes=min(workers, len(tasks))) as pool:
        out = []
        for i, (result, peak) in enumerate(pool.imap(_measured, [(func, t) for t in tasks]), 1):
            out.append(result)
            _CHILD_PEAK_MB[0] = max(_CHILD_PEAK_MB[0], peak)
            if progress:
                progress(i / len(tasks))
        # Let the idle workers exit on their own: leaving the block calls terminate(), which
        # SIGTERMs them, and a worker whose SIGTERM handler runs Python (coverage's does) can be
        # caught waiting on the task queue's lock and never exit, hanging the join.
        pool.close()
        pool.join()
        return out


def _flatten(parts: list[list[bytes]]) -> list[bytes]:
    return [element for part in parts for element in part]


def new_key() -> bytes:
    return bytes(psi.client.CreateWithNewKey(False).GetPrivateKeyBytes())


def client_request(
    items: Sequence[str], key: bytes, reveal: bool, workers: int, progress: Progress | None = None
) -> bytes:
    """The serialized psi.Request for ``items`` under the client ``key``."""
    _SHARED.update(key=key, reveal=reveal)
    tasks = chunks(items, workers * 4)
    request = psi.Request()
    request.reveal_intersection = reveal
    request.encrypted_elements.extend(_flatten(parallel_map(_client_encrypt, tasks, workers, progress)))
    return bytes(request.SerializeToString())


def parse_request(data: bytes) -> psi.Request:
    request = psi.Request()
    request.ParseFromString(data)
    return request


def server_setup(items: Sequence[str], key: bytes, workers: int, progress: Progress | None = None) -> bytes:
    """The serialized RAW ServerSetup of ``items`` under the server ``key`` (sorted: the order of
    the items is not revealed)."""
    _SHARED.update(key=key, reveal=False)
    try:
        setup = psi.ServerSetup()
        encrypted = parallel_map(_server_setup, chunks(items, workers * 4), workers, progress)
        setup.raw.encrypted_elements.extend(sorted(_flatten(encrypted)))
        return bytes(setup.SerializeToString())
    finally:
        _SHARED.clear()


def server_process(request: psi.Request, key: bytes, workers: int, progress: Progress | None = None) -> bytes:
    """The serialized Response to ``request`` under the server ``key``: in cardinality mode
    sorted as one, so the requester cannot tell which of its items matched."""
    reveal = bool(request.reveal_intersection)
    _SHARED.update(key=key, reveal=reveal)
    try:
        tasks = chunks(list(request.encrypted_elements), workers * 4)
        encrypted = _flatten(parallel_map(_server_process, tasks, workers, progress))
        if not reveal:
            encrypted.sort()  # one shuffle over the whole response, as an unsplit run does
        response = psi.Response()
        response.encrypted_elements.extend(encrypted)
        return bytes(response.SerializeToString())
    finally:
        _SHARED.clear()


def new_server_key() -> bytes:
    return bytes(psi.server.CreateWithNewKey(False).GetPrivateKeyBytes())


def server_respond(
    items: Sequence[str],
    request: psi.Request,
    workers: int,
    progress: Progress | None = None,
) -> tuple[bytes, bytes]:
    """(serialized ServerSetup, serialized Response) for one protocol run with a fresh key."""
    return respond(server_setup, server_process, new_server_key(), items, request, workers, progress)


def respond(
    setup_with: Callable[..., bytes],
    process_with: Callable[..., bytes],
    key: bytes,
    items: Sequence[str],
    request: Any,
    workers: int,
    progress: Progress | None,
) -> tuple[bytes, bytes]:
    """An engine's (setup, response) under one server ``key``, its progress split between the
    two by their sizes (either engine: sandbox.ops.psi_engines)."""
    setups = max(1, len(items))
    share = setups / (setups + max(1, len(request.encrypted_elements)))

    def phase(start: float, span: float) -> Progress | None:
        if progress is None:
            return None
        return lambda fraction: progress(start + fraction * span)

    setup = setup_with(items, key, workers, phase(0.0, share))
    return setup, process_with(request, key, workers, phase(share, 1.0 - share))


def client_result(
    key: bytes,
    reveal: bool,
    setup_data: bytes,
    response_data: bytes,
    workers: int,
    progress: Progress | None = None,
    expected: int | None = None,
    setup_size: int | None = None,
) -> int | list[int]:
    """The intersection size (cardinality) or the client's indices in the intersection.

    ``expected`` is the size of the request the client sent: a response of another size is
    refused (a provider answering for other items, or dropping some, is caught here);
    ``setup_size``, the number of items the server declared, likewise for its setup."""
    setup, response = psi.ServerSetup(), psi.Response()
    try:
        setup.ParseFromString(setup_data)
        response.ParseFromString(response_data)
    except Exception as exc:  # protobuf's DecodeError has no stable import path
        raise ValueError("the setup or the response is not a valid PSI message") from exc
    if setup_size is not None and len(setup.raw.encrypted_elements) != setup_size:
        raise ValueError(f"setup has {len(setup.raw.encrypted_elements)} items, {setup_size} were declared")
    elements = list(response.encrypted_elements)
    if expected is not None and len(elements) != expected:
        raise ValueError(f"response has {len(elements)} items, the request had {expected}")
    _SHARED.update(key=key, setup=setup)
    # few chunks: each one scans the whole RAW setup
    pieces = chunks(elements, workers)
    try:
        if reveal:
            offsets, start = [], 0
            for chunk in pieces:
                offsets.append((start, chunk))
                start += len(chunk)
            parts = parallel_map(_client_indices, offsets, workers, progress)
            return sorted(i for part in parts for i in part)
        return sum(parallel_map(_client_count, pieces, workers, progress))
    finally:
        _SHARED.clear()
