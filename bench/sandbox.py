"""Sandbox benchmark: start-up cost per backend, and a PSI job's sandboxed work per backend.

(a) start-up: the median wall time of --startup-runs empty jobs (``script.run`` of ``pass``)
    on each backend: process start, isolation set-up, the worker's imports, teardown;
(b) psi: the three sandboxed steps of a psi.cardinality job (consumer request, provider
    response, consumer result) on --n × --n phone numbers, median of --repeat runs, on each
    backend and, as the baseline, the same worker operations called in this process with no
    sandbox at all.

overhead_pct = 3 launches × start-up / the backend's psi time (the issue's target: ≤ 5 % on
bwrap and docker); delta_pct = the backend's psi time against the in-process baseline, which
includes the noise of a shared machine. --json prints one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Run as a script, this file's folder comes first on sys.path, and this file would shadow the
# sandbox package it measures; take the folder out before importing it.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from sandbox import worker  # noqa: E402
from sandbox.backends import create_backend, probe  # noqa: E402
from sandbox.interface import WorkerJob  # noqa: E402
from sandbox.limits import Limits  # noqa: E402
from tds.local import docker_engine  # noqa: E402

BACKENDS = ("process", "bwrap", "docker")
LAUNCHES_PER_JOB = 3


def psi_steps(run: Any, consumer: Path, provider: Path) -> int:
    """The job's three sandboxed steps through ``run(op, params, blobs, dataset)``."""
    h1, b1 = run("psi.client_request", {"column": "phone", "reveal_intersection": False}, [], consumer)
    params = {"column": "phone", "reveal_intersection": False, "consumer_set_size": h1["consumer_set_size"]}
    _, b2 = run("psi.provider", params, [b1[0]], provider)
    params = {"key": h1["key"], "reveal_intersection": False, "expected": h1["consumer_set_size"]}
    h3, _ = run("psi.client_result", params, b2, None)
    return int(h3["cardinality"])


def in_process(limits: Limits) -> Any:
    def run(op: str, params: dict[str, Any], blobs: list[bytes], dataset: Path | None) -> Any:
        header = {"op": op, "params": params, "dataset": str(dataset) if dataset else None}
        with contextlib.redirect_stderr(io.StringIO()):  # the worker's progress lines
            return worker.OPERATIONS[op](header, blobs, limits)

    return run


def sandboxed(name: str, limits: Limits) -> Any:
    backend = create_backend(name, limits)

    def run(op: str, params: dict[str, Any], blobs: list[bytes], dataset: Path | None) -> Any:
        result = backend.run(WorkerJob(op, params, blobs, str(dataset) if dataset else None))
        return result.header, result.blobs

    return run


def timed(fn: Any, repeat: int) -> tuple[float, Any]:
    times, value = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100_000, help="phone numbers per party")
    parser.add_argument("--repeat", type=int, default=3, help="PSI runs per backend (median)")
    parser.add_argument("--startup-runs", type=int, default=20, help="empty jobs per backend (median)")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated backends")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes, one run: checks the path, not speed"
    )
    args = parser.parse_args()
    if args.smoke:
        args.n, args.repeat, args.startup_runs = 500, 1, 2
    from tds.demo import phone_sets, write_csv

    limits = Limits()
    say = (lambda *a: print(*a, file=sys.stderr)) if args.json else print  # stdout is the JSON
    report: dict[str, Any] = {"n": args.n, "repeat": args.repeat, "startup_ms": {}, "psi_s": {},
                              "overhead_pct": {}, "delta_pct": {}, "unavailable": {}}  # fmt: skip
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        if "docker" in args.backends.split(","):
            try:  # the running engine, or a private one as the test session starts
                stack.enter_context(docker_engine())
            except RuntimeError as exc:
                say(f"docker: {exc}")
        a, b = phone_sets(args.n, args.n // 2, seed=11)
        consumer, provider = Path(tmp, "consumer.csv"), Path(tmp, "provider.csv")
        write_csv(consumer, "phone", a)
        write_csv(provider, "phone", b)
        base_s, expected = timed(lambda: psi_steps(in_process(limits), consumer, provider), args.repeat)
        report["psi_s"]["in-process"] = round(base_s, 3)
        say(f"in-process baseline: psi {base_s:.2f} s (cardinality {expected})")
        for name in args.backends.split(","):
            works, why = probe(name)
            if not works:
                report["unavailable"][name] = why
                say(f"{name}: not available ({why})")
                continue
            backend = create_backend(name, limits)
            empty = WorkerJob("script.run", {"source": "pass", "args": {}})
            startup_s, _ = timed(lambda b=backend, e=empty: b.run(e), args.startup_runs)  # type: ignore[misc]
            psi_s, got = timed(
                lambda n=name: psi_steps(sandboxed(n, limits), consumer, provider), args.repeat
            )
            if got != expected:
                sys.exit(f"{name}: cardinality {got}, expected {expected}")
            report["startup_ms"][name] = round(startup_s * 1000, 1)
            report["psi_s"][name] = round(psi_s, 3)
            report["overhead_pct"][name] = round(100 * LAUNCHES_PER_JOB * startup_s / psi_s, 2)
            report["delta_pct"][name] = round(100 * (psi_s - base_s) / base_s, 2)
            say(
                f"{name}: start-up {startup_s * 1000:.0f} ms (median of {args.startup_runs}); "
                f"psi {psi_s:.2f} s vs {base_s:.2f} s in-process; overhead "
                f"{report['overhead_pct'][name]:.2f} % (target ≤ 5 %), "
                f"delta {report['delta_pct'][name]:+.1f} %"
            )
    if args.json:
        print(json.dumps(report))


if __name__ == "__main__":
    main()
