import json
import subprocess
import sys
from pathlib import Path

from contracts.settlement import period_of
from node import clock
from tds.demo import phone_sets
from tds.demo_he import LAB_ROWS
from tds.local import cluster
from tests.integration.conftest import agreed, ledger_for, run_job
from tests.integration.helpers import verified_log


def test_demo_json_reports_the_story() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tds.cli", "--json", "demo", "--n", "3000", "--overlap", "700"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["psi_cardinality"] == report["expected_cardinality"] == 700
    assert report["psi_intersection_size"] == 700
    assert (
        report["denied_reason"]
        == "denied by provider: psi.cardinality not permitted: count lteq 2: count is 4"
    )
    assert report["agreement_id"].startswith("urn:uuid:")
    # psi.sum: the matched subscribers' ARPU per plan, as tds.demo writes the telecom's rows
    bank, telecom = phone_sets(3000, 700)
    by_plan: dict[str, list[int]] = {"4G": [0, 0], "5G": [0, 0]}
    for i, phone in enumerate(telecom):
        if phone in set(bank):
            by_plan["5G" if i % 2 else "4G"][0] += 1
            by_plan["5G" if i % 2 else "4G"][1] += 30 + (i * 37) % 170
    assert report["psi_sum"] == {
        "status": "succeeded",
        "cardinality": 700,
        "by_plan": {plan: [count, str(total)] for plan, (count, total) in by_plan.items()},
    }
    # he.score of the bank's first 1000 customers: those the telecom holds are scored
    held = len(set(bank[:1000]) & set(telecom))
    assert report["he_score"] == {
        "status": "succeeded",
        "ids": 1000,
        "scored": held,
        "not_found": 1000 - held,
    }
    aggregate = report["he_aggregate"]
    assert (aggregate["status"], aggregate["contributors"]) == ("succeeded", 3)
    assert (
        abs(aggregate["count"] - sum(LAB_ROWS)) < 1000
    )  # ε = 1 per hospital: noise of a few hundred at most
    assert 5.0 < aggregate["mean"] < 6.6  # glucose ~ N(5.8, 1.3), clipped to [2, 20]
    # the bank's reviewed script: tried on the mock, approved, released: ARPU by four tenure bands
    script = report["script"]
    assert (script["status"], script["bands"]) == ("succeeded", 4)
    assert script["columns"] == ["band", "n", "mean_arpu"]
    # 9 uses (three PSI, one denied, he.score, three parts, the script) and the script's 4 steps
    # (submitted, mock-run, approved, released); the receipts the connectors hold
    assert report["ledger_records"] == 13
    assert report["audit"] == {"ok": True, "records": 13, "heads": report["audit"]["heads"], "receipts": 22}
    preview = report["settlement_preview"]
    assert preview["provisional"] is True and preview["period"] == period_of(clock.now())
    # 3 × 5000 (PSI) + 1000 ids × 2 fen (he.score) + 3 × 800 (he.aggregate) + 3000 (the
    # script); 5 % commission
    assert (preview["fees_fen"], preview["commission_fen"]) == (22400, 1120)
    assert preview["net_fen"] == {
        "bank": -20000, "telecom": 19000, "institute": -2400, "space": 1120,
        "hospital-kf": 760, "hospital-ly": 760, "hospital-zz": 760,
    }  # fmt: skip


def test_the_story_with_the_space_on_postgresql(postgres_db: str, tmp_path: Path) -> None:
    numbers = [f"139{i:08d}" for i in range(1500)]
    (tmp_path / "a.csv").write_text("phone\n" + "\n".join(numbers[:1000]) + "\n")
    (tmp_path / "b.csv").write_text("phone\n" + "\n".join(numbers[600:]) + "\n")
    with cluster(tmp_path / "nodes", db_url=postgres_db) as live:
        assert live.space.config.db.startswith("postgresql+psycopg://")
        live.add_connector("bank", "Bank", 21)
        live.add_connector("telecom", "Telecom", 22)
        bank, telecom, operator = (
            live.connectors["bank"].api(),
            live.connectors["telecom"].api(),
            live.operator(),
        )
        try:
            agreement = agreed(bank, telecom, tmp_path / "b.csv")
            job = run_job(bank, agreement, "psi.cardinality", tmp_path / "a.csv")
            assert job["summary"] == {"cardinality": 400}
            records = ledger_for(operator, bank, telecom, agreement, 1)
            assert records[0]["signed"]["document"]["outcome"] == "succeeded"
            verified_log(operator)
        finally:
            for api in (bank, telecom, operator):
                api.close()
