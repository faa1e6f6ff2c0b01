"""The demo's reviewed script: the bank tries its own analysis on the mock sample of the
telecom's subscribers, submits it, the telecom's reviewer reads and approves it, the output
passes the automatic checks and the reviewer releases it; the ledger holds every step."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tds.client import NodeAPI
from tds.errors import ApiError, TdsError
from tds.local import negotiate, publish_dataset
from tds.script_try import try_on_mock

Tell = Callable[[str], None]
# ARPU by tenure band, with the subscribers behind each band (the counts the provider checks ≥ k)
ANALYSIS = """
import pandas as pd
frame = pd.read_csv(DATASET, dtype={"phone": str})
bands = ["0-12", "13-36", "37-72", "73-120"]
frame["band"] = pd.cut(frame["tenure_months"], [-1, 12, 36, 72, 120], labels=bands)
table = frame.groupby("band", observed=True).agg(n=("arpu", "size"), mean_arpu=("arpu", "mean"))
table = table.reset_index()
table["mean_arpu"] = table["mean_arpu"].round(2)
RESULT = table
COUNTS = ["n"]
"""
COLUMNS = ["band", "n", "mean_arpu"]


def c(left: str, op: str, right: Any) -> dict[str, Any]:
    return {"leftOperand": left, "operator": op, "rightOperand": right}


def script(apis: dict[str, NodeAPI], root: Path, tell: Tell) -> dict[str, Any]:
    bank, telecom = apis["bank"], apis["telecom"]
    offer = {
        "policy": {"permission": [{"action": "script", "constraint": [
            c("purpose", "isAnyOf", ["risk-control"]), c("outputBytes", "lteq", 4096),
            c("resultSize", "gteq", 20), c("release", "isAnyOf", ["review", "auto"]),
            c("runsPerApproval", "lteq", 5),
        ]}]},
        "price": {"model": "per_job", "amount_fen": 3000},
        "auto_approve": True,
    }  # fmt: skip
    entry = publish_dataset(
        telecom, "subscriber-usage", root / "telecom_subscribers.csv", offer,
        title="用户使用情况 (subscriber usage)", sector="信息通信", pi_level="general",
    )  # fmt: skip
    agreement = negotiate(bank, entry["offers"][0]["id"], ["script"])["agreement_id"]
    mock = root / "subscriber-usage.mock.csv"
    mock.write_text(bank.get(f"/api/catalog/{entry['id']}/mock.csv"), encoding="utf-8")
    tried = try_on_mock(ANALYSIS, mock, {})
    bands = tried["table"].count("\n") - 1
    tell(f"bank tried its script on the mock sample of {entry['id']} ({tried['backend']}): {bands} bands")
    started = time.perf_counter()
    asked = {"operation": "script", "agreement": agreement, "code": ANALYSIS, "columns": COLUMNS,
             "reason": "按在网时长分组的 ARPU 均值"}  # fmt: skip
    job = bank.post("/api/jobs", asked)
    shown = _wait(telecom, job["id"], "review")
    tell(f"telecom's reviewer reads code {shown['code_sha256'][:12]}, its mock run and the rules; approves")
    telecom.post(f"/api/reviews/{job['id']}/approve", {"runs": 1, "note": "只读聚合，无明细"})
    waiting = _wait(telecom, job["id"], "release")
    telecom.post(f"/api/reviews/{job['id']}/release", {"note": "已核对"})
    done = bank.wait_for_job(job["id"], 300)
    seconds = round(time.perf_counter() - started, 2)
    if done["status"] != "succeeded":
        raise TdsError(f"the script job ended {done['status']}: {done['error']}")
    result = bank.get(f"/api/jobs/{job['id']}/result")
    tell(f"released to the bank ({waiting['metrics']['seconds']} s in the sandbox): " + "; ".join(
        f"{band} n={n} ARPU {mean}" for band, n, mean in result["rows"]))  # fmt: skip
    return {"status": done["status"], "bands": len(result["rows"]), "columns": result["columns"],
            "code_sha256": shown["code_sha256"], "seconds": seconds}  # fmt: skip


def _wait(api: NodeAPI, job_id: str, state: str) -> dict[str, Any]:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            found: dict[str, Any] = api.get(f"/api/reviews/{job_id}")
        except ApiError as exc:
            if exc.status != 404:
                raise
        else:
            if found["state"] == state:
                return found
            if found["state"] in ("failed", "denied", "withheld", "rejected"):
                raise TdsError(f"the script job ended {found['state']}: {found}")
        time.sleep(0.1)
    raise TdsError(f"script job {job_id} did not reach {state}")
