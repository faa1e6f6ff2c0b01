"""`tds audit verify` and `tds audit export` against a live space, and what they report when
the operator's database is tampered with: a record, a signature, the order of two leaves, a
tree head; receipts held by a connector; an auditor who tries to change something."""

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tds.local import Cluster, cluster, negotiate, publish_dataset, run_job
from tests.integration.helpers import cardinality_offer, phone_sets


def tds(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tds.cli", *args], capture_output=True, text=True, check=False
    )


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A space with three records in its log, an auditor token and the bank's receipts."""
    root = tmp_path_factory.mktemp("audit")
    phone_sets(root, "139", range(200), range(100, 300))
    offer = cardinality_offer({"model": "per_job", "amount_fen": 900})
    with cluster(root / "nodes") as live:
        bank, telecom = (
            live.add_connector("bank", "Bank", 71).api(),
            live.add_connector("telecom", "Tel", 72).api(),
        )
        entry = publish_dataset(telecom, "subs", root / "b.csv", offer)
        agreement = negotiate(bank, entry["offers"][0]["id"], ["psi.cardinality"])["agreement_id"]
        for _ in range(3):
            assert run_job(bank, agreement, "psi.cardinality", root / "a.csv")["status"] == "succeeded"
        for api in (bank, telecom):
            api.wait_for("/api/outbox", lambda o: not o["pending"], timeout=30)
        operator = live.operator()
        token = operator.post("/admin/tokens", {"role": "auditor", "label": "audit office"})["token"]
        operator.close()
        receipts = root / "receipts.jsonl"
        done = tds(
            "--data-dir",
            str(live.connectors["bank"].config.path),
            "outbox",
            "receipts",
            "--out",
            str(receipts),
        )
        assert done.returncode == 0, done.stderr
        bank.close()
        telecom.close()
        yield {"live": live, "token": token, "receipts": receipts, "root": root}


def verify(audited: dict[str, Any], state: Path, *extra: str) -> subprocess.CompletedProcess:
    live: Cluster = audited["live"]
    return tds("--json", "audit", "verify", "--space", live.space.url, "--token", audited["token"],
               "--state", str(state), *extra)  # fmt: skip


@contextmanager
def tampered(live: Cluster, *statements: str | tuple[str, tuple[Any, ...]]) -> Iterator[None]:
    """Changes the space's own database behind its back, then puts it back as it was."""
    path = live.space.config.path / "tds.db"
    with sqlite3.connect(path) as db:
        before = {t: db.execute(f"SELECT * FROM {t}").fetchall() for t in ("ledger_entries", "tree_heads")}
        for statement in statements:
            sql, params = statement if isinstance(statement, tuple) else (statement, ())
            db.execute(sql, params)
    try:
        yield
    finally:
        with sqlite3.connect(path) as db:
            for table, rows in before.items():
                db.execute(f"DELETE FROM {table}")
                marks = ",".join("?" * len(rows[0]))
                db.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)


def problems(done: subprocess.CompletedProcess) -> list[str]:
    assert done.returncode == 1, done.stdout + done.stderr
    error = json.loads(done.stderr)  # under --json the error too is JSON, on stderr
    assert error["exit_code"] == 1 and error["error"].startswith("the log does not verify")
    return list(json.loads(done.stdout)["problems"])


def test_an_intact_log_verifies_with_the_receipts_and_the_export(audited, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    done = verify(audited, tmp_path, "--receipts", str(audited["receipts"]))
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert (report["ok"], report["records"], report["receipts"], report["tree_size"]) == (True, 3, 3, 3)
    state = json.loads((tmp_path / "audit-state.json").read_text())
    (space,) = state["spaces"].values()
    assert [h["document"]["tree_size"] for h in space["seen"]] == [3]
    assert oct((tmp_path / "audit-state.json").stat().st_mode & 0o777) == "0o600"

    export = tmp_path / "log.jsonl"
    live: Cluster = audited["live"]
    done = tds(
        "audit", "export", "--out", str(export), "--space", live.space.url, "--token", audited["token"]
    )
    assert done.returncode == 0 and done.stdout.startswith(f"wrote {export}: 3 records"), done.stderr
    offline = tds("--json", "audit", "verify", "--export", str(export), "--state", str(tmp_path))
    assert offline.returncode == 0 and json.loads(offline.stdout)["records"] == 3

    lines = export.read_text().splitlines()
    record = json.loads(lines[-1])
    record["signed"]["document"]["fee_fen"] = 1
    export.write_text("\n".join([*lines[:-1], json.dumps(record)]) + "\n")
    found = problems(tds("--json", "audit", "verify", "--export", str(export), "--state", str(tmp_path)))
    assert "leaf 2 (" in found[0] and found[0].endswith("signature of telecom does not verify")


def test_a_tampered_record_is_reported(audited, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with tampered(
        audited["live"],
        "UPDATE ledger_entries SET signed = json_set(signed, '$.document.fee_fen', 1) WHERE seq = 1",
    ):
        found = problems(verify(audited, tmp_path))
    assert any(p.startswith("leaf 1 (") and p.endswith("signature of telecom does not verify") for p in found)
    assert any(p.startswith("leaf 1 (") and p.endswith("signature of bank does not verify") for p in found)
    assert "leaf 1: the stored leaf hash is not the hash of the stored record" in found
    assert "head of size 3: the records do not hash to its root" in " ".join(found)


def test_a_tampered_signature_is_reported(audited, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    forged = "A" * 86
    sql = "UPDATE ledger_entries SET signed = json_set(signed, '$.signatures.bank', ?) WHERE seq = 0"
    with tampered(audited["live"], (sql, (forged,))):
        found = problems(verify(audited, tmp_path))
    assert any(p.startswith("leaf 0 (") and p.endswith("signature of bank does not verify") for p in found)
    assert any(p.startswith("head of size 1: the records do not hash") for p in found)


def test_two_swapped_leaves_are_reported(audited, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    move = "UPDATE ledger_entries SET seq = {} WHERE seq = {}"
    swap = (move.format(-1, 0), move.format(0, 1), move.format(1, -1))
    with tampered(audited["live"], *swap):
        found = problems(verify(audited, tmp_path))
    assert [p.split(":")[0] for p in found] == ["head of size 1", "head of size 2", "head of size 3"]
    assert all(p.endswith("(a record was altered, removed, inserted or reordered)") for p in found)


def test_a_tampered_tree_head_is_reported(audited, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sql = "UPDATE tree_heads SET signed = json_set(signed, '$.document.root_hash', ?) WHERE size = 2"
    with tampered(audited["live"], (sql, ("ab" * 32,))):
        found = problems(verify(audited, tmp_path))
    assert found == ["head: tree head: signature of space: signature does not verify"]


def test_a_rewritten_history_is_caught_by_the_heads_seen_before(audited, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert verify(audited, tmp_path).returncode == 0  # the auditor saw size 3 once
    # the operator drops the last record and the head over it: a log consistent in itself
    with tampered(
        audited["live"], "DELETE FROM ledger_entries WHERE seq = 2", "DELETE FROM tree_heads WHERE size = 3"
    ):
        found = problems(verify(audited, tmp_path))
    assert found == ["head of size 3: the log has only 2 records"]


def test_a_tampered_receipt_is_reported(audited, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lines = audited["receipts"].read_text().splitlines()
    held = json.loads(lines[0])
    held["receipt"]["leaf_index"] = 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(held) + "\n")
    found = problems(verify(audited, tmp_path, "--receipts", str(bad)))
    assert len(found) == 1 and found[0].startswith(
        f"receipt for {held['receipt']['record_id']}: receipt for leaf 2"
    )


def test_an_auditor_can_read_but_change_nothing(audited) -> None:  # type: ignore[no-untyped-def]
    live: Cluster = audited["live"]
    headers = {"Authorization": f"Bearer {audited['token']}"}
    with httpx.Client(base_url=live.space.url, headers=headers, trust_env=False) as auditor:
        for path in ("/ledger/records", "/ledger/head", "/ledger/heads", "/ledger/alerts"):
            assert auditor.get(path).status_code == 200, path
        assert auditor.get("/ledger/proof/inclusion", params={"index": 0, "size": 3}).status_code == 200
        assert auditor.get("/ledger/proof/consistency", params={"first": 1, "second": 3}).status_code == 200
        size = auditor.get("/ledger/head").json()["tree_size"]
        for path in ("/ledger/records", "/ledger/batch"):
            refused = auditor.post(path, json={"records": []})
            assert refused.status_code == 401, (path, refused.text)
            assert refused.headers["content-type"] == "application/problem+json"
        assert auditor.get("/ledger/head").json()["tree_size"] == size
