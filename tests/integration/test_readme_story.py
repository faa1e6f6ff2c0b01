"""The README's story, word for word: its shell blocks run in order in an empty directory, with
the project's ``tds`` on the PATH, so the README cannot drift from the CLI (issue 19)."""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## The story, command by command"


def story_blocks(text: str) -> list[str]:
    """The ``sh`` blocks of the story's section, in order."""
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```sh\n(.*?)^```$", section, flags=re.MULTILINE | re.DOTALL)


def test_the_story_has_its_parts() -> None:
    blocks = story_blocks(README.read_text("utf-8"))
    assert len(blocks) == 7
    script = "\n".join(blocks)
    for command in (
        "space init",
        "connector init --name bank",
        "dataset publish",
        "contract request",
        "--op psi.intersection",
        "review release",
        "audit verify --export",
        "settle --period",
    ):
        assert command in script, command  # fmt: skip
    assert not re.search(r"\b20\d\d-\d\d\b", script)  # dates come from the clock, never literals


def test_the_readme_story_runs_word_for_word(tmp_path: Path) -> None:
    script = "\n".join(story_blocks(README.read_text("utf-8")))
    runner = tmp_path / "story.sh"
    # what a person's shell does anyway: stop at the first failing command; and whatever happens,
    # the nodes it started in the background are stopped
    runner.write_text("set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null; wait' EXIT\n" + script)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TDS_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # the project's tds
    done = subprocess.run(
        ["bash", str(runner)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=840
    )
    assert done.returncode == 0, done.stdout[-4000:] + "\n---\n" + done.stderr[-4000:]
    out = done.stdout
    lines = out.splitlines()
    assert any(line.endswith("psi.cardinality  succeeded  cardinality 600") for line in lines), out
    matched = (tmp_path / "matched.txt").read_text("utf-8").split()
    customers = (tmp_path / "customers.csv").read_text("utf-8").split()[1:]
    with (tmp_path / "subscribers.csv").open(encoding="utf-8") as f:
        subscribers = [r["phone"] for r in csv.DictReader(f)]
    assert len(matched) == 600 and sorted(matched) == sorted(set(customers) & set(subscribers))
    # the bank's view of its agreement: the uses as the telecom counts them, and what is left
    assert "uses taken: 2, counted by telecom (the provider)" in lines
    assert "uses left: psi.cardinality 8 of 10, psi.intersection 8 of 10, script no limit" in lines
    # the script's released output, as the bank's `job result` printed it last: four cities, every row
    released = list(csv.reader(io.StringIO(out.rsplit("city,n,mean_income\n", 1)[1])))[:4]
    assert sorted(row[0] for row in released) == ["开封", "新乡", "洛阳", "郑州"]
    assert sum(int(row[1]) for row in released) == 2000
    assert any(line.endswith("script  succeeded  format table, rows 4") for line in lines)
    assert out.count("verified (the heads seen are kept in") == 2  # online with receipts, then offline
    # three uses at 5 000 fen in the story's month, settled and signed after the restart
    assert f"period {_last_month(done)}: 1 agreement, fees 15000 fen, commission 750 fen" in out
    statement = [line for line in lines if line.startswith(_last_month(done) + ",telecom,")]
    assert [line.split(",")[3:] for line in statement] == [
        ["provider", "3", "15000", "10000", "14250"], ["net", "", "", "", "14250"],
    ]  # fmt: skip
    assert re.search(r"^信息通信\s+\d{4}-\d\d\s+3\s+5000\.0\s+100\.00$", out, flags=re.MULTILINE)


def _last_month(done: subprocess.CompletedProcess[str]) -> str:
    """The story's month as its settlement printed it (the month before the system's)."""
    found = re.search(r"^period (\d{4}-\d\d): ", done.stdout, flags=re.MULTILINE)
    assert found, done.stdout[-2000:]
    return found.group(1)
