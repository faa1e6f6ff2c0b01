"""Structured logs: with TDS_LOG_FORMAT=json (or ``serve --log-format json``) a serving node
writes one JSON object a line — time in UTC, level, logger, message and the node's id — and a
format it does not know is refused before it serves."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tds.local import cluster, tds_command


def test_nodes_log_json_lines_and_refuse_an_unknown_format(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TDS_LOG_FORMAT", "json")
    with cluster(tmp_path / "nodes") as live:
        bank = live.add_connector("bank", "Bank", 91)
        api = bank.api()
        try:
            backend = api.get("/api/status")["sandbox"]
        finally:
            api.close()
        assert bank.log_path is not None and live.space.log_path is not None
        lines = bank.log_path.read_text().splitlines()
        logged = [json.loads(line) for line in lines if line.startswith("{")]
        assert {"time", "level", "logger", "message", "node"} <= set(logged[0])
        started = [e for e in logged if e["logger"] == "tds.connector" and e["message"].startswith("sandbox")]
        assert [(e["level"], e["message"], e["node"]) for e in started] == [
            ("INFO", f"sandbox backend: {backend}", "bank")
        ]
        assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000", e["time"]) for e in logged)
        # nothing of the node's own went out as a text line
        assert not [line for line in lines if re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ \w+ tds\.", line)]
        space_log = [
            json.loads(line) for line in live.space.log_path.read_text().splitlines() if line[:1] == "{"
        ]
        assert space_log and all(e["node"] == live.space.config.id for e in space_log)
        monkeypatch.setenv("TDS_LOG_FORMAT", "xml")
        done = subprocess.run(
            tds_command("--data-dir", str(bank.config.path), "connector", "serve"),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 1
        assert "log format: expected one of text, json, got 'xml' (TDS_LOG_FORMAT)" in done.stderr
