import json
import subprocess
import sys
from pathlib import Path

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
        == "denied by provider: psi.cardinality not permitted: count lteq 2: count is 3"
    )
    assert report["ledger_records"] == 3
    assert report["agreement_id"].startswith("urn:uuid:")


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
