"""``tds status`` on a connector and on the space, real processes: healthy nodes say so and exit
0; a suspended peer, then a space that does not answer, are problems said with what they mean,
and the command exits 6."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tds.local import cluster, negotiate, publish_dataset, run_job
from tests.integration.conftest import ledger_for

OFFER = {
    "policy": {"permission": [{"action": "psi.cardinality"}]},
    "price": {"model": "per_job", "amount_fen": 100},
    "auto_approve": True,
}


def status(data_dir: Path) -> tuple[int, dict[str, Any], str]:
    done = subprocess.run(
        [sys.executable, "-m", "tds.cli", "status", "--json", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, json.loads(done.stdout), done.stderr


def test_status_of_a_connector_and_of_the_space(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("phone\n" + "".join(f"139{i:08d}\n" for i in range(200)))
    (tmp_path / "b.csv").write_text("phone\n" + "".join(f"139{i:08d}\n" for i in range(100, 300)))
    with cluster(tmp_path / "nodes") as live:
        bank, telecom = live.add_connector("bank", "Bank", 89), live.add_connector("telecom", "Telecom", 90)
        consumer, provider, operator = bank.api(), telecom.api(), live.operator()
        try:
            entry = publish_dataset(provider, "subs", tmp_path / "b.csv", OFFER)
            agreement = negotiate(consumer, entry["offers"][0]["id"], ["psi.cardinality"])["agreement_id"]
            assert (
                run_job(consumer, agreement, "psi.cardinality", tmp_path / "a.csv")["status"] == "succeeded"
            )
            ledger_for(operator, consumer, provider, agreement, 1)
            code, found, _ = status(Path(bank.config.data_dir))
            assert (code, found["healthy"], found["problems"]) == (0, True, [])
            assert found["membership"]["status"] == "admitted"
            assert found["membership"]["credential_days_left"] == 364  # admitted for 365 days, moments ago
            assert [(p["id"], p["status"], p["credential_days_left"]) for p in found["peers"]] == [
                ("telecom", "admitted", 364)
            ]
            assert (found["jobs_running"], found["outbox"]["oldest_undelivered_age_s"]) == (0, 0.0)
            told = subprocess.run(
                [sys.executable, "-m", "tds.cli", "status", "--data-dir", str(bank.config.data_dir)],
                capture_output=True, text=True, timeout=120, check=True,
            ).stdout.splitlines()  # fmt: skip
            assert told[0] == "bank: healthy"
            assert told[-1] == "  peers       1: telecom (admitted, 364 days)"
            code, found, _ = status(Path(telecom.config.data_dir))
            assert (code, found["outbox"]["records"]["delivered"], found["outbox"]["records"]["ready"]) == (
                0,
                1,
                0,
            )
            code, found, _ = status(Path(live.space.config.data_dir))
            assert (code, found["healthy"], found["participants"]) == (0, True, {"admitted": 2})
            assert found["ledger"]["leaves"] == found["ledger"]["signed_size"] >= 1
            operator.post("/admin/participants/telecom/suspend")
            code, found, stderr = status(Path(bank.config.data_dir))
            assert (code, found["healthy"]) == (6, False)
            assert found["problems"] == ["peer (telecom) is suspended at the space, not admitted"]
            assert "1 problem needs action: peer (telecom) is suspended at the space, not admitted" in stderr
            live.space.stop()
            code, found, _ = status(Path(bank.config.data_dir))
            assert (code, found["space"]["reachable"], found["membership"], found["peers"]) == (
                6,
                False,
                None,
                [],
            )
            (problem,) = found["problems"]
            assert problem.startswith(f"the space at {live.space.url} did not answer: ")
            assert problem.endswith("; nothing can be agreed or recorded")
        finally:
            consumer.close()
            provider.close()
            operator.close()
