"""The worker that runs inside a sandbox: ``python -I -m sandbox.worker --limits JSON``.

It applies its resource limits before reading anything, reads one framed request on stdin
(or, for the operations in :data:`TWO_PART`, a first part and later a second: see
``sandbox.twopart``), runs the named vetted operation and writes one framed result on stdout.
Progress goes to
stderr as ``progress <fraction>`` lines. Errors are framed results too:
``{"error": {"kind": ..., "message": ...}}`` with exit status 2.
"""

from __future__ import annotations

import argparse
import errno
import importlib.util
import json
import os
import resource
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox import framing
from sandbox.errors import FrameError, WorkerFailed
from sandbox.limits import Limits, MiB
from sandbox.ops import csvkeys, dp, psi, psi_engines, script

Blobs = list[bytes]


def apply_limits(limits: Limits) -> None:
    """Hard rlimits for this process and every child it forks."""
    pairs = {
        resource.RLIMIT_AS: limits.memory_mb * MiB,
        resource.RLIMIT_CPU: limits.cpu_seconds,  # SIGXCPU at the limit, SIGKILL a second later
        resource.RLIMIT_FSIZE: limits.file_size_mb * MiB,
        resource.RLIMIT_NOFILE: limits.open_files,
        resource.RLIMIT_NPROC: limits.processes,
        resource.RLIMIT_CORE: 0,
    }
    for which, value in pairs.items():
        hard = value + 1 if which == resource.RLIMIT_CPU else value
        resource.setrlimit(which, (value, hard))


def _progress(fraction: float) -> None:
    sys.stderr.write(f"progress {fraction:.4f}\n")
    sys.stderr.flush()


def _param(params: dict[str, Any], name: str, kind: type) -> Any:
    value = params.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise WorkerFailed("request", f"parameter {name}: expected {kind.__name__}, got {value!r}")
    return value


def op_psi_provider(header: dict[str, Any], blobs: Blobs, limits: Limits) -> tuple[dict[str, Any], Blobs]:
    """Provider side of one PSI run over its dataset: setup and response in one step."""
    if len(blobs) != 1:
        raise WorkerFailed("request", f"psi.provider takes 1 blob (the request), got {len(blobs)}")
    dataset = Path(_param(header, "dataset", str))
    items = csvkeys.read_keys(dataset, _param(header["params"], "column", str))
    engine = psi_engines.of(header["params"])
    try:
        request = engine.parse_request(blobs[0])
    except Exception as exc:  # protobuf's DecodeError has no stable import path
        raise WorkerFailed("request", f"the PSI request is not a valid message: {exc}") from exc
    expected = _param(header["params"], "consumer_set_size", int)
    if len(request.encrypted_elements) != expected:
        raise WorkerFailed(
            "request",
            f"the PSI request has {len(request.encrypted_elements)} items, the job declared {expected}",
        )
    reveal = _param(header["params"], "reveal_intersection", bool)
    if bool(request.reveal_intersection) != reveal:
        raise WorkerFailed("request", "the PSI request's reveal_intersection does not match the operation")
    try:
        setup, response = engine.server_respond(items, request, psi.worker_count(limits.workers), _progress)
    except ValueError as exc:  # a point of small order: a forged request (sandbox.ops.psi_x25519)
        raise WorkerFailed("request", f"the PSI request cannot be used: {exc}") from exc
    return {"provider_set_size": len(items), "consumer_set_size": expected}, [setup, response]


def op_psi_client_request(
    header: dict[str, Any], blobs: Blobs, limits: Limits
) -> tuple[dict[str, Any], Blobs]:
    """Consumer side, step 1: read the input's key column and encrypt it under a new key."""
    path = Path(_param(header, "dataset", str))
    items = csvkeys.read_keys(path, _param(header["params"], "column", str))
    if not items:
        raise WorkerFailed("input", f"{path.name}: the key column has no non-empty values")
    engine = psi_engines.of(header["params"])
    key = engine.new_key()
    reveal = _param(header["params"], "reveal_intersection", bool)
    request = engine.client_request(items, key, reveal, psi.worker_count(limits.workers), _progress)
    items_blob = json.dumps(items, ensure_ascii=False).encode() if reveal else b""
    return {"consumer_set_size": len(items), "key": key.hex()}, [request, items_blob]


def op_psi_client_result(
    header: dict[str, Any], blobs: Blobs, limits: Limits
) -> tuple[dict[str, Any], Blobs]:
    """Consumer side, step 2: decrypt the provider's response and compare with its setup."""
    if len(blobs) != 2:
        raise WorkerFailed("request", f"psi.client_result takes 2 blobs, got {len(blobs)}")
    params = header["params"]
    reveal = _param(params, "reveal_intersection", bool)
    expected = _param(params, "expected", int)
    engine = psi_engines.of(params)
    try:
        result = engine.client_result(
            bytes.fromhex(_param(params, "key", str)),
            reveal,
            blobs[0],
            blobs[1],
            psi.worker_count(limits.workers),
            _progress,
            expected,
        )
    except (RuntimeError, ValueError) as exc:
        raise WorkerFailed("protocol", f"the provider's PSI answer cannot be used: {exc}") from exc
    if reveal:
        return {"indices": len(result)}, [json.dumps(result).encode()]
    return {"cardinality": result}, []


def op_psi_server_setup(header: dict[str, Any], blobs: Blobs, limits: Limits) -> tuple[dict[str, Any], Blobs]:
    """Consumer side of a provider-counted cardinality, step 1: its set, encrypted under a new
    key as the setup the provider compares with (the provider is the client of this run)."""
    path = Path(_param(header, "dataset", str))
    items = csvkeys.read_keys(path, _param(header["params"], "column", str))
    if not items:
        raise WorkerFailed("input", f"{path.name}: the key column has no non-empty values")
    engine = psi_engines.of(header["params"])
    key = engine.new_server_key()
    setup = engine.server_setup(items, key, psi.worker_count(limits.workers), _progress)
    return {"consumer_set_size": len(items), "key": key.hex()}, [setup]


def op_psi_server_process(
    header: dict[str, Any], blobs: Blobs, limits: Limits
) -> tuple[dict[str, Any], Blobs]:
    """Consumer side, step 2: the provider's request encrypted under the consumer's key too,
    sorted as one so that the provider cannot tell which of its items matched."""
    if len(blobs) != 1:
        raise WorkerFailed("request", f"psi.server_process takes 1 blob (the request), got {len(blobs)}")
    engine = psi_engines.of(header["params"])
    try:
        request = engine.parse_request(blobs[0])
    except Exception as exc:  # protobuf's DecodeError has no stable import path
        raise WorkerFailed("protocol", f"the provider's PSI request is not a valid message: {exc}") from exc
    expected = _param(header["params"], "expected", int)
    if len(request.encrypted_elements) != expected or request.reveal_intersection:
        raise WorkerFailed(
            "protocol",
            f"the provider's PSI request has {len(request.encrypted_elements)} items "
            f"(it declared {expected}) and must not ask to reveal the intersection",
        )
    key = bytes.fromhex(_param(header["params"], "key", str))
    try:
        processed = engine.server_process(request, key, psi.worker_count(limits.workers), _progress)
    except ValueError as exc:  # a point of small order: a forged request (sandbox.ops.psi_x25519)
        raise WorkerFailed("protocol", f"the provider's PSI request cannot be used: {exc}") from exc
    return {"processed": expected}, [processed]


def op_psi_noisy_count(header: dict[str, Any], blobs: Blobs, limits: Limits) -> tuple[dict[str, Any], Blobs]:
    """Provider side of a provider-counted cardinality, step 2: the intersection size of its
    request against the consumer's setup, released only with discrete Laplace noise of ε — the
    exact count never leaves this sandbox."""
    if len(blobs) != 2:
        raise WorkerFailed("request", f"psi.noisy_count takes 2 blobs (setup, response), got {len(blobs)}")
    params = header["params"]
    epsilon = _param(params, "epsilon", float)
    try:
        count = psi_engines.of(params).client_result(
            bytes.fromhex(_param(params, "key", str)),
            False,
            blobs[0],
            blobs[1],
            psi.worker_count(limits.workers),
            _progress,
            _param(params, "expected", int),
            _param(params, "setup_size", int),
        )
    except (RuntimeError, ValueError) as exc:
        raise WorkerFailed("request", f"the consumer's PSI messages cannot be used: {exc}") from exc
    assert isinstance(count, int)
    return {"cardinality": dp.noisy_count(count, epsilon)}, []


def op_script_run(header: dict[str, Any], blobs: Blobs, limits: Limits) -> tuple[dict[str, Any], Blobs]:
    params = header["params"]
    dataset = header.get("dataset")
    return script.output(_param(params, "source", str), _param(params, "args", dict), dataset), []


OPERATIONS: dict[str, Callable[[dict[str, Any], Blobs, Limits], tuple[dict[str, Any], Blobs]]] = {
    "psi.provider": op_psi_provider,
    "psi.client_request": op_psi_client_request,
    "psi.client_result": op_psi_client_result,
    "psi.server_setup": op_psi_server_setup,
    "psi.server_process": op_psi_server_process,
    "psi.noisy_count": op_psi_noisy_count,
    "script.run": op_script_run,
}
HE_OPERATIONS = ("he.aggregate.part", "he.sum", "he.aggregate.finish", "he.score.part", "he.score.finish")


def _homomorphic(name: str) -> Callable[[dict[str, Any], Blobs, Limits], tuple[dict[str, Any], Blobs]]:
    """The HE operations load TenSEAL (0.1 s) only when a job asks for one."""

    def run(header: dict[str, Any], blobs: Blobs, limits: Limits) -> tuple[dict[str, Any], Blobs]:
        from sandbox.ops import he_jobs

        return he_jobs.OPERATIONS[name](header, blobs, limits)

    return run


OPERATIONS.update({name: _homomorphic(name) for name in HE_OPERATIONS})
SUM_OPERATIONS = ("psi.sum.provider", "psi.sum.client", "psi.sum.reveal")


def _summing(name: str) -> Callable[[dict[str, Any], Blobs, Limits], tuple[dict[str, Any], Blobs]]:
    """psi.sum's steps load TenSEAL only when a job asks for one, as the HE operations do."""

    def run(header: dict[str, Any], blobs: Blobs, limits: Limits) -> tuple[dict[str, Any], Blobs]:
        from sandbox.ops import psi_sum_jobs

        return psi_sum_jobs.operations(_progress)[name](header, blobs, limits)

    return run


OPERATIONS.update({name: _summing(name) for name in SUM_OPERATIONS})

# Operations that may take their request in two parts (``sandbox.twopart``): given the first,
# each prepares (the consumer's decryptions load the secret key) and returns what finishes the
# job from the second part's params and blobs.
Rest = Callable[[dict[str, Any], Blobs], tuple[dict[str, Any], Blobs]]
TWO_PART = ("he.score.finish", "he.aggregate.finish")


def _first_part(name: str, header: dict[str, Any], blobs: Blobs, limits: Limits) -> Rest:
    from sandbox.ops import he_jobs

    return he_jobs.FIRST_PARTS[name](header, blobs, limits)


def _import_he() -> None:
    from sandbox.ops import he, he_jobs  # noqa: F401  (NumPy and TenSEAL)

    he.warm_up()


PREWARM: dict[str, Callable[[], None]] = {"he": _import_he}


def load_plugin(path: str) -> None:
    """Add the operations of a module the node's operator named (its ``OPERATIONS``: name →
    step, as here) to the worker's. A plugin adds operations; it replaces none of the built-in
    ones. It is code the operator chose to run, never something a job request names."""
    spec = importlib.util.spec_from_file_location(f"tds_plugin_{Path(path).stem}", path)
    if spec is None or spec.loader is None:
        raise WorkerFailed("request", f"plugin {path}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    added = getattr(module, "OPERATIONS", None)
    if not isinstance(added, dict) or not added:
        raise WorkerFailed("request", f"plugin {path}: expected OPERATIONS, a dict of name → step")
    taken = sorted(set(added) & set(OPERATIONS))
    if taken:
        raise WorkerFailed("request", f"plugin {path}: {taken} are built-in operations already")
    OPERATIONS.update(added)


def _fail(kind: str, message: str) -> int:
    sys.stdout.buffer.write(framing.encode({"error": {"kind": kind, "message": message}}))
    sys.stdout.buffer.flush()
    return 2


def _reap_as_init() -> int | None:
    """In a new PID namespace the worker is process 1, which the kernel shields from the very
    signals its limits rely on (SIGXCPU, SIGXFSZ). So process 1 only forks the real worker and
    reaps, then reports how the worker ended as ``128 + signal``, as a shell would."""
    child = os.fork()
    if child == 0:
        return None  # the worker proper
    while True:
        pid, status = os.waitpid(-1, 0)
        if pid == child:
            return 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def main(argv: list[str] | None = None) -> int:
    if os.getpid() == 1 and (code := _reap_as_init()) is not None:
        return code
    parser = argparse.ArgumentParser(prog="sandbox.worker")
    parser.add_argument("--limits", required=True)
    parser.add_argument("--prewarm", choices=PREWARM, help="import what these operations need first")
    parser.add_argument("--plugin", action="append", default=[], help="a module of further operations")
    args = parser.parse_args(argv)
    limits = Limits.from_json(json.loads(args.limits))
    apply_limits(limits)
    try:
        for plugin in args.plugin:
            load_plugin(plugin)
    except WorkerFailed as exc:
        return _fail(exc.kind, str(exc))
    if args.prewarm:
        PREWARM[args.prewarm]()  # while the request is still on its way (sandbox.process.Prestarted)
    try:
        header, blobs = framing.read(sys.stdin.buffer, limits.input_mb * MiB)
        op = OPERATIONS.get(header.get("op", ""))
        if op is None:
            return _fail("request", f"unknown operation {header.get('op')!r}; expected {sorted(OPERATIONS)}")
        if not isinstance(header.get("params"), dict):
            return _fail("request", "request header needs a params object")
        parts = header.get("parts", 1)
        if parts == 1:
            result, out_blobs = op(header, blobs, limits)
        elif parts == 2 and header["op"] in TWO_PART:
            rest = _first_part(header["op"], header, blobs, limits)
            later, blobs = framing.read(sys.stdin.buffer, limits.input_mb * MiB)
            if not isinstance(later.get("params"), dict):
                return _fail("request", "the second part's header needs a params object")
            result, out_blobs = rest(later["params"], blobs)
        else:
            return _fail("request", f"{header['op']} takes its request in one part, not {parts!r}")
    except FrameError as exc:
        return _fail("request", str(exc))
    except WorkerFailed as exc:
        return _fail(exc.kind, str(exc))
    except MemoryError:
        return _fail("memory", f"memory limit {limits.memory_mb} MiB exceeded")
    except OSError as exc:
        if exc.errno == errno.EFBIG:  # Python ignores SIGXFSZ, so the write itself fails
            return _fail("file_size", f"file size limit {limits.file_size_mb} MiB exceeded")
        return _internal(exc)
    except Exception as exc:
        return _internal(exc)
    result["peak_rss_mb"] = round(max(psi.vm_hwm_mb(), psi.child_peak_mb()), 1)
    sys.stdout.buffer.write(framing.encode(result, out_blobs))
    sys.stdout.buffer.flush()
    return 0


def _internal(exc: BaseException) -> int:
    """An error the operation did not foresee: its type only. Library messages quote the data
    they choked on (NumPy's "could not convert string to float: 'Li Si'"), and what a worker
    says may leave the provider; the traceback stays on the host's side, in stderr."""
    traceback.print_exception(exc, file=sys.stderr)
    return _fail(
        "internal", f"the operation failed ({type(exc).__name__}); the provider's log has the details"
    )


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # The answer is written and flushed: skip the interpreter's teardown, which takes ≈ 15 ms
    # with NumPy and TenSEAL loaded and sits on every job's critical path.
    os._exit(code)
