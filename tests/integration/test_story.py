"""The main story through real processes: publish, find, negotiate, compute, record, audit."""

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from contracts.documents import verify_document
from tds.audit import STATE_FILE
from tds.errors import ApiError
from tests import dsp
from tests.integration.conftest import OVERLAP, agreed, c, ledger_for, publish, run_job
from tests.integration.helpers import verified_log


def tds(live, node: str, *args: str) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
    data_dir = live.space.config.path if node == "space" else live.connectors[node].config.path
    return subprocess.run(
        [sys.executable, "-m", "tds.cli", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_psi_jobs_compute_the_true_intersection_and_are_recorded(live, bank, telecom, operator, data) -> None:  # type: ignore[no-untyped-def]
    agreement = agreed(bank, telecom, data["telecom_csv"], [c("purpose", "eq", "risk-control")])
    cardinality = run_job(bank, agreement, "psi.cardinality", data["bank_csv"])
    assert cardinality["status"] == "succeeded", cardinality
    assert cardinality["summary"] == {"cardinality": OVERLAP}
    assert (cardinality["consumer_set_size"], cardinality["provider_set_size"]) == (2000, 2000)
    body = {"agreement": agreement, "operation": "psi.intersection", "input": str(data["bank_csv"])}
    started = bank.post("/api/jobs", {**body, "column": "phone"})
    intersection = bank.get(f"/api/jobs/{started['id']}", wait=60)  # answered when the job ends
    assert intersection["status"] == "succeeded", intersection
    result = bank.get(f"/api/jobs/{intersection['id']}/result", limit=10_000)
    assert set(result["intersection"]) == set(data["bank"]) & set(data["telecom"])

    records = ledger_for(operator, bank, telecom, agreement, 2)
    assert [r["signed"]["document"]["outcome"] for r in records] == ["succeeded", "succeeded"]
    participants = {p["id"]: p for p in operator.get("/admin/participants")["participants"]}
    for entry in records:
        document = entry["signed"]["document"]
        assert (
            document["fee_fen"] == 5000
            and document["consumer"] == "bank"
            and document["provider"] == "telecom"
        )
        verify_document(entry["signed"], {"bank", "telecom"}, lambda pid: participants[pid]["public_key"])
    verified_log(operator)

    # the provider's copy gets the countersignature too, and both are delivered exactly once
    assert telecom.wait_for("/api/outbox", lambda o: not o["pending"], timeout=10)["pending"] == []


@pytest.mark.parametrize("wait", ["soon", "61", "-1", "nan"])
def test_waiting_for_a_job_takes_0_to_60_seconds(bank, wait: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ApiError) as refused:
        bank.get("/api/jobs/urn:uuid:0", wait=wait)
    assert (refused.value.status, str(refused.value)) == (
        400,
        f"wait: expected seconds from 0 to 60, got {wait!r}",
    )


def test_agreement_is_signed_by_both_and_recorded_at_the_space(live, bank, telecom, operator, data) -> None:  # type: ignore[no-untyped-def]
    agreement = agreed(bank, telecom, data["telecom_csv"])
    recorded = operator.get(f"/agreements/{agreement}")
    assert recorded["state"] == "FINALIZED"
    assert sorted(recorded["signed"]["signatures"]) == ["bank", "telecom"]
    assert recorded["signed"] == bank.get(f"/api/contracts/{agreement}")["agreement"]
    at_provider = telecom.get(f"/api/contracts/{agreement}")
    assert (at_provider["state"], at_provider["approval"]) == ("FINALIZED", "automatic")
    assert bank.get(f"/api/contracts/{agreement}")["approval"] is None  # the consumer approves nothing
    message = {
        "@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
        "@type": "ContractAgreementMessage",
        "providerPid": "urn:uuid:p",
        "consumerPid": "urn:uuid:c",
        "agreement": recorded["signed"]["document"],
    }
    dsp.validate(message, "negotiation/contract-agreement-message")


def test_catalog_search_show_and_dcat(live, bank, telecom, data) -> None:  # type: ignore[no-untyped-def]
    entry = publish(telecom, data["telecom_csv"], sector="信息通信", description="在网手机号码 用于核验")
    found = bank.get("/api/catalog", q="核验", sector="信息通信", op="psi.intersection")["results"]
    assert entry["id"] in [e["id"] for e in found]
    shown = bank.get(f"/api/catalog/{entry['id']}")
    assert shown["row_count"] == 2000 and shown["columns"][0]["tags"] == ["phone"]
    # the profile carries no values: no phone number of the file appears in it (the test used to
    # look for "13", which the profile's own timestamp holds between 13:00 and 13:59)
    profile = json.dumps(shown["profile"])
    phones = [line.split(",")[0] for line in data["telecom_csv"].read_text().splitlines()[1:]]
    assert len(phones) == 2000 and [p for p in phones if p in profile] == []
    assert bank.get("/api/catalog", q="no-such-word-anywhere")["results"] == []
    catalog = httpx.get(live.space.url + "/catalog.jsonld", trust_env=False)
    assert catalog.headers["content-type"] == "application/ld+json"
    dsp.validate(catalog.json(), "catalog/catalog")
    # the mock sample: linked from the DCAT entry, the same schema, none of the file's phones
    (listed,) = [d for d in catalog.json()["dataset"] if d["@id"] == entry["id"]]
    (mock_link,) = [d["downloadURL"] for d in listed["distribution"] if d["format"] == "tds:MockSample"]
    assert mock_link == f"{live.space.url}/catalog/{entry['id']}/mock.csv" and shown["mock"] is True
    linked = httpx.get(mock_link, trust_env=False)
    assert linked.headers["content-type"].startswith("text/csv")
    out = live.connectors["bank"].config.path / "mock.csv"
    done = tds(live, "bank", "--json", "catalog", "mock", entry["id"], "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"entry": entry["id"], "path": str(out), "rows": 200}
    assert out.read_text() == linked.text and oct(out.stat().st_mode & 0o777) == "0o600"
    mock_rows = [line.split(",") for line in linked.text.splitlines()]
    assert mock_rows[0] == [col["name"] for col in shown["columns"]] and len(mock_rows) == 201
    assert not {row[0] for row in mock_rows[1:]} & set(phones)
    again = tds(live, "bank", "catalog", "mock", entry["id"], "--out", str(out))
    assert again.returncode != 0 and "already exists" in again.stderr
    missing = tds(live, "bank", "catalog", "mock", "urn:uuid:no-such-entry")
    assert missing.returncode != 0 and "no published catalog entry 'urn:uuid:no-such-entry'" in missing.stderr


def test_cli_audit_log_and_job_commands(live, bank, telecom, operator, data) -> None:  # type: ignore[no-untyped-def]
    agreement = agreed(bank, telecom, data["telecom_csv"])
    submitted = tds(
        live,
        "bank",
        "--json",
        "job",
        "submit",
        "--agreement",
        agreement,
        "--op",
        "psi.cardinality",
        "--input",
        str(data["bank_csv"]),
        "--column",
        "phone",
        "--no-progress",
    )
    assert submitted.returncode == 0, submitted.stderr
    job = json.loads(submitted.stdout)
    assert job["summary"] == {"cardinality": OVERLAP}
    result = tds(live, "bank", "job", "result", job["id"])
    assert result.stdout.strip() == f"|A ∩ B| = {OVERLAP}"
    status = tds(live, "bank", "--json", "job", "status", job["id"])
    assert json.loads(status.stdout)["status"] == "succeeded"
    ledger_for(operator, bank, telecom, agreement, 1)
    log = tds(live, "space", "--json", "audit", "log", "--participant", "bank")
    assert log.returncode == 0, log.stderr
    assert job["id"] in [r["signed"]["document"]["job"] for r in json.loads(log.stdout)["records"]]
    full = tds(live, "space", "audit", "log")
    assert full.returncode == 0, full.stderr
    assert full.stdout.startswith("log size ")
    checked = tds(live, "space", "audit", "verify")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    state = Path(os.environ["XDG_STATE_HOME"]) / "tds"  # the user's state directory, not the current one
    assert checked.stdout.splitlines()[-1] == f"verified (the heads seen are kept in {state / STATE_FILE})"
    assert (state / STATE_FILE).stat().st_mode & 0o777 == 0o600 and state.stat().st_mode & 0o777 == 0o700


def test_auditor_reads_but_changes_nothing(live, operator) -> None:  # type: ignore[no-untyped-def]
    token = operator.post("/admin/tokens", {"role": "auditor", "label": "audit office"})["token"]
    auditor = httpx.Client(
        base_url=live.space.url, headers={"Authorization": f"Bearer {token}"}, trust_env=False
    )
    try:
        assert auditor.get("/ledger/records").status_code == 200
        assert auditor.get("/admin/participants").status_code == 200
        for path in ("/admin/participants/bank/suspend", "/admin/participants/bank/admit", "/admin/tokens"):
            refused = auditor.post(path, json={"role": "operator"})
            assert refused.status_code == 403, path
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["detail"] == "an auditor token may not do this; needs one of ['operator']"
    finally:
        auditor.close()
    assert operator.get("/participants/bank")["status"] == "admitted"
