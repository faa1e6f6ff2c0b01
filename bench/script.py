"""Reviewed-script benchmark: a pandas group-by mean over a --rows-row CSV.

The job: an approved rerun under ``release: auto`` — submitted by the consumer's connector,
checked by the provider's (agreement and policy at the space, the run counted), run in the
provider's sandbox (bwrap or docker: whichever ``auto`` picks) on the real file, its output
checked (size, columns, counts ≥ k, no key of the file in it), released, signed, recorded and
countersigned; timed from submission to the consumer's connector holding the result.
The baseline: the same script run by ``python`` directly, in one process, on the same file.
Both sides include interpreter start and imports. Target ratio ≤ 1.3.

Each figure is the median of --repeat runs, the two kinds interleaved. The worker starts Python
isolated (``-I``: no user site, no environment), which starts faster than a plain ``python``
with the virtual environment's path hooks; that is what each side really costs. --json prints
one JSON object with at least ``ratio``, ``job_s`` and ``bare_s``.
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

import numpy as np

# Run as a script, this folder comes first on sys.path, where bench/sandbox.py would shadow the
# sandbox package; take the folder out before importing anything of the project.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from tds.client import NodeAPI  # noqa: E402
from tds.local import cluster, negotiate, publish_dataset  # noqa: E402

SCRIPT = """
import pandas as pd
frame = pd.read_csv(DATASET, dtype={"phone": str})
table = frame.groupby("city").agg(n=("income", "size"), mean_income=("income", "mean")).reset_index()
table["mean_income"] = table["mean_income"].round(2)
RESULT = table
COUNTS = ["n"]
"""
# the baseline: the same code with what the sandbox gives it, printed as the job's output is
BARE = "import sys\nDATASET = sys.argv[1]\n" + SCRIPT + "\nprint(RESULT.to_csv(index=False), end='')\n"
COLUMNS = ["city", "n", "mean_income"]
CITIES = 30


def write_data(path: Path, rows: int) -> None:
    rng = np.random.default_rng(3)
    phones = 13_000_000_000 + rng.choice(10**9, size=rows, replace=False)
    cities = rng.integers(0, CITIES, rows)
    incomes = rng.integers(2000, 60000, rows)
    with path.open("w") as handle:
        handle.write("phone,city,income\n")
        for start in range(0, rows, 100_000):
            end = min(rows, start + 100_000)
            handle.write(
                "".join(
                    f"{p},c{c:02d},{i}\n"
                    for p, c, i in zip(phones[start:end], cities[start:end], incomes[start:end], strict=True)
                )
            )


def bare(path: Path) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", BARE, str(path)], capture_output=True, text=True, check=True)
    return time.perf_counter() - start, done.stdout


def job(lab: NodeAPI, agreement: str) -> tuple[float, dict[str, Any]]:
    start = time.perf_counter()
    submitted = lab.post(
        "/api/jobs", {"operation": "script", "agreement": agreement, "code": SCRIPT, "columns": COLUMNS}
    )
    ended = lab.wait_for_job(submitted["id"], timeout=600)
    elapsed = time.perf_counter() - start
    if ended["status"] != "succeeded":
        raise SystemExit(f"the script job ended {ended['status']}: {ended['error']}")
    return elapsed, lab.get(f"/api/jobs/{submitted['id']}/result")


def approve_first(lab: NodeAPI, bank: NodeAPI, agreement: str, runs: int) -> None:
    """The first submission is reviewed: approve it for every timed rerun, release its output."""
    submitted = lab.post(
        "/api/jobs", {"operation": "script", "agreement": agreement, "code": SCRIPT, "columns": COLUMNS}
    )
    path = f"/api/reviews/{submitted['id']}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if bank.get(path)["state"] == "review":
                break
        except Exception:
            pass
        time.sleep(0.1)
    bank.post(f"{path}/approve", {"runs": runs})
    while bank.get(path)["state"] != "release" and time.monotonic() < deadline:
        time.sleep(0.1)
    bank.post(f"{path}/release", {})
    if lab.wait_for_job(submitted["id"], timeout=300)["status"] != "succeeded":
        raise SystemExit("the reviewed first run did not succeed")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one run: that the path works")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.rows, args.repeat = 2000, 1
    with tempfile.TemporaryDirectory(prefix="tds-bench-script-") as tmp:
        root = Path(tmp)
        data = root / "customers.csv"
        write_data(data, args.rows)
        bare_times, bare_out = [], ""
        policy = [
            {"leftOperand": "release", "operator": "isAnyOf", "rightOperand": ["review", "auto"]},
            {"leftOperand": "runsPerApproval", "operator": "lteq", "rightOperand": 100},
            {"leftOperand": "outputBytes", "operator": "lteq", "rightOperand": 65536},
        ]
        offer = {
            "policy": {"permission": [{"action": "script", "constraint": policy}]},
            "price": {"model": "per_job", "amount_fen": 100},
            "auto_approve": True,
        }
        with cluster(root / "cluster") as live:
            live.add_connector("lab", "郑州示例研究院", 31)
            live.add_connector("bank", "郑州示例银行股份有限公司", 32)
            lab, bank = live.connectors["lab"].api(), live.connectors["bank"].api()
            entry = publish_dataset(bank, "customers", data, offer, title="客户收入 customers")
            agreement = negotiate(lab, entry["offers"][0]["id"], ["script"], "scientific-research")[
                "agreement_id"
            ]
            approve_first(lab, bank, agreement, args.repeat + 1)
            job_times, result = [], {}
            for _ in range(args.repeat):  # interleaved, so that both see the same machine
                seconds, bare_out = bare(data)
                bare_times.append(seconds)
                seconds, result = job(lab, agreement)
                job_times.append(seconds)
            backend = bank.get("/api/status")["sandbox"]
            lab.close()
            bank.close()
    if result["csv"] != bare_out:
        raise SystemExit("the job's output differs from the script's own")
    job_s, bare_s = statistics.median(job_times), statistics.median(bare_times)
    report = {
        "rows": args.rows,
        "repeat": args.repeat,
        "job_s": round(job_s, 3),
        "bare_s": round(bare_s, 3),
        "ratio": round(job_s / bare_s, 3),
        "job_runs_s": [round(t, 3) for t in job_times],
        "bare_runs_s": [round(t, 3) for t in bare_times],
        "groups": len(result["rows"]),
        "sandbox": backend,
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(f"script group-by mean over {args.rows} rows, median of {args.repeat}")
        print(f"  python directly  {bare_s:.3f} s")
        print(f"  approved rerun   {job_s:.3f} s   ratio {job_s / bare_s:.2f} (target ≤ 1.3), on {backend}")


if __name__ == "__main__":
    main()
