"""Homomorphic jobs between real processes: he.aggregate over three providers (and one), with
k, allowed columns and statistics, a privacy budget; he.score with ids not held and daily
limits. Results are checked against the plaintext computation over the same rows."""

import base64
import json
import math
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from node.signing import RemoteError, SignedClient
from tds.client import NodeAPI
from tds.errors import ApiError
from tds.local import cluster, negotiate, publish_dataset
from tests.integration.helpers import verified_log

ALLOWED = {"leftOperand": "column", "operator": "isPartOf", "rightOperand": ["x", "z", "y", "city"]}
STATS = {"leftOperand": "statistic", "operator": "isPartOf",
         "rightOperand": ["count", "sum", "mean", "variance", "histogram", "linreg"]}  # fmt: skip
K = {"leftOperand": "aggregationSize", "operator": "gteq", "rightOperand": 100}


def c(left: str, op: str, right: object) -> dict[str, Any]:
    return {"leftOperand": left, "operator": op, "rightOperand": right}


def lab_csv(path: Path, seed: int, rows: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x, z = rng.uniform(0, 100, rows), rng.normal(5, 2, rows)
    y = 3.0 + 0.5 * x - 2.0 * z + rng.normal(0, 1, rows)
    city = rng.choice(["郑州", "洛阳"], rows)
    body = "".join(
        f"P{seed}-{i},{a:.6f},{b:.6f},{d:.6f},{e}\n"
        for i, (a, b, d, e) in enumerate(zip(x, z, y, city, strict=True))
    )
    path.write_text("patient,x,z,y,city\n" + body)
    return np.column_stack([np.round(x, 6), np.round(z, 6), np.round(y, 6), city == "郑州"]).astype(float)


def offer(*constraints: dict[str, Any], operations: tuple[str, ...] = ("he.aggregate",)) -> dict[str, Any]:
    return {
        "policy": {"permission": [{"action": op, "constraint": list(constraints)} for op in operations]},
        "price": {"model": "per_job", "amount_fen": 100},
        "auto_approve": True,
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("he")
    with cluster(root / "nodes") as live:
        lab = live.add_connector("lab", "Lab", 41, roles="consumer")
        providers = {
            name: live.add_connector(name, name.upper(), 42 + i)
            for i, name in enumerate(("hos1", "hos2", "hos3"))
        }
        apis = {name: node.api() for name, node in providers.items()}
        consumer = lab.api()
        data = {name: lab_csv(root / f"{name}.csv", i + 1, 1500 + 700 * i) for i, name in enumerate(apis)}
        small = lab_csv(root / "small.csv", 9, 60)

        def agreement(provider: str, csv: Path, terms: dict[str, Any], ops: list[str]) -> str:
            name = f"{provider}-{uuid.uuid4().hex[:8]}"
            entry = publish_dataset(
                apis[provider], name, csv, terms, key_column="patient", title=f"lab {name}"
            )
            neg = negotiate(consumer, entry["offers"][0]["id"], ops, purpose="public-health")
            assert neg["state"] == "FINALIZED", neg
            return str(neg["agreement_id"])

        plain = offer(ALLOWED, STATS, K)
        agreements = {name: agreement(name, root / f"{name}.csv", plain, ["he.aggregate"]) for name in apis}
        yield {
            "live": live, "lab": consumer, "apis": apis, "data": data, "root": root, "agreements": agreements,
            "small": agreement("hos1", root / "small.csv", plain, ["he.aggregate"]), "small_data": small,
            "second": agreement("hos1", root / "hos2.csv", plain, ["he.aggregate"]),
            "dp": agreement("hos2", root / "hos2.csv", offer(ALLOWED, STATS, c("epsilon", "lteq", 1.0),
                                                          c("epsilonTotal", "lteq", 1.5)), ["he.aggregate"]),
            "score": agreement("hos3", root / "hos3.csv", offer(c("column", "isPartOf", ["x", "z"]),
                                                             c("consumerSetSize", "lteq", 1000),
                                                             c("idsPerDay", "lteq", 1500),
                                                             operations=("he.score",)), ["he.score"]),
        }  # fmt: skip
        for api in [consumer, *apis.values()]:
            api.close()


def run(lab: NodeAPI, body: dict[str, Any]) -> dict[str, Any]:
    job = lab.post("/api/jobs", body)
    return dict(lab.wait_for_job(job["id"], 120))


def close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(1.0, abs(b))


ALL = {"operation": "he.aggregate", "stats": ["count", "sum", "mean", "variance", "histogram", "linreg"],
       "column": "x", "bins": [0, 20, 40, 60, 80, 100], "features": ["x", "z"], "target": "y"}  # fmt: skip


def test_three_providers_give_the_statistics_of_all_their_rows(world) -> None:  # type: ignore[no-untyped-def]
    job = run(world["lab"], {**ALL, "agreements": list(world["agreements"].values())})
    assert job["status"] == "succeeded", job
    stats = job["summary"]["statistics"]
    union = np.vstack(list(world["data"].values()))
    x, z, y = union[:, 0], union[:, 1], union[:, 2]
    assert stats["count"] == len(x) == 1500 + 2200 + 2900
    assert (
        close(stats["sum"], x.sum())
        and close(stats["mean"], x.mean())
        and close(stats["variance"], x.var(ddof=1))
    )
    assert stats["histogram"]["counts"] == list(np.histogram(x, bins=ALL["bins"])[0])
    expected = np.linalg.lstsq(np.column_stack([np.ones(len(x)), x, z]), y, rcond=None)[0]
    fitted = stats["linreg"]
    got = [fitted["intercept"], fitted["coefficients"]["x"], fitted["coefficients"]["z"]]
    assert all(close(g, e) for g, e in zip(got, expected, strict=True))
    assert job["summary"]["contributors"] == 3
    for api in [world["lab"], *world["apis"].values()]:  # countersigned and delivered
        api.wait_for("/api/outbox", lambda o: not o["pending"], timeout=30)
    records = world["live"].operator().get("/ledger/records", limit=1000)["records"]
    mine = [r["signed"] for r in records if r["signed"]["document"]["job"] == job["id"]]
    assert len(mine) == 3 and all(set(s["signatures"]) == {"lab", s["document"]["provider"]} for s in mine)
    assert all(s["document"]["provider_set_size"] is None for s in mine)  # no provider's count leaks


def test_one_provider_and_a_filter(world) -> None:  # type: ignore[no-untyped-def]
    body = {"operation": "he.aggregate", "stats": ["count", "mean"], "column": "y",
            "where": "city = '郑州' and x >= 50", "agreements": [world["agreements"]["hos2"]]}  # fmt: skip
    job = run(world["lab"], body)
    rows = world["data"]["hos2"]
    chosen = rows[(rows[:, 3] == 1) & (rows[:, 0] >= 50)]
    assert job["summary"]["statistics"]["count"] == len(chosen)
    assert close(job["summary"]["statistics"]["mean"], chosen[:, 2].mean())


def test_a_provider_below_k_contributes_nothing_and_the_job_says_so(world) -> None:  # type: ignore[no-untyped-def]
    body = {"operation": "he.aggregate", "stats": ["count"], "column": "x",
            "agreements": [world["small"], world["agreements"]["hos3"]]}  # fmt: skip
    job = run(world["lab"], body)
    assert job["status"] == "succeeded"
    assert job["summary"] == {"statistics": {"count": 2900}, "contributors": 1}
    answers = world["lab"].get(f"/api/jobs/{job['id']}/result")["answers"]
    assert (
        answers[world["small"]]
        == "fewer rows than the agreement's minimum (aggregationSize); contributed nothing"
    )
    assert answers[world["agreements"]["hos3"]] == "contributed"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"column": "patient"}, "column isPartOf [x, z, y, city]: column is ['patient']"),
        ({"where": "patient = 'P1-1'"}, "column isPartOf [x, z, y, city]: column is ['patient', 'x']"),
    ],
)
def test_columns_outside_the_agreement_are_denied(world, change: dict, message: str) -> None:  # type: ignore[no-untyped-def]
    job = run(world["lab"], {"operation": "he.aggregate", "stats": ["sum"], "column": "x",
                             "agreements": [world["agreements"]["hos1"]], **change})  # fmt: skip
    assert job["status"] == "denied"  # every provider's policy said no
    assert "no provider contributed" in job["error"] and message in job["error"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"stats": ["median"], "column": "x"}, "stats: expected some of"),
        ({"stats": ["sum"], "column": "x", "where": "x >"}, "where: expected a number or 'text' at the end"),
        (
            {"stats": ["sum"], "column": "x", "epsilon": 0.5},
            "bounds: differential privacy needs [lower, upper]",
        ),
    ],
)
def test_bad_requests_are_refused_before_anything_starts(world, body: dict, message: str) -> None:  # type: ignore[no-untyped-def]
    before = len(world["lab"].get("/api/jobs")["jobs"])
    with pytest.raises(ApiError, match=message.replace("[", r"\[")):
        world["lab"].post(
            "/api/jobs", {"operation": "he.aggregate", "agreements": [world["agreements"]["hos1"]], **body}
        )
    assert len(world["lab"].get("/api/jobs")["jobs"]) == before


def test_differential_privacy_spends_a_budget(world) -> None:  # type: ignore[no-untyped-def]
    body = {"operation": "he.aggregate", "stats": ["count", "sum"], "column": "x", "bounds": [0, 100],
            "agreements": [world["dp"]]}  # fmt: skip
    refused = run(world["lab"], body)  # the agreement requires ε
    assert "epsilon lteq 1.0: the request does not state epsilon" in refused["error"]
    noisy = run(world["lab"], {**body, "epsilon": 1.0})
    assert noisy["status"] == "succeeded"
    assert abs(noisy["summary"]["statistics"]["count"] - 2200) < 2000  # Laplace(101) noise on 2200
    shown = world["lab"].get(f"/api/jobs/{noisy['id']}/result")
    laplace = 2**0.5 * (1 + 100) / 1.0  # Laplace(Δ₁/ε) per part, Δ₁ = 1 (count) + 100 (sum)
    assert shown["noise_std"] == {"count": pytest.approx(laplace), "sum": pytest.approx(laplace)}
    assert shown["providers"] == {"hos2": "contributed"}
    over = run(world["lab"], {**body, "epsilon": 0.75})  # 1.0 + 0.75 > 1.5
    assert "epsilonTotal lteq 1.5: epsilonTotal is 1.75" in over["error"]
    under = run(world["lab"], {**body, "epsilon": 0.5})  # the denied job spent nothing
    assert under["status"] == "succeeded"


def test_scores_for_the_ids_the_provider_holds(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ids = [f"P3-{i}" for i in range(0, 900)] + ["P9-nobody"]
    (tmp_path / "ids.csv").write_text("customer\n" + "\n".join(ids) + "\n")
    (tmp_path / "model.json").write_text(
        json.dumps({"features": ["x", "z"], "weights": [0.25, -1.5], "bias": 2.0})
    )
    body = {"operation": "he.score", "agreement": world["score"], "ids": str(tmp_path / "ids.csv"),
            "column": "customer", "model": str(tmp_path / "model.json")}  # fmt: skip
    job = run(world["lab"], body)
    assert job["status"] == "succeeded", job
    assert job["summary"] == {"scored": 900, "not_found": 1}
    rows = world["lab"].get(f"/api/jobs/{job['id']}/result", limit=2000)["scores"]
    data = world["data"]["hos3"]
    expected = data[:900, 0] * 0.25 - 1.5 * data[:900, 1] + 2.0
    errors = np.array([r["score"] for r in rows[:900]]) - expected
    # the provider floods every score with N(0, 0.001²) (score_flood_sigma): no CKKS error shows
    assert np.max(np.abs(errors)) < 1e-2 and 5e-4 < float(np.std(errors)) < 2e-3
    assert rows[900] == {"id": "P9-nobody", "score": None, "not_found": True}
    # 901 ids today already: another 901 would pass the per-job limit but not the daily one
    again = run(world["lab"], body)
    assert again["status"] == "denied" and "idsPerDay lteq 1500: idsPerDay is 1802" in again["error"]
    (tmp_path / "many.csv").write_text("customer\n" + "\n".join(f"P3-{i}" for i in range(1001)) + "\n")
    too_many = run(world["lab"], {**body, "ids": str(tmp_path / "many.csv")})
    assert "consumerSetSize lteq 1000: consumerSetSize is 1001" in too_many["error"]
    verified_log(world["live"].operator())


def test_the_command_line_runs_an_aggregate_and_prints_it(world) -> None:  # type: ignore[no-untyped-def]
    lab_dir = world["live"].connectors["lab"].config.path
    args = [sys.executable, "-m", "tds.cli", "--data-dir", str(lab_dir), "--json", "job", "submit",
            "--op", "he.aggregate", "--column", "x", "--stats", "count,mean", "--no-progress"]  # fmt: skip
    for agreement in (world["agreements"]["hos1"], world["agreements"]["hos2"]):
        args += ["--agreement", agreement]
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)
    assert job["summary"]["statistics"]["count"] == 1500 + 2200
    shown = subprocess.run(
        [*args[:5], "job", "result", job["id"]], capture_output=True, text=True, check=False
    )
    assert [line.split() for line in shown.stdout.splitlines()] == [
        ["statistic", "value"],
        ["count", "3700"],
        ["mean", f"{job['summary']['statistics']['mean']:.6g}"],
        ["2", "providers", "contributed"],
        ["hos1:", "contributed"],
        ["hos2:", "contributed"],
    ]
    two = ["--agreement", "x", "--agreement", "y"]
    wrong = subprocess.run(
        [*args[:5], "job", "submit", "--op", "he.score", *two], capture_output=True, text=True
    )
    assert wrong.returncode == 2 and "he.score runs under exactly one --agreement" in wrong.stderr


def test_the_space_refuses_a_ciphertext_made_under_another_context(world) -> None:  # type: ignore[no-untyped-def]
    live = world["live"]
    provider = SignedClient("hos1", live.connectors["hos1"].config.key())
    consumer = SignedClient("lab", live.connectors["lab"].config.key())
    from sandbox.ops import he

    _, public = he.new_context()
    job = f"urn:uuid:{uuid.uuid4()}"
    opened = {"job": job, "agreements": [world["agreements"]["hos1"]], "size": 1}
    opened |= {"fingerprint": he.fingerprint(public), "context": base64.b64encode(public).decode()}
    consumer.send("POST", f"{live.space.url}/aggregations", json=opened)
    body = {"agreement": world["agreements"]["hos1"], "fingerprint": "0" * 64, "ciphertext": "AAAA"}
    with pytest.raises(RemoteError, match="made under another context than the aggregation's"):
        provider.send("POST", f"{live.space.url}/aggregations/{job}/contributions", json=body)
    with pytest.raises(RemoteError, match="lab is not the provider of an agreement"):
        consumer.send("POST", f"{live.space.url}/aggregations/{job}/contributions", json=body)
    with pytest.raises(RemoteError, match="belongs to another participant"):
        provider.send("GET", f"{live.space.url}/aggregations/{job}")
    assert consumer.send("GET", f"{live.space.url}/aggregations/{job}").json()["status"] == "waiting"
    provider.close()
    consumer.close()


def test_gaussian_noise_needs_a_small_delta(world) -> None:  # type: ignore[no-untyped-def]
    body = {
        "operation": "he.aggregate",
        "stats": ["count"],
        "column": "x",
        "agreements": [world["agreements"]["hos1"]],
    }
    body |= {"bounds": [0, 100], "epsilon": 0.5, "mechanism": "gaussian"}
    with pytest.raises(ApiError, match=r"the Gaussian mechanism needs delta in \(0, 0.001\] and epsilon < 1"):
        world["lab"].post("/api/jobs", body)
    job = run(world["lab"], {**body, "delta": 1e-5})
    assert job["status"] == "succeeded"
    assert abs(job["summary"]["statistics"]["count"] - 1500) < 100  # σ ≈ 9.7 for count alone
    shown = world["lab"].get(f"/api/jobs/{job['id']}/result")
    assert shown["noise_std"] == {"count": pytest.approx((2 * math.log(1.25 / 1e-5)) ** 0.5 / 0.5)}


def test_one_provider_with_two_agreements_in_one_job(world) -> None:  # type: ignore[no-untyped-def]
    body = {"operation": "he.aggregate", "stats": ["count"], "column": "x",
            "agreements": [world["agreements"]["hos1"], world["second"]]}  # fmt: skip
    job = run(world["lab"], body)
    assert job["summary"] == {"statistics": {"count": 1500 + 2200}, "contributors": 2}
    hos1 = world["apis"]["hos1"]
    hos1.wait_for("/api/outbox", lambda o: not o["pending"], timeout=30)  # both countersigned, delivered
    records = world["live"].operator().get("/ledger/records", limit=1000)["records"]
    mine = [r["signed"] for r in records if r["signed"]["document"]["job"] == job["id"]]
    assert sorted(s["document"]["agreement"] for s in mine) == sorted(body["agreements"])
    assert all(set(s["signatures"]) == {"lab", "hos1"} for s in mine)
