"""Membership credentials renewed without a suspension, real processes: the space refuses a
renewal months before the end, saying from when; 340 days on (every node restarted with its
clock moved), each connector renews its own at start, the space notes it, and the nodes go on
trusting each other under the new credentials."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from node import clock
from policies.model import format_datetime
from tds.local import cluster


def renew(data_dir: Path) -> tuple[int, Any, str]:
    done = subprocess.run(
        [sys.executable, "-m", "tds.cli", "--json", "--data-dir", str(data_dir), "connector", "renew"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else None, done.stderr


def test_connectors_renew_their_credentials_in_the_last_30_days(tmp_path: Path) -> None:
    with cluster(tmp_path / "nodes") as live:
        bank, telecom = live.add_connector("bank", "Bank", 93), live.add_connector("telecom", "Telecom", 94)
        api = bank.api()
        try:
            first = api.get("/api/status")["membership"]["credential"]["document"]["expires_at"]
        finally:
            api.close()
        code, _, stderr = renew(bank.config.path)
        end = dt.datetime.fromisoformat(first.replace("Z", "+00:00"))
        opens = format_datetime(end - dt.timedelta(days=30))
        assert code == 1
        assert (
            f"bank's credential expires at {first}: it is renewed within 30 days of its end, from {opens}"
            in stderr
        )
        later = {clock.ENV: str(340 * 86400)}  # every node's calendar, 340 days on: 25 days left
        for node in [bank, telecom, live.space]:
            node.stop()
        for node in [live.space, bank, telecom]:
            node.start(extra_env=later)
        healths = {}
        for node in (bank, telecom):
            api = node.api()
            try:
                deadline = time.monotonic() + 30
                while True:  # each renews at start, in the background
                    healths[node.config.id] = health = api.get("/api/health")
                    if health["healthy"] or time.monotonic() > deadline:
                        break
                    time.sleep(0.2)
            finally:
                api.close()
        for name, health in healths.items():
            assert (health["healthy"], health["problems"]) == (True, []), name
            assert health["membership"]["credential_days_left"] == 364, name
        operator = live.operator()
        try:
            actions = operator.get("/admin/actions")["actions"]
        finally:
            operator.close()
        assert sorted(a["target"] for a in actions if a["action"] == "renew" and a["actor"] == "space") == [
            "bank",
            "telecom",
        ]
