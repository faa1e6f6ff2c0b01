"""``make demo``: the whole story on one machine, with real processes on loopback.

A space and six connectors. A bank and a telecom operator hold generated customers' phone
numbers with a known overlap: the telecom publishes its subscriber list (metadata only), the
bank finds it, negotiates, runs psi.cardinality and psi.intersection, learns its matched
customers' total ARPU per plan with psi.sum (never a subscriber's), then one job more than the
agreement allows, which is denied; then it scores its model on the telecom's features
(he.score). Three hospitals publish lab results, and a public-health institute gets their
statistics together, with differential privacy, without seeing a row (he.aggregate). The
auditor then verifies the usage log and the connectors' receipts without trusting the operator,
and the operator previews the current period's settlement and its revenue split (tds.demo_he
holds the homomorphic steps and the closing ones).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from node import clock
from policies.model import format_datetime
from tds import demo_he, demo_script
from tds.local import cluster, negotiate, publish_dataset, run_job

Say = Callable[[str], None] | None


def offer(now: dt.datetime) -> dict[str, Any]:
    """The telecom's offer: valid for a year from ``now`` (the node clock), so the demo works
    on whatever day it runs. Two matching jobs and, as a third use, one psi.sum of ARPU by plan
    (the only columns a sum may read); every released count at least 100."""
    until = format_datetime((now + dt.timedelta(days=365)).replace(microsecond=0))

    def permission(op: str, uses: int, *more: dict[str, Any]) -> dict[str, Any]:
        return {
            "action": op,
            "constraint": [
                {
                    "leftOperand": "purpose",
                    "operator": "isAnyOf",
                    "rightOperand": ["risk-control", "anti-fraud"],
                },
                {"leftOperand": "count", "operator": "lteq", "rightOperand": uses},
                {"leftOperand": "consumerSetSize", "operator": "lteq", "rightOperand": 2_000_000},
                {"leftOperand": "resultSize", "operator": "gteq", "rightOperand": 100},
                {"leftOperand": "dateTime", "operator": "lt", "rightOperand": until},
                *more,
            ],
        }

    return {
        "policy": {
            "permission": [
                permission("psi.cardinality", 2),
                permission("psi.intersection", 2),
                permission(
                    "psi.sum",
                    3,
                    {"leftOperand": "column", "operator": "isPartOf", "rightOperand": ["arpu", "plan"]},
                ),
            ],
        },
        "price": {"model": "per_job", "amount_fen": 5000},
        "auto_approve": True,
    }


TELECOM_COLUMNS = "phone,plan,tenure_months,arpu"


def phone_sets(n: int, overlap: int, seed: int = 2025) -> tuple[list[str], list[str]]:
    """Two lists of n distinct mainland mobile numbers sharing exactly ``overlap``."""
    rng = random.Random(seed)
    numbers: set[str] = set()
    while len(numbers) < 2 * n - overlap:
        numbers.add(f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}")
    ordered = sorted(numbers)
    rng.shuffle(ordered)
    shared, rest = ordered[:overlap], ordered[overlap:]
    bank = shared + rest[: n - overlap]
    telecom = shared + rest[n - overlap :]
    rng.shuffle(bank)
    rng.shuffle(telecom)
    return bank, telecom


def write_csv(path: Path, header: str, rows: list[str]) -> None:
    path.write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")


def write_phone_data(root: Path, n: int, overlap: int) -> tuple[list[str], list[str]]:
    """The bank's customers and the telecom's subscribers (with the features the bank scores)."""
    bank_phones, telecom_phones = phone_sets(n, overlap)
    write_csv(
        root / "bank_customers.csv",
        "phone,segment",
        [f"{p},{'retail' if i % 3 else 'sme'}" for i, p in enumerate(bank_phones)],
    )
    write_csv(
        root / "telecom_subscribers.csv",
        TELECOM_COLUMNS,
        [
            f"{p},{'5G' if i % 2 else '4G'},{i % 120},{30 + (i * 37) % 170}"
            for i, p in enumerate(telecom_phones)
        ],
    )
    return bank_phones, telecom_phones


def run_demo(n: int, overlap: int, keep: Path | None, say: Say) -> dict[str, Any]:
    def tell(text: str) -> None:
        if say:
            say(text)

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tds-demo-") as tmp:
        root = keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        bank_phones, _ = write_phone_data(root, n, overlap)
        tell(f"generated {n} bank customers and {n} telecom subscribers, {overlap} in common")
        with cluster(root) as space:
            tell(f"space running at {space.space.url}")
            apis = demo_he.join(space, tell)
            try:
                report = psi_story(apis, root, overlap, tell)
                report["he_score"] = demo_he.score(apis, root, bank_phones[:1000], tell)
                report["he_aggregate"] = demo_he.aggregate(apis, root, tell)
                report["script"] = demo_script.script(apis, root, tell)
                report["audit"], records = demo_he.audit(apis, root, tell)
                report["ledger_records"], report["ledger_head"] = len(records), demo_he.head(apis["operator"])
                report["settlement_preview"] = demo_he.preview(apis["operator"], tell)
            finally:
                for api in apis.values():
                    api.close()
    report |= {"n": n, "timings": {**report["timings"], "total_s": round(time.perf_counter() - started, 2)}}
    tell(json.dumps(report["timings"]))
    return report


def psi_story(apis: dict[str, Any], root: Path, overlap: int, tell: Callable[[str], None]) -> dict[str, Any]:
    """The telecom publishes, the bank negotiates and runs both PSI jobs, then one too many."""
    bank_api, telecom_api = apis["bank"], apis["telecom"]
    entry = publish_dataset(
        telecom_api,
        "subscribers",
        root / "telecom_subscribers.csv",
        offer(clock.now()),
        title="移动用户号码库 (mobile subscribers)",
        description="在网手机号码，用于风控核验 / active mobile numbers for risk checks",
        sector="信息通信",
        keywords=["手机号", "phone", "risk"],
        pi_level="general",
    )
    tell(f"telecom published {entry['id']} ({entry['row_count']} rows, metadata only)")
    found = bank_api.get("/api/catalog", q="手机号", op="psi.cardinality")["results"]
    neg = negotiate(bank_api, found[0]["offers"][0]["id"], ["psi.cardinality", "psi.intersection", "psi.sum"])
    if neg["state"] != "FINALIZED":
        raise RuntimeError(f"negotiation ended {neg['state']}: {neg['reason']}")
    agreement = neg["agreement_id"]
    tell(f"agreement {agreement} FINALIZED, signed by both, recorded at the space")
    bank_input = root / "bank_customers.csv"
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    cardinality = run_job(bank_api, agreement, "psi.cardinality", bank_input)
    timings["psi_cardinality_s"] = round(time.perf_counter() - t0, 2)
    size = (cardinality["summary"] or {}).get("cardinality")
    tell(f"psi.cardinality: {cardinality['status']}, |A ∩ B| = {size} (expected {overlap}), "
         f"{timings['psi_cardinality_s']} s")  # fmt: skip
    t0 = time.perf_counter()
    intersection = run_job(bank_api, agreement, "psi.intersection", bank_input)
    timings["psi_intersection_s"] = round(time.perf_counter() - t0, 2)
    result = bank_api.get(f"/api/jobs/{intersection['id']}/result", limit=3)
    tell(
        f"psi.intersection: {intersection['status']}, {result['intersection_size']} numbers, "
        f"first {result['intersection'][:3]}, {timings['psi_intersection_s']} s"
    )
    t0 = time.perf_counter()
    summed = run_job(bank_api, agreement, "psi.sum", bank_input, sum="arpu", by="plan")
    timings["psi_sum_s"] = round(time.perf_counter() - t0, 2)
    sums = bank_api.get(f"/api/jobs/{summed['id']}/result") if summed["status"] == "succeeded" else {}
    by_plan = {row["category"]: [row["count"], row["sum"]] for row in sums.get("categories", [])}
    tell(f"psi.sum of ARPU by plan: {summed['status']}, {by_plan} (count, sum), {timings['psi_sum_s']} s")
    denied = run_job(bank_api, agreement, "psi.cardinality", bank_input)
    tell(f"fourth job: {denied['status']}: {denied['error']}")
    return {
        "psi_cardinality": size,
        "expected_cardinality": overlap,
        "psi_intersection_size": result["intersection_size"],
        "psi_sum": {"status": summed["status"], "cardinality": sums.get("cardinality"), "by_plan": by_plan},
        "denied_reason": denied["error"],
        "agreement_id": agreement,
        "timings": timings,
    }
