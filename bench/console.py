"""Console benchmark: the web console's pages over a log of a million usage records.

A space database is filled directly with --records signed usage records (two real Ed25519
signatures each, 20 participants, 200 agreements, 50 datasets, 90 % succeeded / 7 % denied /
3 % failed, appended over 60 days) and their subtree hashes; then a space process serves it
and an auditor signs in over HTTP. Each page is fetched --repeat times; the figure is the
median, beside the baseline measured in the same run: GET /healthz, the smallest answer the
same server gives.

Target (issue 6): list pages answer in well under a second at 1 000 000 records; we hold them
to ≤ 250 ms each. --json prints one JSON object.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import re
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import insert

from contracts import merkle
from contracts.canonical import canonical_bytes
from contracts.keys import b64url
from node import clock
from node.db import Database, migrate
from node.models import utcnow
from space.models import DailyUsage, LedgerEntry, LedgerHead, MerkleNode, Participant
from tds.local import cluster

PARTIES = [f"p{n:02d}" for n in range(20)]
OUTCOMES = ["succeeded"] * 90 + ["denied"] * 7 + ["failed"] * 3
OPERATIONS = ["psi.cardinality", "psi.intersection", "he.aggregate", "he.score"]
SPAN = dt.timedelta(days=60)
START = clock.now().replace(microsecond=0) - SPAN  # the log's last 60 days, up to now
CHUNK = 20_000
KEYS = {p: Ed25519PrivateKey.from_private_bytes(bytes([n + 1]) * 32) for n, p in enumerate(PARTIES)}


def _rows(first: int, count: int, total: int) -> list[dict[str, Any]]:
    """Signed records ``first`` … ``first + count - 1`` (deterministic, so workers agree)."""
    rng = random.Random(first)
    out = []
    for seq in range(first, first + count):
        agreement = rng.randrange(200)
        provider, consumer = PARTIES[agreement % 20], PARTIES[(agreement * 7 + 3) % 20]
        if provider == consumer:
            consumer = PARTIES[(agreement + 1) % 20]
        outcome = rng.choice(OUTCOMES)
        at = START + SPAN * seq / total
        finished = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        record = {
            "@type": "tds:UsageRecord",
            "currency": "CNY",
            "id": f"urn:uuid:bench-{seq:08d}",
            "job": f"urn:uuid:job-{seq:08d}",
            "agreement": f"urn:uuid:agreement-{agreement:03d}",
            "dataset": f"urn:uuid:dataset-{agreement % 50:02d}",
            "provider": provider,
            "consumer": consumer,
            "operation": OPERATIONS[agreement % 4],
            "purpose": "risk-control",
            "outcome": outcome,
            "reason": {"succeeded": "completed", "denied": "consumerSetSize lteq 10000: got 20000"}.get(
                outcome, "sandbox: wall-clock limit 600 s exceeded"
            ),
            "consumer_set_size": 1000,
            "provider_set_size": None,
            "fee_fen": 5000 if outcome == "succeeded" else 0,
            "started_at": finished,
            "finished_at": finished,
        }
        message = canonical_bytes(record)
        signed = {
            "document": record,
            "signatures": {
                provider: b64url(KEYS[provider].sign(message)),
                consumer: b64url(KEYS[consumer].sign(message)),
            },
        }
        out.append(
            {
                "seq": seq,
                "record_id": record["id"],
                "signed": signed,
                "leaf_hash": merkle.leaf_hash(canonical_bytes(signed)).hex(),
                "agreement_id": record["agreement"],
                "dataset_id": record["dataset"],
                "provider_id": provider,
                "consumer_id": consumer,
                "operation": record["operation"],
                "outcome": outcome,
                "fee_fen": record["fee_fen"],
                "appended_at": at,
                "submitted_by": consumer,
            }
        )
    return out


def _chunk(args: tuple[int, int, int]) -> list[dict[str, Any]]:
    return _rows(*args)


def build(db_url: str, total: int) -> None:
    """The space's tables for a log of ``total`` records, written directly."""
    migrate(db_url, "space:migrations")
    database = Database(db_url)
    with database.transaction() as session:
        for n, party in enumerate(PARTIES):
            public = KEYS[party].public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
            session.add(
                Participant(
                    id=party, legal_name=f"Bench participant {n}", credit_code=f"9141010000000{n:05d}",
                    roles=["provider", "consumer"], jurisdiction="CN-HA", public_key=b64url(public),
                    endpoint=f"http://127.0.0.1:1/{party}", status="admitted", credential=None,
                    admitted_at=utcnow(),
                )
            )  # fmt: skip
    frontier: dict[tuple[int, int], bytes] = {}
    days: dict[tuple[str, str], int] = {}
    jobs = [(first, min(CHUNK, total - first), total) for first in range(0, total, CHUNK)]
    with ProcessPoolExecutor(2) as pool:
        for done, rows in enumerate(pool.map(_chunk, jobs), 1):
            nodes = []
            for row in rows:
                leaf = bytes.fromhex(row["leaf_hash"])
                added = merkle.append_leaf(frontier, row["seq"], leaf)
                nodes += [{"level": level, "idx": index, "hash": value} for level, index, value in added]
                key = (row["signed"]["document"]["finished_at"][:10], row["outcome"])
                days[key] = days.get(key, 0) + 1
            with database.transaction() as session:
                session.execute(insert(LedgerEntry), rows)
                session.execute(MerkleNode.__table__.insert(), nodes)
            print(f"\r  built {done * CHUNK:,} of {total:,} records", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    with database.transaction() as session:
        session.execute(
            insert(DailyUsage), [{"day": d, "outcome": o, "uses": n} for (d, o), n in days.items()]
        )
        head = session.get(LedgerHead, 1)
        assert head is not None
        head.size = total
    database.dispose()


def sign_in(http: httpx.Client, token: str) -> None:
    form = http.get("/console/login").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert csrf
    answer = http.post("/console/login", data={"token": token, "csrf_token": csrf[1]})
    assert answer.status_code == 302, answer.text


def timed(http: httpx.Client, path: str, repeat: int) -> tuple[float, int]:
    times = []
    rows = 0
    for _ in range(repeat):
        start = time.perf_counter()
        answer = http.get(path)
        times.append((time.perf_counter() - start) * 1000)
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:500])
        rows = len(re.findall(r'<a href="/console/log/\d+">', answer.text))
    return statistics.median(times), rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000, help="usage records in the log")
    parser.add_argument("--repeat", type=int, default=20, help="fetches of each page")
    parser.add_argument("--keep", type=Path, help="build the database here (and reuse it if it exists)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes, one run: checks the path, not speed"
    )
    args = parser.parse_args()
    if args.smoke:
        args.records, args.repeat = 2_000, 2
    say = (lambda *_: None) if args.json else print
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        db_path = (args.keep or root) / "console.db"
        start = time.perf_counter()
        if not db_path.exists():
            db_path.parent.mkdir(parents=True, exist_ok=True)
            build(f"sqlite:///{db_path}", args.records)
        say(f"log of {args.records:,} records ready in {time.perf_counter() - start:.0f} s")
        mid = args.records // 2
        window = (START + SPAN * 0.5).astimezone(dt.timezone(dt.timedelta(hours=8)))
        pages = {
            "overview": "/console/",
            "log_first_page": "/console/log",
            "log_deep_page": f"/console/log?before={mid}",
            "log_outcome_failed": "/console/log?outcome=failed",
            "log_participant": "/console/log?participant=p07",
            "log_participant_failed": "/console/log?participant=p07&outcome=failed",
            "log_dataset_denied": "/console/log?dataset=urn:uuid:dataset-13&outcome=denied",
            "log_agreement": "/console/log?agreement=urn:uuid:agreement-123",
            # no match at all: each page searches its window of 50 000 records and says so
            "log_no_match": "/console/log?dataset=urn:uuid:dataset-13&operation=psi.cardinality",
            "log_unknown_participant": "/console/log?participant=nobody&outcome=succeeded",
            "log_time_window": "/console/log?since={}&until={}".format(
                window.strftime("%Y-%m-%dT%H:%M"), (window + dt.timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M")
            ),
            "record_with_proof": f"/console/log/{mid + 17}",
            "chart_usage_svg": "/console/charts/usage.svg?lang=en",
        }
        with cluster(root / "nodes", db_url=f"sqlite:///{db_path}") as live:
            operator = live.operator()
            token = operator.post("/admin/tokens", {"role": "auditor", "label": "bench"})["token"]
            operator.close()
            with httpx.Client(base_url=live.space.url, trust_env=False, timeout=60) as http:
                sign_in(http, token)
                baseline, _ = timed(http, "/healthz", args.repeat)
                report: dict[str, Any] = {"records": args.records, "healthz_ms": round(baseline, 2)}
                say(f"baseline GET /healthz: {baseline:.1f} ms (median of {args.repeat})")
                for name, path in pages.items():
                    timed(http, path, 2)  # warm the page cache, as a working console would be
                    median, rows = timed(http, path, args.repeat)
                    report[f"{name}_ms"] = round(median, 2)
                    ratio = median / baseline
                    say(f"{name:<24} {median:7.1f} ms  ({ratio:5.1f}× baseline, {rows} rows)  {path}")
        slowest = max(v for k, v in report.items() if k.startswith("log_") and k.endswith("_ms"))
        report["slowest_list_page_ms"] = slowest
        say(f"slowest list page: {slowest:.1f} ms (target ≤ 250 ms at 1 000 000 records)")
    if args.json:
        print(json.dumps(report))


if __name__ == "__main__":
    main()
