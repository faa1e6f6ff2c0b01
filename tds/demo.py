"""``make demo``: the main story on one machine, with real processes on loopback.

A space and two connectors — a bank (consumer) and a telecom operator (provider) — with
generated customer phone numbers and a known overlap. The telecom publishes its subscriber
list (metadata only); the bank finds it, negotiates an agreement, runs psi.cardinality and
psi.intersection, then one job more than the agreement allows, which is denied. Every
attempt is in the ledger, which the demo reads back and checks.
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

from contracts.audit import audit
from node import clock
from policies.model import format_datetime
from tds.audit import fetch
from tds.errors import TdsError
from tds.local import cluster, negotiate, publish_dataset, run_job

Say = Callable[[str], None] | None


def offer(now: dt.datetime) -> dict[str, Any]:
    """The telecom's offer: valid for a year from ``now`` (the node clock), so the demo works
    on whatever day it runs."""
    until = format_datetime((now + dt.timedelta(days=365)).replace(microsecond=0))
    return {
        "policy": {
            "permission": [
                {
                    "action": op,
                    "constraint": [
                        {
                            "leftOperand": "purpose",
                            "operator": "isAnyOf",
                            "rightOperand": ["risk-control", "anti-fraud"],
                        },
                        {"leftOperand": "count", "operator": "lteq", "rightOperand": 2},
                        {"leftOperand": "consumerSetSize", "operator": "lteq", "rightOperand": 2_000_000},
                        {"leftOperand": "resultSize", "operator": "gteq", "rightOperand": 100},
                        {"leftOperand": "dateTime", "operator": "lt", "rightOperand": until},
                    ],
                }
                for op in ("psi.cardinality", "psi.intersection")
            ],
        },
        "price": {"model": "per_job", "amount_fen": 5000},
        "auto_approve": True,
    }


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


def run_demo(n: int, overlap: int, keep: Path | None, say: Say) -> dict[str, Any]:
    def tell(text: str) -> None:
        if say:
            say(text)

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tds-demo-") as tmp:
        root = keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        bank_phones, telecom_phones = phone_sets(n, overlap)
        write_csv(
            root / "bank_customers.csv",
            "phone,segment",
            [f"{p},{'retail' if i % 3 else 'sme'}" for i, p in enumerate(bank_phones)],
        )
        write_csv(
            root / "telecom_subscribers.csv",
            "phone,plan,tenure_months",
            [f"{p},{'5G' if i % 2 else '4G'},{i % 120}" for i, p in enumerate(telecom_phones)],
        )
        tell(f"generated {n} bank customers and {n} telecom subscribers, {overlap} in common")
        with cluster(root) as space:
            tell(f"space running at {space.space.url}")
            bank = space.add_connector("bank", "郑州示例银行股份有限公司", 1)
            telecom = space.add_connector("telecom", "河南示例通信有限公司", 2)
            tell(f"admitted bank ({bank.url}) and telecom ({telecom.url}) with signed credentials")
            operator, bank_api, telecom_api = space.operator(), bank.api(), telecom.api()
            try:
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
                offer_id = found[0]["offers"][0]["id"]
                neg = negotiate(bank_api, offer_id, ["psi.cardinality", "psi.intersection"])
                if neg["state"] != "FINALIZED":
                    raise RuntimeError(f"negotiation ended {neg['state']}: {neg['reason']}")
                agreement = neg["agreement_id"]
                tell(f"agreement {agreement} FINALIZED, signed by both, recorded at the space")
                bank_input = root / "bank_customers.csv"
                timings: dict[str, float] = {}
                t0 = time.perf_counter()
                cardinality = run_job(bank_api, agreement, "psi.cardinality", bank_input)
                timings["psi_cardinality_s"] = round(time.perf_counter() - t0, 2)
                tell(
                    f"psi.cardinality: {cardinality['status']}, |A ∩ B| = "
                    f"{(cardinality['summary'] or {}).get('cardinality')} (expected {overlap}), "
                    f"{timings['psi_cardinality_s']} s"
                )
                t0 = time.perf_counter()
                intersection = run_job(bank_api, agreement, "psi.intersection", bank_input)
                timings["psi_intersection_s"] = round(time.perf_counter() - t0, 2)
                result = bank_api.get(f"/api/jobs/{intersection['id']}/result", limit=3)
                tell(
                    f"psi.intersection: {intersection['status']}, {result['intersection_size']} numbers, "
                    f"first {result['intersection'][:3]}, {timings['psi_intersection_s']} s"
                )
                denied = run_job(bank_api, agreement, "psi.cardinality", bank_input)
                tell(f"third job: {denied['status']}: {denied['error']}")
                for api in (bank_api, telecom_api):
                    api.post("/api/outbox/flush")
                ledger = operator.get("/ledger/records", limit=1000)
                bundle = fetch(operator)
                checked = audit(bundle.space_public_key, bundle.participants, bundle.records, bundle.heads)
                if not checked.ok:
                    raise TdsError(f"the usage log does not verify: {checked.problems}")
                tell(f"usage log (signatures, {checked.heads} signed tree heads and their roots verified):")
                for entry_ in ledger["records"]:
                    r = entry_["signed"]["document"]
                    signers = ", ".join(sorted(entry_["signed"]["signatures"]))
                    tell(
                        f"  #{entry_['seq']} {r['operation']:<17} {r['outcome']:<9} "
                        f"fee {r['fee_fen']:>5} fen  signed by {signers}  {r['reason']}"
                    )
            finally:
                for api in (operator, bank_api, telecom_api):
                    api.close()
    report = {
        "psi_cardinality": (cardinality["summary"] or {}).get("cardinality"),
        "expected_cardinality": overlap,
        "psi_intersection_size": result["intersection_size"],
        "denied_reason": denied["error"],
        "ledger_records": len(ledger["records"]),
        "ledger_head": ledger["head"],
        "agreement_id": agreement,
        "n": n,
        "timings": {**timings, "total_s": round(time.perf_counter() - started, 2)},
    }
    tell(json.dumps(report["timings"]))
    return report
