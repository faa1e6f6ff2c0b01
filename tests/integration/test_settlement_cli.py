"""Settlement through the command line against live processes: the operator settles a closed
month, anyone with a token downloads a statement whose sums add up, the index is printed, and an
auditor can read all of it but settle nothing."""

import csv
import datetime as dt
import io
import json
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from contracts.documents import new_signed, sign_document
from contracts.usage import build_record
from node import clock
from node.signing import SignedClient
from tds.local import cluster, negotiate, publish_dataset
from tests.conftest import USAGE_FIELDS, at, period, period_end
from tests.integration.helpers import cardinality_offer, phone_sets


def tds(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tds.cli", *args], capture_output=True, text=True, check=False
    )


# The same story today and with every node's clock moved to other dates (node.clock): across a
# year's end, on a month's first day, in a leap February, and years ahead.
INJECTED = [None, "2025-01-01T00:00:30Z", "2028-03-15T12:00:00Z", "2035-12-31T20:00:00Z"]


@pytest.mark.parametrize("today", INJECTED, ids=[w or "today" for w in INJECTED])
def test_settle_a_month_download_statements_and_read_the_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, today: str | None
) -> None:
    if today is not None:
        monkeypatch.setenv(clock.ENV, clock.offset_to(dt.datetime.fromisoformat(today)))
    last, current, before = period(-1), period(0), period(-2)
    phone_sets(tmp_path, "138", range(0), range(50))
    offer = cardinality_offer({"model": "per_job", "amount_fen": 1001})
    with cluster(tmp_path / "nodes") as live:
        bank_node = live.add_connector("bank", "Bank", 81)
        telecom_node = live.add_connector("telecom", "Telecom", 82)
        live.add_connector("coop", "Coop", 83, start=False)
        bank, telecom = bank_node.api(), telecom_node.api()
        offer["revenue_share"] = [
            {"party": "telecom", "role": "provider", "bp": 6000},
            {"party": "coop", "role": "co-contributor", "bp": 4000},
        ]
        entry = publish_dataset(telecom, "subs", tmp_path / "b.csv", offer, sector="telecom")
        agreement = negotiate(bank, entry["offers"][0]["id"], ["psi.cardinality"])["agreement_id"]
        bank.close()
        telecom.close()
        # three uses that finished last month, signed by both parties as their connectors would
        client = SignedClient("telecom", telecom_node.config.key())
        for day in (3, 4, 5):
            started, finished = at(last, day, "09:59:00"), at(last, day)
            fields = {**USAGE_FIELDS, "id": f"urn:uuid:{uuid.uuid4()}", "agreement": agreement}
            fields |= {
                "dataset": entry["id"],
                "fee_fen": 1001,
                "started_at": started,
                "finished_at": finished,
            }
            signed = new_signed(build_record(**fields), "telecom", telecom_node.config.key())
            signed = sign_document(signed, "bank", bank_node.config.key())
            client.send("POST", f"{live.space.url}/ledger/records", json=signed)
        client.close()

        space_dir = str(live.space.config.path)
        # before settling: the closed month as it would settle, unsigned and provisional
        shown = tds("--data-dir", space_dir, "settle", "--preview", "--period", last)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.splitlines()[0].startswith("PROVISIONAL, as of ")
        assert shown.stdout.splitlines()[0].endswith(
            f"(unsigned; the period is not settled): period {last}: 1 agreement, fees 3003 fen, "
            "commission 150 fen (500 bp), over the log's first 3 records"
        )
        preview = json.loads(tds("--data-dir", space_dir, "--json", "settle", "--preview").stdout)
        assert (preview["period"], preview["provisional"], preview["summary"]["fees_fen"]) == (
            current,
            True,
            0,
        )
        usage = tds("--data-dir", space_dir, "settle")
        assert (usage.returncode, usage.stderr.splitlines()[-1]) == (
            2,
            "Error: give --period YYYY-MM (a closed month), or --preview",
        )
        done = tds("--data-dir", space_dir, "settle", "--period", last)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[0] == (
            f"period {last}: 1 agreement, fees 3003 fen, commission 150 fen (500 bp), "
            "over the log's first 3 records"
        )
        assert done.stdout.splitlines()[1].endswith("3 uses, 3003 fen → telecom 1712, coop 1141")
        again = tds("--data-dir", space_dir, "--json", "settle", "--period", last)
        assert json.loads(again.stdout)["document"]["fees_fen"] == 3003
        refused = tds("--data-dir", space_dir, "settle", "--period", current)
        assert refused.returncode == 1
        assert refused.stderr.strip().endswith(
            f"period {current} is not over until {period_end(current)}; settle closed periods only"
        )

        operator = live.operator()
        token = operator.post("/admin/tokens", {"role": "auditor"})["token"]
        operator.close()
        auditor = ["--space", live.space.url, "--token", token]
        out = tmp_path / "coop.csv"
        done = tds("statement", "--period", last, "--participant", "coop", "--out", str(out), *auditor)
        assert done.returncode == 0, done.stderr
        lines = list(csv.DictReader(io.StringIO(out.read_text())))
        assert [(r["role"], r["amount_fen"]) for r in lines] == [("co-contributor", "1141"), ("net", "1141")]

        def statement(who: str) -> dict:
            args = ("statement", "--period", last, "--participant", who, "--format", "json")
            return dict(json.loads(tds(*args, *auditor).stdout))

        payees = [statement(who)["document"]["receivable_fen"] for who in ("telecom", "coop", "space")]
        assert statement("bank")["document"]["payable_fen"] == sum(payees) == 3003
        settled = tds("settle", "--preview", "--period", last, *auditor)
        assert (settled.returncode, settled.stderr.strip()) == (
            1,
            f"error: period {last} is settled: read /settlements/{last}, not a preview",
        )
        index = tds("market", "index", *auditor)
        assert index.returncode == 0, index.stderr
        assert index.stdout.splitlines()[1].split() == ["telecom", last, "3", "1001.0", "100.00"]

        with httpx.Client(
            base_url=live.space.url, headers={"Authorization": f"Bearer {token}"}, trust_env=False
        ) as http:
            assert http.get(f"/settlements/{last}").status_code == 200
            tried = http.post("/admin/settlements", json={"period": before})
            assert tried.status_code == 403 and tried.headers["content-type"] == "application/problem+json"
            assert http.get(f"/settlements/{before}").status_code == 404
