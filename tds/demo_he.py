"""The demo's participants and the steps after PSI (tds.demo tells the story): the homomorphic
jobs, the auditor's verification and the provisional settlement."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tds import audit as auditing
from tds.client import NodeAPI
from tds.errors import TdsError
from tds.local import Cluster, negotiate, publish_dataset

Tell = Callable[[str], None]
HOSPITALS = {
    "hospital-zz": "郑州示例人民医院",
    "hospital-ly": "洛阳示例中心医院",
    "hospital-kf": "开封示例第一医院",
}
LAB_ROWS = (6000, 5000, 4000)
MODEL = {"features": ["tenure_months", "arpu"], "weights": [0.004, 0.01], "bias": -0.5}


def c(left: str, op: str, right: Any) -> dict[str, Any]:
    return {"leftOperand": left, "operator": op, "rightOperand": right}


def join(space: Cluster, tell: Tell) -> dict[str, NodeAPI]:
    """Six connectors, admitted with signed credentials and started side by side."""
    members = {
        "bank": ("郑州示例银行股份有限公司", "provider,consumer"),
        "telecom": ("河南示例通信有限公司", "provider,consumer"),
        "institute": ("河南示例公共卫生研究院", "consumer"),
        **{name: (legal, "provider") for name, legal in HOSPITALS.items()},
    }
    nodes = [
        space.add_connector(name, legal, seed, roles=roles, start=False)
        for seed, (name, (legal, roles)) in enumerate(members.items(), 1)
    ]
    with ThreadPoolExecutor(len(nodes)) as pool:
        list(pool.map(lambda node: node.start(), nodes))
    tell("admitted " + ", ".join(f"{n.config.id} ({n.url})" for n in nodes) + " with signed credentials")
    return {"operator": space.operator(), **{n.config.id: n.api() for n in nodes}}


def score(apis: dict[str, NodeAPI], root: Path, customers: list[str], tell: Tell) -> dict[str, Any]:
    """he.score: the bank's model on the telecom's features, neither seeing the other's numbers."""
    offer = {
        "policy": {"permission": [{"action": "he.score", "constraint": [
            c("purpose", "isAnyOf", ["risk-control"]), c("column", "isPartOf", MODEL["features"]),
            c("consumerSetSize", "lteq", 5000), c("idsPerDay", "lteq", 20000),
        ]}]},
        "price": {"model": "per_row", "amount_fen": 2},
        "auto_approve": True,
    }  # fmt: skip
    entry = publish_dataset(
        apis["telecom"],
        "subscriber-features",
        root / "telecom_subscribers.csv",
        offer,
        title="用户画像特征 (subscriber features)",
        sector="信息通信",
        pi_level="general",
    )
    agreement = negotiate(apis["bank"], entry["offers"][0]["id"], ["he.score"])["agreement_id"]
    (root / "score_ids.csv").write_text("phone\n" + "\n".join(customers) + "\n", encoding="utf-8")
    (root / "model.json").write_text(json.dumps(MODEL), encoding="utf-8")
    started = time.perf_counter()
    job = run(
        apis["bank"],
        {
            "operation": "he.score",
            "agreement": agreement,
            "column": "phone",
            "ids": str(root / "score_ids.csv"),
            "model": str(root / "model.json"),
        },
    )
    summary = job["summary"] or {}
    rows = apis["bank"].get(f"/api/jobs/{job['id']}/result", limit=len(customers))["scores"]
    first = [(row["id"], round(row["score"], 3)) for row in rows if row["score"] is not None][:2]
    tell(
        f"he.score: {job['status']}, {summary.get('scored')} of {len(customers)} customers scored "
        f"({summary.get('not_found')} not held by the telecom), e.g. {first}, "
        f"{time.perf_counter() - started:.2f} s"
    )
    return {"status": job["status"], "ids": len(customers), **summary}


def lab_results(path: Path, seed: int, rows: int) -> None:
    rng = random.Random(seed)
    lines = [f"P{seed}-{i},{rng.randint(20, 85)},{max(2.5, rng.gauss(5.8, 1.3)):.2f}" for i in range(rows)]
    path.write_text("patient,age,glucose\n" + "\n".join(lines) + "\n", encoding="utf-8")


def aggregate(apis: dict[str, NodeAPI], root: Path, tell: Tell) -> dict[str, Any]:
    """he.aggregate: three hospitals' lab results summed under encryption at the space, each part
    noised (ε = 1 per job, 3 in all) and given only with at least 100 rows."""
    offer = {
        "policy": {"permission": [{"action": "he.aggregate", "constraint": [
            c("purpose", "isAnyOf", ["public-health"]), c("column", "isPartOf", ["age", "glucose"]),
            c("statistic", "isPartOf", ["count", "sum", "mean"]),
            c("aggregationSize", "gteq", 100), c("epsilon", "lteq", 1.0), c("epsilonTotal", "lteq", 3.0),
        ]}]},
        "price": {"model": "per_job", "amount_fen": 800},
        "auto_approve": True,
    }  # fmt: skip
    agreements = []
    for seed, (name, rows) in enumerate(zip(HOSPITALS, LAB_ROWS, strict=True), 1):
        lab_results(root / f"{name}.csv", seed, rows)
        entry = publish_dataset(
            apis[name],
            "lab-results",
            root / f"{name}.csv",
            offer,
            key_column="patient",
            title="检验结果 (lab results)",
            sector="医疗健康",
            pi_level="sensitive",
        )
        if entry["status"] == "pending_review":  # health data: the operator reviews it first (NL-102)
            apis["operator"].post(
                f"/admin/reviews/{entry['id']}/approve", {"note": "de-identified lab results"}
            )
        neg = negotiate(
            apis["institute"], entry["offers"][0]["id"], ["he.aggregate"], purpose="public-health"
        )
        agreements.append(neg["agreement_id"])
    tell(f"{len(HOSPITALS)} hospitals published lab results (sensitive: the operator reviewed each entry); "
         f"the institute holds {len(agreements)} agreements")  # fmt: skip
    started = time.perf_counter()
    job = run(
        apis["institute"],
        {
            "operation": "he.aggregate",
            "agreements": agreements,
            "column": "glucose",
            "stats": ["count", "mean"],
            "epsilon": 1.0,
            "bounds": [2, 20],
        },
    )
    stats = (job["summary"] or {}).get("statistics") or {}
    shown = ", ".join(f"{k} {v:.2f}" for k, v in stats.items() if isinstance(v, int | float))
    tell(
        f"he.aggregate over {len(agreements)} hospitals ({sum(LAB_ROWS)} rows, ε = 1 each): {job['status']}, "
        f"{shown}; no party saw another's rows, {time.perf_counter() - started:.2f} s"
    )
    return {"status": job["status"], "contributors": (job["summary"] or {}).get("contributors"), **stats}


def run(api: NodeAPI, body: dict[str, Any]) -> dict[str, Any]:
    job = api.post("/api/jobs", body)
    return dict(api.wait_for_job(job["id"], 600))


def audit(apis: dict[str, NodeAPI], root: Path, tell: Tell) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """What ``tds audit verify --receipts …`` checks: every signature, every signed head's root,
    every receipt the connectors hold; returns the report and the log's records."""
    connectors = [api for name, api in apis.items() if name != "operator"]
    for api in connectors:  # countersignatures delivered, records in the log
        api.post("/api/outbox/flush")
        api.wait_for("/api/outbox", lambda o: not o["pending"], timeout=60)
    receipts = [r for api in connectors for r in api.get("/api/outbox/receipts")["receipts"]]
    bundle = auditing.fetch(apis["operator"])
    report = auditing.verify(bundle, auditing.State(root / "auditor"), receipts)
    if not report.ok:
        raise TdsError(f"the usage log does not verify: {report.problems}")
    tell(
        f"auditor: {report.records} records, {report.heads} signed tree heads and {report.receipts} "
        "receipts verified without trusting the operator:"
    )
    records = apis["operator"].get("/ledger/records", limit=1000)["records"]
    for entry in records:
        r = entry["signed"]["document"]
        signers = ", ".join(sorted(entry["signed"]["signatures"]))
        if entry["kind"] == "script-step":
            by = f" by {r['reviewer']}" if r["reviewer"] else ""
            tell(f"  #{entry['seq']} script step        {r['step']:<9}{by}  signed by {signers}")
            continue
        tell(
            f"  #{entry['seq']} {r['operation']:<17} {r['outcome']:<9} fee {r['fee_fen']:>5} fen  "
            f"signed by {signers}  {r['reason']}"
        )
    return {
        "ok": True,
        "records": report.records,
        "heads": report.heads,
        "receipts": report.receipts,
    }, records


def head(operator: NodeAPI) -> Any:
    return operator.get("/ledger/records", limit=1)["head"]


def preview(operator: NodeAPI, tell: Tell) -> dict[str, Any]:
    """The current period as it would settle now: provisional, unsigned, nothing issued."""
    shown = operator.get("/settlements/current/preview")
    summary = shown["summary"]
    nets = {who: s["net_fen"] for who, s in shown["statements"].items()}
    tell(
        f"settlement preview of {shown['period']} (provisional, as of {shown['as_of'][:19]}Z): fees "
        f"{summary['fees_fen']} fen, commission {summary['commission_fen']} fen; net per party (fen): "
        + ", ".join(f"{who} {net:+d}" for who, net in nets.items())
    )
    return {
        "period": shown["period"],
        "provisional": True,
        "fees_fen": summary["fees_fen"],
        "commission_fen": summary["commission_fen"],
        "net_fen": nets,
    }
