"""Every benchmark runs once at tiny sizes (``--smoke``), through the same code path, so that a
benchmark that breaks fails the suite instead of rotting unseen."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def smoke(name: str) -> dict:
    try:
        done = subprocess.run(
            [sys.executable, str(BENCH / name), "--smoke", "--json"],
            capture_output=True,
            text=True,
            timeout=300,
        )
    except subprocess.TimeoutExpired as exc:  # say how far it got: its progress goes to stderr
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
        raise AssertionError(
            f"{name} --smoke ran over {exc.timeout} s; its stderr:\n{stderr[-3000:]}"
        ) from None
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout))


def test_psi_bench_runs_every_job_and_its_baselines() -> None:
    # the bench itself checks that every run found the 1000 in common and psi.sum the exact sum
    report = smoke("psi.py")
    assert (report["n"], report["overlap"], report["repeat"]) == (2000, 1000, 1)
    ratios = ("ratio", "counted_over_job", "x25519_over_p256", "sum_vs_cardinality", "cardinality_vs_fourq",
              "intersection_vs_rr22")  # fmt: skip
    assert all(report[k] > 0 for k in ratios), report
    assert sorted(report["runs_s"]) == [
        "counted",
        "fourq",
        "intersection",
        "job",
        "p256",
        "raw",
        "rr22",
        "sum",
    ]
    assert all(len(runs) == 1 for runs in report["runs_s"].values())
    assert {"fourq", "rr22", "consumer_sandbox_sum", "provider_sandbox_sum"} <= set(report["peak_rss_mb"])


def test_ledger_bench_appends_proves_and_verifies() -> None:
    report = smoke("ledger.py")
    assert report["appends_per_s_sqlite"] > 0 and report["appends_per_s_postgres"] > 0
    assert report["verify_records"] == 320 and report["verify_100k_s"] > 0


def test_he_bench_runs_both_jobs_and_their_baselines() -> None:
    report = smoke("he.py")
    assert (report["rows"], report["ids"], report["features"]) == (2000, 50, 3)
    assert report["aggregate_ratio"] > 0 and report["score_ratio"] > 0


def test_console_bench_fetches_every_page() -> None:
    report = smoke("console.py")
    assert report["records"] == 2000 and report["healthz_ms"] > 0 and report["slowest_list_page_ms"] > 0


def test_sandbox_bench_measures_every_backend(docker_engine: None) -> None:
    """With the session's Docker engine (DOCKER_HOST reaches the benchmark's process)."""
    report = smoke("sandbox.py")
    assert report["unavailable"] == {}
    assert set(report["startup_ms"]) == {"process", "bwrap", "docker"}


def test_script_bench_runs_an_approved_rerun_and_its_baseline() -> None:
    report = smoke("script.py")
    assert (report["rows"], report["repeat"], report["groups"]) == (2000, 1, 30)
    assert report["job_s"] > 0 and report["bare_s"] > 0 and report["ratio"] > 0
    assert report["sandbox"] in ("bwrap", "docker")
