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
    (``psi_engine: ecdh-p256``): the ratio b/d is the new engine's speed-up, end to end.

Both on the same generated sets (default 100 000 × 100 000, 50 % overlap); each repeated
--repeat times, medians reported. Prints the figures, their ratio b/a, and the peak resident
memory of every process involved; --json prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
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
    return list(dict.fromkeys(l.strip() for l in lines if l.strip()))
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
    write_csv(root / "provider.csv", "phone", b)
    return root / "consumer.csv", root / "provider.csv"


def raw_run(a: Path, b: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", RAW, str(a), str(b)], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


EPSILON = 8.0  # large, so that the noisy count can be checked against the overlap (|noise| ≤ 5)


def timed_job(consumer: Any, agreement: str, a: Path, **extra: Any) -> dict[str, Any]:
    t = time.perf_counter()
    body = {
        "agreement": agreement,
        "operation": "psi.cardinality",
        "input": str(a),
        "column": "phone",
        **extra,
    }
    job = consumer.wait_for_job(consumer.post("/api/jobs", body)["id"], 7200)
    elapsed = time.perf_counter() - t
    if job["status"] != "succeeded":
        raise RuntimeError(f"job {job['status']}: {job['error']}")
    return {"s": elapsed, "cardinality": job["summary"]["cardinality"], **job["metrics"]}


def job_runs(
    root: Path, a: Path, b: Path, repeat: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]], dict[str, float]]:
    runs: list[dict[str, Any]] = []
    counted: list[dict[str, Any]] = []
    p256: list[dict[str, Any]] = []
    with cluster(root / "nodes") as live:
        live.add_connector("bank", "Bank", 31)
        live.add_connector("telecom", "Telecom", 32)
        live.add_connector("oldbank", "Old Bank", 33, roles="consumer", options={"psi_engine": "ecdh-p256"})
        bank, telecom = live.connectors["bank"].api(), live.connectors["telecom"].api()
        old = live.connectors["oldbank"].api()
        try:
            # a paid offer: the space refuses a free one unless its purpose is limited to
            # public-interest use (the pricing rules); the fee changes nothing in what is timed
            offer = {
                "policy": {"permission": [{"action": "psi.cardinality"}]},
                "price": {"model": "per_job", "amount_fen": 100},
                "auto_approve": True,
            }
            entry = publish_dataset(telecom, "bench", b, offer)
            agreement = negotiate(bank, entry["offers"][0]["id"], ["psi.cardinality"])["agreement_id"]
            old_agreement = negotiate(old, entry["offers"][0]["id"], ["psi.cardinality"])["agreement_id"]
            for _ in range(repeat):  # alternated, so that every kind meets the same machine load
                runs.append(timed_job(bank, agreement, a))
                p256.append(timed_job(old, old_agreement, a))
                counted.append(timed_job(bank, agreement, a, epsilon=EPSILON))
            peaks = {
                "space": vm_hwm_mb(live.space.proc.pid),  # type: ignore[union-attr]
                "bank_connector": vm_hwm_mb(live.connectors["bank"].proc.pid),  # type: ignore[union-attr]
                "telecom_connector": vm_hwm_mb(live.connectors["telecom"].proc.pid),  # type: ignore[union-attr]
                "consumer_sandbox": max(r["consumer_sandbox_peak_rss_mb"] for r in runs),
                "provider_sandbox": max(r["provider_sandbox_peak_rss_mb"] for r in runs),
            }
        finally:
            bank.close()
            telecom.close()
            old.close()
    return runs, counted, p256, peaks


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100_000, help="items per side")
    parser.add_argument("--overlap", type=float, default=0.5, help="share of items in common")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; medians are reported")
    parser.add_argument("--skip-raw", action="store_true", help="only the job (e.g. for 1 000 000)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes, one run: checks the path, not speed"
    )
    args = parser.parse_args()
    if args.smoke:
        args.n, args.repeat = 2_000, 1
    overlap = int(args.n * args.overlap)
    with tempfile.TemporaryDirectory(prefix="tds-bench-") as tmp:
        root = Path(tmp)
        a, b = make_sets(root, args.n, overlap)
        raws = [] if args.skip_raw else [raw_run(a, b) for _ in range(args.repeat)]
        jobs, counted, p256, peaks = job_runs(root, a, b, args.repeat)
    assert all(r["engine"] == "ecdh-x25519" for r in jobs) and all(r["engine"] == "ecdh-p256" for r in p256)
    for run in [*raws, *jobs, *p256]:
        assert run["cardinality"] == overlap, run
    for run in counted:
        assert abs(run["cardinality"] - overlap) <= 5, run
    counted_s = statistics.median(r["s"] for r in counted)
    job_s = statistics.median(r["s"] for r in jobs)
    p256_s = statistics.median(r["s"] for r in p256)
    raw_s = statistics.median(r["s"] for r in raws) if raws else None
    report = {
        "n": args.n,
        "overlap": overlap,
        "repeat": args.repeat,
        "raw_s": round(raw_s, 3) if raw_s else None,
        "job_s": round(job_s, 3),
        "ratio": round(job_s / raw_s, 3) if raw_s else None,
        "counted_s": round(counted_s, 3),
        "counted_over_job": round(counted_s / job_s, 3),
        "counted_runs_s": [round(r["s"], 3) for r in counted],
        "p256_job_s": round(p256_s, 3),
        "x25519_over_p256": round(job_s / p256_s, 3),
        "p256_runs_s": [round(r["s"], 3) for r in p256],
        "job_phases_s": {
            k: round(statistics.median(r[k] for r in jobs), 3)
            for k in ("encrypt_s", "provider_s", "decrypt_s")
        },
        "raw_runs_s": [round(r["s"], 3) for r in raws],
        "job_runs_s": [round(r["s"], 3) for r in jobs],
        "peak_rss_mb": {
            "raw": round(max(r["peak_rss_mb"] for r in raws), 1) if raws else None,
            **{k: round(v, 1) for k, v in peaks.items()},
        },
    }
    if args.json:
        print(json.dumps(report))
        return
    print(f"PSI cardinality, {args.n} × {args.n}, {overlap} in common, median of {args.repeat}")
    if raw_s:
        print(f"  (a) raw openmined-psi, one process : {raw_s:8.2f} s   runs {report['raw_runs_s']}")
    print(f"  (b) job via two connectors + space : {job_s:8.2f} s   runs {report['job_runs_s']}  (X25519)")
    print(f"      phases (median): {report['job_phases_s']}")
    print(
        f"  (c) provider-counted, ε = {EPSILON:g}       : {counted_s:8.2f} s   "
        f"runs {report['counted_runs_s']}"
    )
    print(f"      c/b = {report['counted_over_job']:.3f}")
    print(f"  (d) the job of (b) on P-256         : {p256_s:8.2f} s   runs {report['p256_runs_s']}")
    print(f"      b/d = {report['x25519_over_p256']:.3f}  (the X25519 engine against openmined-psi)")
    if raw_s:
        print(f"  ratio b/a = {report['ratio']:.3f}  (target ≤ 0.65)")
    print("  peak RSS (MiB): " + ", ".join(f"{k} {v}" for k, v in report["peak_rss_mb"].items()))


if __name__ == "__main__":
    main()
