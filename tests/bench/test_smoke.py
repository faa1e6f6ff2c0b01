"""Every benchmark runs once at tiny sizes (``--smoke``), through the same code path, so that a
benchmark that breaks fails the suite instead of rotting unseen."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def smoke(name: str) -> dict:
    done = subprocess.run(
        [sys.executable, str(BENCH / name), "--smoke", "--json"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout))


def test_psi_bench_runs_a_job_and_its_baseline() -> None:
    report = smoke("psi.py")
    assert (report["n"], report["overlap"], report["repeat"]) == (2000, 1000, 1)
    assert report["raw_s"] > 0 and report["job_s"] > 0
    assert report["ratio"] > 0  # the bench itself checks both runs found the 1000 in common
