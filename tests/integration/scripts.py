"""A live space with a provider (bank, 1 200 customers with city and income) that offers scripts
and a consumer (lab) holding an agreement for them, plus what script tests do with it: submit,
wait for a review state, wait for the job's end."""

from __future__ import annotations

import contextlib
import csv
import json
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tds.client import NodeAPI
from tds.errors import ApiError
from tds.local import Cluster, cluster, negotiate, publish_dataset
from tests.integration.conftest import c, ledger_for

CITIES = ["郑州", "洛阳", "开封", "新乡"]


def tds(live: Cluster, node: str, *args: str) -> subprocess.CompletedProcess[str]:
    data_dir = live.connectors[node].config.path
    return subprocess.run(
        [sys.executable, "-m", "tds.cli", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        check=False,
    )


@contextlib.contextmanager
def script_world(
    root: Path, sandbox_limits: dict[str, int] | None = None, backend: str = "auto"
) -> Iterator[dict[str, Any]]:
    """The cluster, its APIs (``reviews`` with a reviewer token labelled 审核员王), the rows and
    the agreement; ``sandbox_limits`` lower the offer's sandbox limits; the provider runs scripts
    on ``backend``."""
    rng = random.Random(11)
    rows = [(f"13{rng.randrange(10**9):09d}", CITIES[i % 4], rng.randint(2000, 30000)) for i in range(1200)]
    data = root / "customers.csv"
    with data.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["phone", "city", "income"])
        writer.writerows(rows)
    with cluster(root / "cluster") as live:
        live.add_connector("lab", "郑州示例研究院", 21)
        live.add_connector("bank", "郑州示例银行股份有限公司", 22, options={"sandbox_backend": backend})
        lab, bank = live.connectors["lab"].api(), live.connectors["bank"].api()
        policy = [
            c("release", "isAnyOf", ["review", "auto"]),
            c("runsPerApproval", "lteq", 3),
            c("outputBytes", "lteq", 2048),
            c("resultSize", "gteq", 50),
        ]
        offer = {
            "policy": {"permission": [{"action": "script", "constraint": policy}]},
            "price": {"model": "per_job", "amount_fen": 300},
            "auto_approve": True,
            **({"sandbox_limits": sandbox_limits} if sandbox_limits else {}),
        }
        entry = publish_dataset(bank, "customers", data, offer, title="客户收入 customers", keywords=["收入"])
        neg = negotiate(lab, entry["offers"][0]["id"], ["script"], purpose="scientific-research")
        assert neg["state"] == "FINALIZED", neg
        reviewer = tds(
            live, "bank", "--json", "connector", "token", "--role", "reviewer", "--label", "审核员王"
        )
        assert reviewer.returncode == 0, reviewer.stderr
        token = json.loads(reviewer.stdout)["token"]
        reviews = NodeAPI(live.connectors["bank"].config.url, token)
        yield {"live": live, "lab": lab, "bank": bank, "reviews": reviews, "rows": rows, "root": root,
               "entry": entry, "agreement": neg["agreement_id"]}  # fmt: skip
        for api in (lab, bank, reviews):
            api.close()


def submit(world: dict[str, Any], code: str, **extra: Any) -> dict[str, Any]:
    body = {"operation": "script", "agreement": world["agreement"], "code": code, **extra}
    return world["lab"].post("/api/jobs", body)  # type: ignore[no-any-return]


def review_state(world: dict[str, Any], job_id: str, state: str) -> dict[str, Any]:
    """The provider's review of the job once it is in ``state`` (the consumer's connector sends
    the code after answering the submission, so the review may not exist at first)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            found: dict[str, Any] = world["reviews"].get(f"/api/reviews/{job_id}")
        except ApiError as exc:
            if exc.status != 404 or time.monotonic() > deadline:
                raise
            found = {"state": None}
        if found["state"] == state or time.monotonic() > deadline:
            assert found["state"] == state, found
            return found
        time.sleep(0.1)


def ended(world: dict[str, Any], job_id: str) -> dict[str, Any]:
    return world["lab"].wait_for_job(job_id, timeout=60)  # type: ignore[no-any-return]


def steps_of(world: dict[str, Any], job_id: str, expected: int) -> list[dict[str, Any]]:
    """The job's leaves in the log once ``expected`` of them arrived (both outboxes flushed)."""
    operator = world["live"].operator()
    try:
        records = ledger_for(operator, world["lab"], world["bank"], world["agreement"], expected)
    finally:
        operator.close()
    return [r for r in records if r["signed"]["document"].get("job") == job_id]
