"""Ledger benchmark: append rate through the HTTP API, inclusion proofs at a million leaves,
and `tds audit verify` over the whole log.

(a) appends/s: --records signed usage records (under an agreement recorded at the space, which
    checks every record against it; provider and consumer signatures, prepared
    beforehand) sent by one participant to a space running as its own process, in batches of
    --batch through POST /ledger/batch; on SQLite (the default) and on a throwaway PostgreSQL
    cluster with fsync on. For reference, --singles records sent one per request.
(b) proof_ms_1m: a log of 1 000 000 leaves (its subtree store written directly: proofs do not
    read the records), the median time of --proofs inclusion proofs for random leaves against
    the full tree, in process (one query for the O(log n) stored hashes, then hashing) and
    through GET /ledger/proof/inclusion on a space serving that database.
(c) verify_100k_s: `tds audit verify` as an auditor runs it against the space of (a): fetch
    every record, head and key over HTTP, check every signature, recompute every head's root.

Targets (issue 5): ≥ 1 000 appends/s on SQLite, proof ≤ 5 ms, verify ≤ 60 s for 100 000.
--json prints one JSON object.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from contracts import merkle
from contracts.agreements import build_agreement
from contracts.documents import new_signed, sign_document
from contracts.keys import SigningKey
from contracts.offers import parse_offer
from contracts.usage import build_record
from node import clock
from node.db import Database, migrate
from node.signing import SignedClient
from policies.model import format_datetime
from space import tree
from space.models import LedgerHead, MerkleNode
from tds.local import cluster, create_postgres_database, postgres_cluster

FIELDS: dict[str, Any] = dict(
    job="urn:uuid:j", provider="telecom", consumer="bank", operation="psi.cardinality",
    purpose="risk-control", outcome="succeeded", reason="completed", consumer_set_size=10,
    provider_set_size=12, fee_fen=5000,
)  # fmt: skip
OFFER = {
    "policy": {"permission": [{"action": "psi.cardinality"}]},
    "price": {"model": "per_job", "amount_fen": 5000},
}
DATASET = {
    "name": "bench", "title": "subscribers", "sector": "telecom", "key_column": "phone", "row_count": 12,
    "columns": [{"name": "phone", "type": "string", "tags": ["phone"]}], "classification": "general",
    "pi_level": "general", "jurisdiction": "CN-HA",
}  # fmt: skip


def agreed(url: str, telecom: SigningKey, bank: SigningKey) -> dict[str, Any]:
    """The space checks every record against its agreement: publish an entry and record an
    agreement on it, signed by both parties; the record fields that name them."""
    provider, consumer = SignedClient("telecom", telecom), SignedClient("bank", bank)
    try:
        entry = provider.send("POST", f"{url}/catalog", json={"dataset": DATASET, "offers": [OFFER]}).json()
        offer = entry["offers"][0]
        document = build_agreement(
            offer_id=offer["id"], offer=parse_offer(OFFER, "telecom"), dataset_id=entry["id"],
            provider="telecom", consumer="bank", purpose="risk-control", operations=["psi.cardinality"],
            consumer_pid=f"urn:uuid:{uuid.uuid4()}", provider_pid=f"urn:uuid:{uuid.uuid4()}", now=clock.now(),
        )  # fmt: skip
        signed = sign_document(new_signed(document, "telecom", telecom), "bank", bank)
        consumer.send("POST", f"{url}/agreements", json=signed)
    finally:
        provider.close()
        consumer.close()
    an_hour_ago = clock.now() - dt.timedelta(hours=1)
    return {
        "agreement": document["@id"],
        "dataset": entry["id"],
        "started_at": format_datetime(an_hour_ago),
        "finished_at": format_datetime(an_hour_ago + dt.timedelta(seconds=1)),
    }


def _sign(args: tuple[int, Path, Path, dict[str, Any]]) -> list[dict[str, Any]]:
    count, provider_key, consumer_key, agreement = args
    provider, consumer = SigningKey.load(provider_key), SigningKey.load(consumer_key)
    out = []
    for _ in range(count):
        record = build_record(**FIELDS, **agreement, id=f"urn:uuid:{uuid.uuid4()}")
        out.append(sign_document(new_signed(record, "telecom", provider), "bank", consumer))
    return out


def signed_records(
    count: int, provider_key: Path, consumer_key: Path, agreement: dict[str, Any]
) -> list[dict[str, Any]]:
    """``count`` records under ``agreement`` signed by both parties, prepared on every core."""
    chunks = [(min(5000, count - i), provider_key, consumer_key, agreement) for i in range(0, count, 5000)]
    with ProcessPoolExecutor() as pool:
        return [r for part in pool.map(_sign, chunks) for r in part]


def append_rate(db_url: str | None, root: Path, records: int, batch: int, singles: int) -> dict[str, Any]:
    with cluster(root, db_url=db_url) as live:
        telecom = live.add_connector("telecom", "Telecom", 91, start=False)
        bank = live.add_connector("bank", "Bank", 92, start=False)
        agreement = agreed(live.space.url, telecom.config.key(), bank.config.key())
        prepared = signed_records(
            records + singles, telecom.config.path / "node.key", bank.config.path / "node.key", agreement
        )
        client = SignedClient("telecom", telecom.config.key(), timeout=300)
        url = live.space.url
        start = time.perf_counter()
        for i in range(0, records, batch):
            client.send("POST", f"{url}/ledger/batch", json={"records": prepared[i : i + batch]})
        batched_s = time.perf_counter() - start
        start = time.perf_counter()
        for signed in prepared[records:]:
            client.send("POST", f"{url}/ledger/records", json=signed)
        singles_s = time.perf_counter() - start
        client.close()
        result: dict[str, Any] = {
            "records": records,
            "batch": batch,
            "appends_per_s": round(records / batched_s, 1),
            "single_appends_per_s": round(singles / singles_s, 1) if singles else None,
        }
        if db_url is None:
            result["verify_s"] = audit_verify(live.space.url, live.operator(), root)
        return result


def audit_verify(url: str, operator: Any, root: Path) -> float:
    token = operator.post("/admin/tokens", {"role": "auditor", "label": "bench"})["token"]
    operator.close()
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "tds.cli", "--json", "audit", "verify", "--space", url, "--token", token,
         "--state", str(root / "auditor")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    if done.returncode != 0 or not json.loads(done.stdout)["ok"]:
        sys.exit(f"audit verify failed: {done.stdout[-500:]} {done.stderr[-500:]}")
    return round(elapsed, 2)


def build_million(db_url: str, leaves: int) -> bytes:
    """Writes the subtree store of a log of ``leaves`` synthetic leaves; returns its root."""
    migrate(db_url, "space:migrations")
    database = Database(db_url)
    frontier: dict[tuple[int, int], bytes] = {}
    rows: list[dict[str, Any]] = []
    with database.transaction() as session:
        for i in range(leaves):
            leaf = merkle.leaf_hash(hashlib.sha256(i.to_bytes(8, "big")).digest())
            rows += [
                {"level": lv, "index": ix, "hash": h} for lv, ix, h in merkle.append_leaf(frontier, i, leaf)
            ]
            if len(rows) >= 50_000:
                session.execute(
                    MerkleNode.__table__.insert(),
                    [{"level": r["level"], "idx": r["index"], "hash": r["hash"]} for r in rows],
                )
                rows.clear()
        if rows:
            session.execute(
                MerkleNode.__table__.insert(),
                [{"level": r["level"], "idx": r["index"], "hash": r["hash"]} for r in rows],
            )
        head = session.get(LedgerHead, 1)
        assert head is not None
        head.size = leaves
    with database.session() as session:
        root = tree.root_at(session, leaves)
    database.dispose()
    return root


def proof_times(db_url: str, leaves: int, count: int, root: bytes) -> list[float]:
    database = Database(db_url)
    rng = random.Random(3)
    times = []
    with database.session() as session:
        for _ in range(count):
            index = rng.randrange(leaves)
            start = time.perf_counter()
            proof = tree.inclusion_proof(session, index, leaves)
            times.append((time.perf_counter() - start) * 1000)
            leaf = merkle.leaf_hash(hashlib.sha256(index.to_bytes(8, "big")).digest())
            merkle.verify_inclusion(index, leaves, leaf, [bytes.fromhex(h) for h in proof], root)
    database.dispose()
    return times


def proof_over_http(db_path: Path, root: Path, leaves: int, count: int) -> list[float]:
    """The same proofs through a space process serving the million-leaf database."""
    with cluster(root, db_url=f"sqlite:///{db_path}") as live:
        operator = live.operator()
        rng = random.Random(4)
        times = []
        with httpx.Client(base_url=live.space.url, headers=operator.http.headers, trust_env=False) as http:
            for _ in range(count):
                start = time.perf_counter()
                answer = http.get(
                    "/ledger/proof/inclusion", params={"index": rng.randrange(leaves), "size": leaves}
                )
                times.append((time.perf_counter() - start) * 1000)
                assert answer.status_code == 200, answer.text
        operator.close()
        return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=100_000, help="records appended on SQLite")
    parser.add_argument("--pg-records", type=int, default=20_000, help="records appended on PostgreSQL")
    parser.add_argument("--batch", type=int, default=500, help="records per batch request")
    parser.add_argument("--singles", type=int, default=500, help="records appended one per request")
    parser.add_argument("--leaves", type=int, default=1_000_000, help="leaves of the proof benchmark's log")
    parser.add_argument("--proofs", type=int, default=200, help="inclusion proofs timed")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes, one run: checks the path, not speed"
    )
    args = parser.parse_args()
    if args.smoke:
        args.records, args.pg_records, args.batch, args.singles = 300, 100, 50, 20
        args.leaves, args.proofs = 2_000, 10
    say = (lambda *_: None) if args.json else print
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sqlite = append_rate(None, root / "sqlite", args.records, args.batch, args.singles)
        report.update(
            appends_per_s_sqlite=sqlite["appends_per_s"],
            single_appends_per_s_sqlite=sqlite["single_appends_per_s"],
            verify_records=args.records + args.singles,
            verify_100k_s=sqlite["verify_s"],
        )
        say(f"SQLite: {sqlite['appends_per_s']:.0f} appends/s in batches of {args.batch} (target ≥ 1000), "
            f"{sqlite['single_appends_per_s']:.0f}/s one per request; {args.records} records")  # fmt: skip
        verified = args.records + args.singles
        say(f"tds audit verify over {verified} records: {sqlite['verify_s']:.1f} s (target ≤ 60 s)")
        with postgres_cluster(fsync=True) as base:
            pg = append_rate(
                create_postgres_database(base, "bench"),
                root / "pg",
                args.pg_records,
                args.batch,
                args.singles,
            )
        report.update(
            appends_per_s_postgres=pg["appends_per_s"],
            single_appends_per_s_postgres=pg["single_appends_per_s"],
        )
        say(f"PostgreSQL (fsync on): {pg['appends_per_s']:.0f} appends/s in batches, "
            f"{pg['single_appends_per_s']:.0f}/s one per request; {args.pg_records} records")  # fmt: skip
        db_path = root / "million.db"
        start = time.perf_counter()
        tree_root = build_million(f"sqlite:///{db_path}", args.leaves)
        build_s = time.perf_counter() - start
        local = proof_times(f"sqlite:///{db_path}", args.leaves, args.proofs, tree_root)
        remote = proof_over_http(db_path, root / "proofs", args.leaves, args.proofs)
        report.update(
            proof_ms_1m=round(statistics.median(local), 3),
            proof_ms_1m_http=round(statistics.median(remote), 3),
            proof_leaves=args.leaves,
        )
        say(f"inclusion proof at {args.leaves} leaves: {report['proof_ms_1m']:.2f} ms in process, "
            f"{report['proof_ms_1m_http']:.2f} ms over HTTP (medians of {args.proofs}; target ≤ 5 ms; "
            f"store built in {build_s:.0f} s)")  # fmt: skip
    if args.json:
        print(json.dumps(report))


if __name__ == "__main__":
    main()
