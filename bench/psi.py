"""PSI benchmark: one in-process openmined-psi run vs full psi.cardinality jobs, and the
X25519 engine vs openmined-psi's P-256 through the whole path.

(a) raw: server setup, client request, server response, client result, in one process, one
    core, the same RAW data structure the job uses (GCS and Bloom filter cost the same here:
    the elliptic-curve operations dominate);
(b) job: a psi.cardinality job through two connectors and the space, real processes on
    loopback, timed from submission to the consumer's result (cluster start-up excluded), on
    the connectors' default engine, X25519 (sandbox/ops/psi_x25519.py);
(c) counted: the same job counted by the provider and released with noise of ε
    (connectors/psi_counted.py: the roles swapped, two round trips), timed the same way;
(d) p256: the job of (b) from a consumer whose connector runs the openmined-psi engine
    (``psi_engine: ecdh-p256``): the ratio b/d is the new engine's speed-up, end to end;
(e) sum: a psi.sum job over the same sets, summing the provider's ``value`` column (two
    decimals) over the intersection (sandbox/ops/psi_sum.py: X25519 plus TenSEAL BFV, two round
    trips), checked against the sum in plain Python; e/b is ``sum_vs_cardinality`` (target ≤ 2);
(f) intersection: a psi.intersection job over the same sets (the consumer learns A ∩ B);
(g) SecretFlow as a SecretFlow user runs it (bench/secretflow_psi.py: spu 0.9.5's psi_execute,
    two processes on loopback over brpc, under the separate environment ``make .venv-spu``
    builds): ECDH on FourQ, the baseline of (b) (``cardinality_vs_fourq`` = b/g), and RR22 (OPRF
    from VOLE), the baseline of (f) (``intersection_vs_rr22`` = f/g). Timed as the slower side's
    psi_execute call: interpreter start and link set-up are left out, in SecretFlow's favour,
    while the TDS times include every sandbox's start.

All on the same generated sets (default 100 000 × 100 000, 50 % overlap); each repeated
--repeat times, medians reported. Prints the figures, their ratio b/a, and the peak resident
memory of every process involved; --json prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

# Run as a script, this folder comes first on sys.path, where bench/sandbox.py would shadow the
# sandbox package; take the folder out before importing anything of the project.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from tds.local import cluster, negotiate, publish_dataset  # noqa: E402

RAW = r"""
import json, resource, sys, time
import private_set_intersection.python as psi
path_a, path_b = sys.argv[1], sys.argv[2]
def keys(p):
    lines = open(p, encoding="utf-8").read().split("\n")[1:]
    return list(dict.fromkeys(l.split(",")[0].strip() for l in lines if l.strip()))
a, b = keys(path_a), keys(path_b)
t = time.perf_counter()
server = psi.server.CreateWithNewKey(False)
client = psi.client.CreateWithNewKey(False)
setup = server.CreateSetupMessage(1e-9, len(a), b, psi.DataStructure.RAW)
request = client.CreateRequest(a)
response = server.ProcessRequest(request)
size = client.GetIntersectionSize(setup, response)
elapsed = time.perf_counter() - t
print(json.dumps({"s": elapsed, "cardinality": size,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_sets(root: Path, n: int, overlap: int) -> tuple[Path, Path]:
    from tds.demo import phone_sets, write_csv

    a, b = phone_sets(n, overlap, seed=11)
    write_csv(root / "consumer.csv", "phone", a)
    write_csv(root / "provider.csv", "phone,value", [f"{p},{value(p)}" for p in b])
    return root / "consumer.csv", root / "provider.csv"


def value(phone: str) -> str:
    """The provider's value of a row: a decimal with two places, from its key."""
    return f"{int(phone[-5:]) % 3000}.{phone[-2:]}"


def expected_sum(a: Path, b: Path) -> Decimal:
    ours = set(a.read_text(encoding="utf-8").split("\n")[1:]) - {""}
    rows = (line.split(",") for line in b.read_text(encoding="utf-8").split("\n")[1:] if line)
    return sum((Decimal(v) for phone, v in rows if phone in ours), Decimal(0))


def raw_run(a: Path, b: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", RAW, str(a), str(b)], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


SECRETFLOW_PYTHON = Path(__file__).resolve().parents[1] / ".venv-spu" / "bin" / "python"


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def secretflow_run(python: Path, protocol: str, a: Path, b: Path, root: Path) -> dict[str, Any]:
    """One SecretFlow PSI run: the consumer's set as rank 0 (the receiver), the provider's as
    rank 1, each its own process; spu's temporary, meta and trace files stay under ``root``."""
    work = root / f"secretflow-{protocol.lower()}"
    work.mkdir(exist_ok=True)
    ports = ",".join(map(str, free_ports(2)))
    env = {"PATH": "/usr/bin:/bin", "TMPDIR": str(work), "HOME": str(work)}
    procs = []
    for rank, path in enumerate((a, b)):
        local = work / f"input{rank}.csv"  # spu writes a .meta file beside its input
        local.write_bytes(path.read_bytes())
        command = [str(python), str(Path(__file__).with_name("secretflow_psi.py")), "--rank", str(rank),
                   "--protocol", protocol, "--ports", ports, "--input", str(local),
                   "--output", str(work / f"output{rank}.csv")]  # fmt: skip
        # files, not pipes: spu logs every batch, and a full pipe would stall its party mid-run
        with open(work / f"out{rank}", "wb") as out, open(work / f"err{rank}", "wb") as err:
            procs.append(subprocess.Popen(command, cwd=work, env=env, stdout=out, stderr=err))
    sides = []
    try:
        for rank, proc in enumerate(procs):
            if proc.wait(timeout=7200) != 0:
                log = (work / f"err{rank}").read_bytes()[-2000:]
                raise RuntimeError(f"SecretFlow {protocol} rank {rank} exited {proc.returncode}: {log!r}")
            # spu logs to stdout too, also after the report: take the line that is the report
            lines = (work / f"out{rank}").read_bytes().splitlines()
            sides.append(json.loads(next(line for line in lines if line.startswith(b'{"s"'))))
    finally:
        for proc in procs:  # a failed or interrupted run leaves no party waiting on its link
            proc.kill()
            proc.wait()
    return {
        "s": max(side["s"] for side in sides),
        "cardinality": sides[0]["intersection"],
        "peak_rss_mb": max(side["peak_rss_mb"] for side in sides),
    }


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


OPERATIONS = ("psi.cardinality", "psi.intersection", "psi.sum")
EPSILON = 8.0  # large, so that the noisy count can be checked against the overlap (|noise| ≤ 5)


def timed_job(
    consumer: Any, agreement: str, a: Path, operation: str = "psi.cardinality", **extra: Any
) -> dict[str, Any]:
    t = time.perf_counter()
    body = {"agreement": agreement, "operation": operation, "input": str(a), "column": "phone", **extra}
    job = consumer.wait_for_job(consumer.post("/api/jobs", body)["id"], 7200)
    elapsed = time.perf_counter() - t
    if job["status"] != "succeeded":
        raise RuntimeError(f"job {job['status']}: {job['error']}")
    return {"s": elapsed, **job["summary"], **job["metrics"]}


def job_runs(
    root: Path, a: Path, b: Path, repeat: int
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, float]]:
    """Every kind of job, ``repeat`` times each, and the peak memory of every process."""
    kinds: dict[str, list[dict[str, Any]]] = {
        "job": [],
        "counted": [],
        "p256": [],
        "sum": [],
        "intersection": [],
    }
    runs = kinds["job"]
    with cluster(root / "nodes") as live:
        live.add_connector("bank", "Bank", 31)
        live.add_connector("telecom", "Telecom", 32)
        live.add_connector("oldbank", "Old Bank", 33, roles="consumer", options={"psi_engine": "ecdh-p256"})
        bank, telecom = live.connectors["bank"].api(), live.connectors["telecom"].api()
        old = live.connectors["oldbank"].api()
        try:
            # a paid offer: the space refuses a free one unless its purpose is limited to
            # public-interest use (the pricing rules); the fee changes nothing in what is timed
            summed = [{"leftOperand": "column", "operator": "isPartOf", "rightOperand": ["value"]}]
            offer = {
                "policy": {
                    "permission": [
                        {"action": "psi.cardinality"},
                        {"action": "psi.intersection"},
                        {"action": "psi.sum", "constraint": summed},
                    ]
                },
                "price": {"model": "per_job", "amount_fen": 100},
                "auto_approve": True,
            }
            entry = publish_dataset(telecom, "bench", b, offer)
            agreement = negotiate(bank, entry["offers"][0]["id"], list(OPERATIONS))["agreement_id"]
            old_agreement = negotiate(old, entry["offers"][0]["id"], ["psi.cardinality"])["agreement_id"]
            for _ in range(repeat):  # alternated, so that every kind meets the same machine load
                runs.append(timed_job(bank, agreement, a))
                kinds["p256"].append(timed_job(old, old_agreement, a))
                kinds["counted"].append(timed_job(bank, agreement, a, epsilon=EPSILON))
                kinds["sum"].append(timed_job(bank, agreement, a, "psi.sum", sum="value"))
                kinds["intersection"].append(timed_job(bank, agreement, a, "psi.intersection"))
            peaks = {
                "space": vm_hwm_mb(live.space.proc.pid),  # type: ignore[union-attr]
                "bank_connector": vm_hwm_mb(live.connectors["bank"].proc.pid),  # type: ignore[union-attr]
                "telecom_connector": vm_hwm_mb(live.connectors["telecom"].proc.pid),  # type: ignore[union-attr]
                **{
                    f"{side}_sandbox{'' if kind == 'job' else '_' + kind}": max(
                        r[f"{side}_sandbox_peak_rss_mb"] for r in kinds[kind]
                    )
                    for kind in ("job", "sum")
                    for side in ("consumer", "provider")
                },
            }
        finally:
            bank.close()
            telecom.close()
            old.close()
    return kinds, peaks


def median(runs: list[dict[str, Any]]) -> float:
    return statistics.median(r["s"] for r in runs)


def check(runs: dict[str, list[dict[str, Any]]], overlap: int, total: Decimal) -> None:
    """Every run found what the generated sets hold: speed is only reported for right answers."""
    assert all(r["engine"] == "ecdh-x25519" for r in runs["job"]), runs["job"]
    assert all(r["engine"] == "ecdh-p256" for r in runs["p256"]), runs["p256"]
    for kind in ("raw", "job", "p256", "sum", "fourq", "rr22"):
        for run in runs[kind]:
            assert run["cardinality"] == overlap, (kind, run)
    for run in runs["intersection"]:
        assert run["intersection_size"] == overlap, run
    for run in runs["sum"]:
        assert (run["count"], Decimal(run["sum"])) == (overlap, total), (run, total)
    for run in runs["counted"]:
        assert abs(run["cardinality"] - overlap) <= 5, run


def summarise(runs: dict[str, list[dict[str, Any]]], peaks: dict[str, float]) -> dict[str, Any]:
    """Medians, the targets' ratios and every run's time: bench/psi.py's --json."""
    s = {kind: median(got) if got else None for kind, got in runs.items()}
    job_s = s["job"]
    report: dict[str, Any] = {
        "raw_s": s["raw"],
        "job_s": job_s,
        "ratio": job_s / s["raw"] if s["raw"] else None,
        "counted_s": s["counted"],
        "counted_over_job": s["counted"] / job_s,
        "p256_job_s": s["p256"],
        "x25519_over_p256": job_s / s["p256"],
        "sum_s": s["sum"],
        "sum_vs_cardinality": s["sum"] / job_s,
        "intersection_s": s["intersection"],
        "secretflow_fourq_s": s["fourq"],
        "cardinality_vs_fourq": job_s / s["fourq"],
        "secretflow_rr22_s": s["rr22"],
        "intersection_vs_rr22": s["intersection"] / s["rr22"],
    }
    report = {k: round(v, 3) if isinstance(v, float) else v for k, v in report.items()}
    report["job_phases_s"] = {
        k: round(statistics.median(r[k] for r in runs["job"]), 3)
        for k in ("encrypt_s", "provider_s", "decrypt_s")
    }
    report["runs_s"] = {kind: [round(r["s"], 3) for r in got] for kind, got in runs.items()}
    report["peak_rss_mb"] = {
        **{
            kind: round(max(r["peak_rss_mb"] for r in runs[kind]), 1)
            for kind in ("raw", "fourq", "rr22")
            if runs[kind]
        },
        **{k: round(v, 1) for k, v in peaks.items()},
    }
    return report


LINES = (
    ("raw", "(a) raw openmined-psi, one process", "baseline of b/a"),
    ("job", "(b) psi.cardinality job, X25519", "b/a {ratio}, target ≤ 0.65"),
    ("counted", "(c) provider-counted, ε = 8", "c/b {counted_over_job}"),
    ("p256", "(d) the job of (b) on P-256", "b/d {x25519_over_p256}"),
    ("sum", "(e) psi.sum job", "e/b {sum_vs_cardinality}, target ≤ 2.0"),
    ("intersection", "(f) psi.intersection job", ""),
    ("fourq", "(g) SecretFlow ECDH-FourQ", "b/g {cardinality_vs_fourq}, target ≤ 1.0"),
    ("rr22", "(g) SecretFlow RR22", "f/g {intersection_vs_rr22}, target ≤ 1.5"),
)


def show(report: dict[str, Any]) -> None:
    print(f"PSI, {report['n']} × {report['n']}, {report['overlap']} in common, median of {report['repeat']}")
    for kind, label, ratio in LINES:
        runs = report["runs_s"][kind]
        if runs:
            print(f"  {label:<38} {statistics.median(runs):8.2f} s   runs {runs}   {ratio.format(**report)}")
    print(f"      phases of (b) (median): {report['job_phases_s']}")
    print("  peak RSS (MiB): " + ", ".join(f"{k} {v}" for k, v in report["peak_rss_mb"].items()))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100_000, help="items per side")
    parser.add_argument("--overlap", type=float, default=0.5, help="share of items in common")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; medians are reported")
    parser.add_argument(
        "--skip-raw", action="store_true", help="no openmined-psi run (a), e.g. for 1 000 000"
    )
    parser.add_argument(
        "--secretflow-python",
        type=Path,
        default=SECRETFLOW_PYTHON,
        help="the interpreter of the environment with spu 0.9.5 (default: the one `make .venv-spu` builds)",
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes, one run: checks the path, not speed"
    )
    args = parser.parse_args()
    if not args.secretflow_python.is_file():
        parser.error(
            f"no SecretFlow interpreter at {args.secretflow_python}: build it with "
            "`make .venv-spu/.installed` (spu 0.9.5 from PyPI), or name one with --secretflow-python"
        )
    if args.smoke:
        args.n, args.repeat = 2_000, 1
    overlap = int(args.n * args.overlap)
    with tempfile.TemporaryDirectory(prefix="tds-bench-") as tmp:
        root = Path(tmp)
        a, b = make_sets(root, args.n, overlap)
        runs: dict[str, list[dict[str, Any]]] = {"raw": [], "fourq": [], "rr22": []}
        for _ in range(args.repeat):
            if not args.skip_raw:
                runs["raw"].append(raw_run(a, b))
            runs["fourq"].append(secretflow_run(args.secretflow_python, "ECDH", a, b, root))
            runs["rr22"].append(secretflow_run(args.secretflow_python, "RR22", a, b, root))
        jobs, peaks = job_runs(root, a, b, args.repeat)
        runs.update(jobs)
        check(runs, overlap, expected_sum(a, b))
    report = {"n": args.n, "overlap": overlap, "repeat": args.repeat, **summarise(runs, peaks)}
    if args.json:
        print(json.dumps(report))
    else:
        show(report)


if __name__ == "__main__":
    main()
