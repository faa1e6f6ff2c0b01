"""Attacks on "raw data never leaves its holder" by the consumer, who writes the script: copying
rows into the output, encoding keys (base64, hex, numbers), hiding them in a table's count
column, small counts, leaving data in the scratch directory for the next job, signalling
through time, and the hostile suite's bodies (reading the connector's key, writing outside the
sandbox, connecting out, exhausting memory and processes) — each submitted, approved and run
through the whole flow on the provider's real sandbox. Each is caught by an output check, or
impossible, and the connector keeps serving; the README's threat model says which is which."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_backend
from tests.hostile.cases import CASES, Case, Host
from tests.integration.scripts import ended, review_state, script_world, submit

LIMITS = {"wall_seconds": 4, "cpu_seconds": 4, "memory_mb": 768, "processes": 32}
KEY_CHECK = "output contains a value of column 'phone', which may not leave the provider"


@pytest.fixture(scope="module", params=["bwrap", "docker"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """The provider's connector on each backend that runs scripts (docker: the session's engine)."""
    require_backend(request, request.param)
    with script_world(tmp_path_factory.mktemp("exfiltration"), LIMITS, request.param) as made:
        assert made["bank"].get("/api/status")["sandbox"] == request.param
        yield made


def approved_run(world: dict[str, Any], code: str, **extra: Any) -> dict[str, Any]:
    """Submit, approve as the reviewer would who did not read closely, and release what passes."""
    job = submit(world, code, reason="统计", **extra)
    review_state(world, job["id"], "review")
    world["reviews"].post(f"/api/reviews/{job['id']}/approve", {"runs": 1})
    found = world["reviews"].wait_for(
        f"/api/reviews/{job['id']}", lambda r: r["state"] not in ("running", "review"), timeout=60
    )
    if found["state"] == "release":
        world["reviews"].post(f"/api/reviews/{job['id']}/release", {})
    return ended(world, job["id"])


def released(world: dict[str, Any], done: dict[str, Any]) -> Any:
    assert done["status"] == "succeeded", done
    return world["lab"].get(f"/api/jobs/{done['id']}/result")["output"]


def leaked(world: dict[str, Any], done: dict[str, Any]) -> bool:
    """Does any phone number of the provider's file appear in what the consumer holds?"""
    held = json.dumps(done, ensure_ascii=False)
    if done["status"] == "succeeded":
        held += json.dumps(world["lab"].get(f"/api/jobs/{done['id']}/result"), ensure_ascii=False)
    return any(row[0] in held for row in world["rows"])


@pytest.mark.parametrize(
    ("name", "code", "columns", "reason"),
    [
        ("raw rows", "import csv\nRESULT = {'rows': list(csv.reader(open(DATASET)))[1:5]}", None, KEY_CHECK),
        (
            "base64 keys",
            "import base64\nphones = [l.split(',')[0] for l in open(DATASET).read().splitlines()[1:4]]\n"
            "RESULT = {'blob': base64.b64encode(','.join(phones).encode()).decode()}",
            None,
            KEY_CHECK,
        ),
        (
            "hex keys",
            "phones = [l.split(',')[0] for l in open(DATASET).read().splitlines()[1:3]]\n"
            "RESULT = {'hex': ''.join(phones).encode().hex()}",
            None,
            KEY_CHECK,
        ),
        (
            "keys as numbers",
            "RESULT = {'ids': [int(l.split(',')[0]) for l in open(DATASET).read().splitlines()[1:3]]}",
            None,
            KEY_CHECK,
        ),
        (
            "keys in a count column",
            "import pandas as pd\nframe = pd.read_csv(DATASET, dtype={'phone': str})\n"
            "RESULT = pd.DataFrame({'city': frame.city[:3], 'n': frame.phone[:3].astype('int64')})\n"
            "COUNTS = ['n']",
            ["city", "n"],
            KEY_CHECK,
        ),
        (
            "small counts",
            "import pandas as pd\nframe = pd.read_csv(DATASET, dtype={'phone': str})\n"
            "t = frame.groupby(frame.income // 100).size().reset_index(name='n')\n"
            "t.columns = ['band', 'n']\nRESULT = t\nCOUNTS = ['n']",
            ["band", "n"],
            "count column 'n' has",
        ),
    ],
)
def test_an_output_that_carries_keys_or_small_counts_is_withheld(
    world: dict[str, Any], name: str, code: str, columns: list[str] | None, reason: str
) -> None:
    done = approved_run(world, code, **({"columns": columns} if columns else {}))
    assert done["status"] == "withheld", (name, done)
    assert reason in done["error"] and not leaked(world, done), name


def test_data_left_in_the_scratch_directory_is_not_there_for_the_next_job(world: dict[str, Any]) -> None:
    writer = (
        "import os, tempfile\nrows = open(DATASET).read()\n"
        "for folder in ('.', tempfile.gettempdir(), '/dev/shm'):\n"
        "    try:\n        open(os.path.join(folder, 'left-by-a-job'), 'w').write(rows)\n"
        "    except OSError:\n        pass\nRESULT = {'written': True}"
    )
    assert released(world, approved_run(world, writer)) == {"written": True}
    reader = (
        "import os, tempfile\nfound = {}\n"
        "for folder in ('.', tempfile.gettempdir(), '/dev/shm'):\n"
        "    try:\n        found[folder] = sorted(os.listdir(folder))\n"
        "    except OSError as exc:\n        found[folder] = str(exc)\nRESULT = {'found': found}"
    )
    found = released(world, approved_run(world, reader))["found"]
    assert not [folder for folder, names in found.items() if "left-by-a-job" in names], found


def test_a_time_signal_is_bounded_by_the_wall_clock_limit(world: dict[str, Any]) -> None:
    """A script can signal through how long it runs (the consumer sees when its job ends); the
    offer's wall-clock limit bounds it, and the reviewer reads the sleep in the code."""
    done = approved_run(world, "import time\ntime.sleep(60)\nRESULT = {}")
    assert done["status"] == "failed" and "wall" in done["error"], done


def test_hostile_bodies_through_the_real_path_are_contained(world: dict[str, Any]) -> None:
    provider = world["live"].connectors["bank"].config
    key_text = (provider.path / "node.key").read_text() if (provider.path / "node.key").exists() else ""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    hits: list[bytes] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            hits.append(conn.recv(100))
            conn.close()

    watcher = threading.Thread(target=accept, daemon=True)
    watcher.start()
    outside = provider.path / "written-by-a-script"
    try:
        read_key = released(world, approved_run(world, (
            "found = {}\nimport os\n"
            f"for p in {[str(f) for f in provider.path.iterdir()]!r}:\n"
            "    try:\n        found[p] = open(p, 'rb').read(200).decode('latin-1')\n"
            "    except OSError as exc:\n        found[p] = exc.strerror\nRESULT = {'found': found}"
        )))  # fmt: skip
        assert key_text == "" or key_text[:40] not in json.dumps(read_key)
        assert all(
            v in ("No such file or directory", "Permission denied") for v in read_key["found"].values()
        )
        wrote = approved_run(world, f"open({str(outside)!r}, 'w').write('pwned')\nRESULT = {{}}")
        assert wrote["status"] == "failed" and not outside.exists()
        port = listener.getsockname()[1]
        connect = approved_run(world, (
            "import socket\ntry:\n"
            f"    socket.create_connection(('127.0.0.1', {port}), timeout=2).sendall(b'x')\n"
            "    RESULT = {'sent': True}\nexcept OSError as exc:\n    RESULT = {'error': str(exc)}"
        ))  # fmt: skip
        assert "error" in released(world, connect) and hits == []
        memory = approved_run(world, "hoard = bytearray(2 << 30)\nRESULT = {}")
        assert memory["status"] == "failed" and "memory" in memory["error"], memory
        bomb = approved_run(world, (
            "import os, time\nn = 0\ntry:\n    for _ in range(200):\n        if os.fork() == 0:\n"
            "            time.sleep(30)\n            os._exit(0)\n        n += 1\nexcept OSError as exc:\n"
            "    pass\nRESULT = {'forked': n}"
        ))  # fmt: skip
        assert bomb["status"] in ("succeeded", "failed")
        if bomb["status"] == "succeeded":
            assert released(world, bomb)["forked"] < 32  # the sandbox's process limit
    finally:
        stop.set()
        watcher.join(timeout=2)
        listener.close()
    # the connector keeps serving: an honest script still runs and is released
    assert released(world, approved_run(world, "RESULT = {'ok': 1}")) == {"ok": 1}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_hostile_body_run_as_an_approved_script_is_contained(
    world: dict[str, Any], case: Case, tmp_path: Path
) -> None:
    """The hostile suite's bodies (tests/hostile/cases.py) as consumers' scripts, through the
    whole flow: the host sees nothing of them (no connection, no datagram, no file outside, no
    surviving process), nothing the consumer holds carries the host's secret, the job ends with
    its typed reason, and the connector serves the next job."""
    host = Host(tmp_path)
    try:
        job = submit(world, case.source, reason=case.name, args=host.args())
        review_state(world, job["id"], "review")
        world["reviews"].post(f"/api/reviews/{job['id']}/approve", {"runs": 1})
        found = world["reviews"].wait_for(
            f"/api/reviews/{job['id']}", lambda r: r["state"] not in ("running", "review"), timeout=90
        )
        if found["state"] == "release":
            world["reviews"].post(f"/api/reviews/{job['id']}/release", {})
        done = ended(world, job["id"])
        held = json.dumps(done, ensure_ascii=False)
        if done["status"] == "succeeded":
            held += json.dumps(world["lab"].get(f"/api/jobs/{job['id']}/result"), ensure_ascii=False)
        assert done["status"] in ("succeeded", "failed", "withheld"), done
        assert done["status"] == "succeeded" or done["error"], done  # an end says why
        assert host.canary not in held
        assert host.tcp_hits == [] and not host.udp_received() and not host.outside.exists()
        assert host.survivors() == []
    finally:
        for pid in host.survivors():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        host.close()
    assert released(world, approved_run(world, "RESULT = {'ok': 1}")) == {"ok": 1}
