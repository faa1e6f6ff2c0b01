"""A live space and two connectors (real processes, real HTTP on loopback) for a test module."""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tds.client import NodeAPI
from tds.local import Cluster, cluster, publish_dataset, run_job  # noqa: F401  (re-exported for the tests)
from tests.conftest import missing

N, OVERLAP = 2000, 500


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("cluster")
    with cluster(root) as running:
        running.add_connector("bank", "郑州示例银行股份有限公司", 11)
        running.add_connector("telecom", "河南示例通信有限公司", 12)
        yield running


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("data")
    rng = random.Random(7)
    numbers = [f"1{rng.choice('3456789')}{n:09d}" for n in rng.sample(range(10**9), 2 * N - OVERLAP)]
    bank, telecom = numbers[:N], numbers[N - OVERLAP :]
    (root / "bank.csv").write_text("phone,segment\n" + "".join(f"{p},retail\n" for p in bank))
    (root / "telecom.csv").write_text("phone,plan\n" + "".join(f"{p},5G\n" for p in telecom))
    return {
        "bank": bank,
        "telecom": telecom,
        "bank_csv": root / "bank.csv",
        "telecom_csv": root / "telecom.csv",
        "root": root,
    }


@pytest.fixture
def bank(live: Cluster) -> Iterator[NodeAPI]:
    api = live.connectors["bank"].api()
    yield api
    api.close()


@pytest.fixture
def telecom(live: Cluster) -> Iterator[NodeAPI]:
    api = live.connectors["telecom"].api()
    yield api
    api.close()


@pytest.fixture
def operator(live: Cluster) -> Iterator[NodeAPI]:
    api = live.operator()
    yield api
    api.close()


def c(left: str, op: str, right: object) -> dict[str, Any]:
    return {"leftOperand": left, "operator": op, "rightOperand": right}


def publish(
    telecom: NodeAPI,
    csv: Path,
    constraints: list[dict[str, Any]] | None = None,
    operations: tuple[str, ...] = ("psi.cardinality", "psi.intersection"),
    auto_approve: bool = True,
    price: dict[str, Any] | None = None,
    sandbox_limits: dict[str, Any] | None = None,
    **dataset: Any,
) -> dict[str, Any]:
    """Register a fresh copy of the telecom data and publish one offer; return the entry."""
    name = "d" + uuid.uuid4().hex[:10]
    offer = {
        "policy": {"permission": [{"action": op, "constraint": constraints or []} for op in operations]},
        "price": price or {"model": "per_job", "amount_fen": 5000},
        "auto_approve": auto_approve,
        **({"sandbox_limits": sandbox_limits} if sandbox_limits is not None else {}),
    }
    return publish_dataset(
        telecom, name, csv, offer, title=f"subscribers {name}", keywords=["phone"], **dataset
    )


def negotiate(
    bank: NodeAPI, offer_id: str, operations: list[str] | None = None, purpose: str = "risk-control"
) -> dict[str, Any]:
    neg = bank.post(
        "/api/contracts",
        {
            "offer": offer_id,
            "purpose": purpose,
            "operations": operations or ["psi.cardinality", "psi.intersection"],
        },
    )
    return bank.wait_for(
        f"/api/contracts/{neg['id']}",  # type: ignore[no-any-return]
        lambda n: (
            n["state"] in ("FINALIZED", "TERMINATED") or (n["state"] == "REQUESTED" and n["provider_pid"])
        ),
        timeout=30,
    )


def agreed(
    bank: NodeAPI,
    telecom: NodeAPI,
    csv: Path,
    constraints: list[dict[str, Any]] | None = None,
    operations: tuple[str, ...] = ("psi.cardinality", "psi.intersection"),
) -> str:
    entry = publish(telecom, csv, constraints, operations)
    neg = bank.wait_for(
        f"/api/contracts/{negotiate(bank, entry['offers'][0]['id'], list(operations))['id']}",
        lambda n: n["state"] in ("FINALIZED", "TERMINATED"),
        timeout=30,
    )
    assert neg["state"] == "FINALIZED", neg
    return str(neg["agreement_id"])


def ledger_for(
    operator: NodeAPI, bank: NodeAPI, telecom: NodeAPI, agreement: str, expected: int
) -> list[dict[str, Any]]:
    """The agreement's ledger records once ``expected`` of them arrived (outboxes flushed)."""
    records: list[dict[str, Any]] = []
    for _ in range(50):
        bank.post("/api/outbox/flush")
        telecom.post("/api/outbox/flush")
        records = operator.get("/ledger/records", agreement=agreement)["records"]
        if len(records) >= expected:
            break
        import time

        time.sleep(0.1)
    return records


CHROMIUM = Path(os.environ.get("TDS_CHROMIUM", "/usr/bin/chromium"))
# what a browser on a closed network needs so it does not try to reach Google (and stall)
QUIET = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium driven by Playwright, for the web consoles' tests (test_console_browser.py,
    test_review_console.py); outside CI a missing Playwright skips them, in CI it fails."""
    if os.environ.get("CI"):
        import playwright.sync_api as playwright_api
    else:
        playwright_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        missing(f"Chromium at {CHROMIUM}", "the Debian package chromium")
    with playwright_api.sync_playwright() as driver:
        launched = driver.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, chromium_sandbox=False, args=QUIET
        )
        yield launched
        launched.close()
