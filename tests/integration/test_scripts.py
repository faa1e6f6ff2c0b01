"""Reviewed scripts between real processes: a consumer tries its code on the mock sample,
submits it, the provider's reviewer reads it and approves it, the run's output passes the
automatic checks and is released, and the ledger holds every step; approved reruns, rejections,
outputs that carry keys or are too large, and bad submissions each end with a clear reason and a
record, and change nothing else."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from node.signing import RemoteError, SignedClient
from tds.client import NodeAPI
from tds.errors import ApiError
from tds.local import publish_dataset
from tests.integration.scripts import ended, review_state, script_world, steps_of, submit, tds

GROUP_MEAN = """
import pandas as pd
frame = pd.read_csv(DATASET, dtype={"phone": str})
table = frame.groupby("city").agg(n=("income", "size"), mean_income=("income", "mean")).reset_index()
table["mean_income"] = table["mean_income"].round(2)
RESULT = table
COUNTS = ["n"]
"""
LEAK = """
import csv
with open(DATASET) as handle:
    rows = list(csv.reader(handle))
RESULT = {"sample": rows[1:4]}
"""
BIG = 'RESULT = {"padding": "x" * 5000}'


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with script_world(tmp_path_factory.mktemp("scripts")) as made:
        yield made


def expected_table(rows: list[tuple[str, str, int]]) -> list[list[str]]:
    import pandas as pd

    frame = pd.DataFrame(rows, columns=["phone", "city", "income"])
    table = frame.groupby("city").agg(n=("income", "size"), mean_income=("income", "mean")).reset_index()
    table["mean_income"] = table["mean_income"].round(2)
    return [[str(v) for v in row] for row in table.itertuples(index=False)]


def test_try_submit_review_approve_release_and_every_step_in_the_ledger(world: dict[str, Any]) -> None:
    live, root = world["live"], world["root"]
    mock = root / "mock.csv"
    got = tds(live, "lab", "catalog", "mock", world["entry"]["id"], "--out", str(mock))
    assert got.returncode == 0, got.stderr
    code = root / "analysis.py"
    code.write_text(GROUP_MEAN)
    tried = tds(live, "lab", "--json", "script", "try", str(code), "--mock", str(mock))
    assert tried.returncode == 0, tried.stderr
    trial = json.loads(tried.stdout)
    assert trial["format"] == "table" and trial["counts"] == ["n"]
    assert trial["table"].splitlines()[0] == "city,n,mean_income"
    assert set(trial["runtime"]) == {"python", "numpy", "pandas"}
    # the catalog entry states the runtime the provider runs scripts with
    assert (
        world["lab"].get(f"/api/catalog/{world['entry']['id']}")["profile"]["script_runtime"]
        == trial["runtime"]
    )

    options = ["--agreement", world["agreement"], "--code", str(code), "--columns", "city,n,mean_income"]
    submitted = tds(
        live, "lab", "--json", "job", "submit", "--op", "script", *options, "--reason", "收入按城市分组均值"
    )
    assert submitted.returncode == 0, submitted.stderr
    job = json.loads(submitted.stdout)
    assert (job["status"], job["operation"]) == ("running", "script")

    shown = review_state(world, job["id"], "review")
    assert shown["code"] == GROUP_MEAN and shown["diff"] == "" and shown["reason"] == "收入按城市分组均值"
    # the mock's 200 rows may give a city fewer than k = 50 rows: the reviewer sees what the
    # checks would say of such an output, and nothing else
    assert shown["mock"]["format"] == "table"
    assert all(r.startswith("count column 'n' has ") for r in shown["mock"]["checks"])
    assert shown["mock"]["output"].splitlines()[0] == "city,n,mean_income"
    assert shown["rules"] == {"output_bytes": 2048, "k": 50, "release": "auto", "runs_per_approval": 3,
                              "review_required": True}  # fmt: skip
    heard = world["lab"].wait_for(f"/api/jobs/{job['id']}", lambda j: j["phase"] == "review", timeout=30)
    assert heard["phase"] == "review"  # the consumer hears where its job is, and can ask
    asked = tds(live, "lab", "--json", "job", "refresh", job["id"])
    assert asked.returncode == 0 and json.loads(asked.stdout)["phase"] == "review"

    with pytest.raises(
        ApiError, match=r"runs: the policy grants 1 to 3 runs per approval \(runsPerApproval\); got 4"
    ):
        world["reviews"].post(f"/api/reviews/{job['id']}/approve", {"runs": 4})
    world["reviews"].post(f"/api/reviews/{job['id']}/approve", {"runs": 2, "note": "只读聚合"})
    waiting = review_state(world, job["id"], "release")
    assert waiting["checks"] == [] and waiting["output"].splitlines()[0] == "city,n,mean_income"
    heard = world["lab"].wait_for(f"/api/jobs/{job['id']}", lambda j: j["phase"] == "release", timeout=30)
    assert heard["phase"] == "release"
    released = tds(live, "bank", "--json", "review", "release", job["id"])
    assert released.returncode == 0, released.stderr

    done = ended(world, job["id"])
    assert done["status"] == "succeeded", done
    result = world["lab"].get(f"/api/jobs/{job['id']}/result")
    assert result["columns"] == ["city", "n", "mean_income"]
    assert result["rows"] == expected_table(world["rows"])

    assert world["lab"].post(f"/api/jobs/{job['id']}/refresh")["status"] == "succeeded"  # ended: no ask
    mine = steps_of(world, job["id"], 5)
    steps = [
        (r["kind"], r["signed"]["document"].get("step") or r["signed"]["document"]["outcome"]) for r in mine
    ]
    assert steps == [("script-step", "submitted"), ("script-step", "mock-run"), ("script-step", "approved"),
                     ("script-step", "released"), ("usage", "succeeded")]  # fmt: skip
    usage = mine[-1]["signed"]
    assert usage["document"]["fee_fen"] == 300 and set(usage["signatures"]) <= {"bank", "lab"}
    approved = mine[2]["signed"]["document"]
    assert (approved["reviewer"], approved["runs"], approved["note"]) == ("审核员王", 2, "只读聚合")
    assert mine[3]["signed"]["document"]["output_sha256"] == waiting["output_sha256"]
    assert {r["signed"]["document"]["code_sha256"] for r in mine[:4]} == {shown["code_sha256"]}

    # an approved rerun under release: auto needs nobody, and the approval's second run is its last
    again = submit(world, GROUP_MEAN, columns=["city", "n", "mean_income"])
    assert ended(world, again["id"])["status"] == "succeeded"
    third = submit(world, GROUP_MEAN, columns=["city", "n", "mean_income"])
    assert review_state(world, third["id"], "review")["diff"] == ""  # the same code, reviewed again
    world["reviews"].post(f"/api/reviews/{third['id']}/reject", {"note": "已批准的次数用完"})
    denied = ended(world, third["id"])
    assert denied["status"] == "denied" and denied["error"].endswith(
        "code rejected by 审核员王: 已批准的次数用完"
    )
    # rejected code stays rejected under the agreement: the same code again is denied, recorded
    fourth = ended(world, submit(world, GROUP_MEAN, columns=["city", "n", "mean_income"])["id"])
    assert fourth["status"] == "denied" and fourth["record_id"] is not None
    assert "was rejected by 审核员王: 已批准的次数用完; change it and submit it again" in fourth["error"]


def test_an_output_with_a_key_or_over_the_size_is_withheld_with_its_reason(world: dict[str, Any]) -> None:
    phones = {row[0] for row in world["rows"]}
    for code, reason in (
        (LEAK, "output contains a value of column 'phone', which may not leave the provider"),
        (BIG, "the policy allows at most 2048 (outputBytes)"),
    ):
        job = submit(world, code, reason="试试")
        shown = review_state(world, job["id"], "review")
        assert shown["mock"]["checks"] == ([] if code == LEAK else [shown["mock"]["checks"][0]])
        world["reviews"].post(f"/api/reviews/{job['id']}/approve", {"runs": 1})
        done = ended(world, job["id"])
        assert done["status"] == "withheld", done
        assert reason in done["error"] and done["error"].startswith(
            "output withheld by the automatic checks: "
        )
        assert not [p for p in phones if p in json.dumps(done)]
        with pytest.raises(ApiError, match="withheld"):
            world["lab"].get(f"/api/jobs/{job['id']}/result")
        assert world["reviews"].get(f"/api/reviews/{job['id']}")["state"] == "withheld"


def test_a_reviewer_withholds_and_a_consumer_token_cannot_review(world: dict[str, Any]) -> None:
    job = submit(world, 'RESULT = {"rows": 1200}', reason="行数")
    review_state(world, job["id"], "review")
    lab_token = world["live"].connectors["lab"].config.admin_token()
    lab_at_bank = NodeAPI(world["live"].connectors["bank"].config.url, lab_token)
    try:
        with pytest.raises(ApiError, match="unknown or revoked token"):
            lab_at_bank.get("/api/reviews")
    finally:
        lab_at_bank.close()
    with pytest.raises(ApiError, match="a reviewer token may not do this"):
        world["reviews"].get("/api/datasets")
    world["reviews"].post(f"/api/reviews/{job['id']}/approve", {"runs": 1})
    review_state(world, job["id"], "release")
    with pytest.raises(ApiError, match="request body: note: required"):
        world["reviews"].post(f"/api/reviews/{job['id']}/withhold", {})
    world["reviews"].post(f"/api/reviews/{job['id']}/withhold", {"note": "不需要"})
    done = ended(world, job["id"])
    assert done["status"] == "withheld" and done["error"].endswith("output withheld by 审核员王: 不需要")
    with pytest.raises(ApiError, match="only an output waiting for release can be released"):
        world["reviews"].post(f"/api/reviews/{job['id']}/release", {})


def test_bad_submissions_are_refused_with_a_clear_error(world: dict[str, Any]) -> None:
    lab = world["lab"]
    before = len(lab.get("/api/jobs")["jobs"])
    with pytest.raises(ApiError, match=r"code: script does not compile: '{' was never closed \(line 1\)"):
        submit(world, "RESULT = {")
    with pytest.raises(ApiError, match=r"code: script is 1048577 characters; at most 1048576"):
        submit(world, "#" * (1 << 20) + "\n")
    with pytest.raises(ApiError, match="no contract negotiation or agreement 'urn:uuid:nope'"):
        lab.post("/api/jobs", {"operation": "script", "agreement": "urn:uuid:nope", "code": "RESULT = {}"})
    assert len(lab.get("/api/jobs")["jobs"]) == before


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_a_tampered_code_hash_or_unknown_agreement_is_denied_with_a_record(world: dict[str, Any]) -> None:
    live = world["live"]
    client = SignedClient("lab", live.connectors["lab"].config.key())
    bank_dsp = live.connectors["bank"].config.url + "/dsp/scripts"
    body = {"job": f"urn:uuid:{uuid.uuid4()}", "agreement": world["agreement"], "code": 'RESULT = {"a": 1}',
            "code_sha256": "0" * 64, "args": {}, "reason": "", "columns": None}  # fmt: skip
    try:
        with pytest.raises(RemoteError) as caught:
            client.send("POST", bank_dsp, json=body)
        assert caught.value.status == 403
        assert "is not the SHA-256 of the code sent" in caught.value.problem["detail"]
        record = caught.value.problem["usage_record"]["document"]
        assert (record["outcome"], record["operation"], record["fee_fen"]) == ("denied", "script", 0)
        unknown = {**body, "job": f"urn:uuid:{uuid.uuid4()}", "agreement": "urn:uuid:none"}
        with pytest.raises(RemoteError) as caught:
            client.send("POST", bank_dsp, json=unknown)
        assert caught.value.problem["detail"] == "unknown agreement urn:uuid:none"
        assert caught.value.problem["usage_record"]["document"]["outcome"] == "denied"
        with pytest.raises(RemoteError, match="was already used; a job runs once"):
            client.send("POST", bank_dsp, json=body)
        # what the consumer's own connector refuses to send, the provider denies, with a record
        for code, reason in (
            ("RESULT = {", "script does not compile: '{' was never closed (line 1)"),
            ("#" * (1 << 20) + "\n", "script is 1048577 characters; at most 1048576"),
        ):
            bad = {**body, "job": f"urn:uuid:{uuid.uuid4()}", "code": code, "code_sha256": sha256(code)}
            with pytest.raises(RemoteError) as caught:
                client.send("POST", bank_dsp, json=bad)
            assert caught.value.problem["detail"] == reason
            assert caught.value.problem["usage_record"]["document"]["reason"] == reason
    finally:
        client.close()
    assert world["reviews"].get("/api/reviews")["reviews"] == []


def test_a_provider_whose_sandbox_is_process_refuses_scripts_saying_why(world: dict[str, Any]) -> None:
    """The process backend lets the hostile suite's file cases through as root: a connector that
    runs on it refuses script offers at publish and script jobs when they come (last in the
    module: it restarts the provider)."""
    node = world["live"].connectors["bank"]
    node.stop()
    node.config.options["sandbox_backend"] = "process"
    node.config.save()
    node.start()
    try:
        job = submit(world, 'RESULT = {"a": 1}', reason="试试")
        done = ended(world, job["id"])
        assert done["status"] == "denied"
        assert done["error"].endswith(
            "this connector's sandbox is process; reviewed scripts run only on bwrap or docker"
        )
        offer = {
            "policy": {"permission": [{"action": "script"}]},
            "price": {"model": "per_job", "amount_fen": 1},
        }
        with pytest.raises(ApiError, match="this connector's sandbox is process, which does not contain"):
            publish_dataset(world["bank"], "more", world["root"] / "customers.csv", offer)
    finally:
        node.stop()
        del node.config.options["sandbox_backend"]
        node.config.save()
        node.start()
