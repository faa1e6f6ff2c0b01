"""The export list between real processes: the space refuses to record an agreement that would
send listed data to a consumer outside the rule's jurisdictions, naming the rule; a scenario the
operator allows admits it for its purpose; and once the operator takes the scenario back, the
provider's connector denies the next job under the agreement already made, whatever the offer
says."""

from __future__ import annotations

import json
from pathlib import Path

from tds.local import cluster, negotiate, publish_dataset, run_job

OFFER = {
    "policy": {"permission": [{"action": "psi.cardinality"}]},
    "price": {"model": "per_job", "amount_fen": 100},
    "auto_approve": True,
}
RULE = {
    "id": "EX-900",
    "reason": "subscriber data stays in mainland China",
    "match": {"sector": ["信息通信"]},
    "jurisdictions": ["CN"],
}
SCENARIO = {
    "id": "EX-900-S1",
    "jurisdictions": ["HK"],
    "purposes": ["cross-border-payment"],
    "condition": "a passed security assessment",
}
REFUSED = (
    "refused by export-list rule EX-900: subscriber data stays in mainland China; "
    "the consumer's jurisdiction HK is outside CN"
)


def test_the_export_list_holds_at_the_space_and_at_the_provider(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("phone\n" + "".join(f"139{i:08d}\n" for i in range(200)))
    (tmp_path / "b.csv").write_text("phone\n" + "".join(f"139{i:08d}\n" for i in range(100, 300)))
    with cluster(tmp_path / "nodes") as live:
        listed = live.space.config.path / "export_list.json"
        listed.write_text(json.dumps({"rules": [{**RULE, "scenarios": [SCENARIO]}]}, ensure_ascii=False))
        bank = live.add_connector("hkbank", "HK Bank", 95, jurisdiction="HK")
        telecom = live.add_connector("telecom", "Telecom", 96, options={"peer_cache_s": 0})
        consumer, provider, operator = bank.api(), telecom.api(), live.operator()
        try:
            entry = publish_dataset(provider, "subs", tmp_path / "b.csv", OFFER, sector="信息通信")
            offer = entry["offers"][0]["id"]
            refused = negotiate(consumer, offer, ["psi.cardinality"], purpose="risk-control")
            assert refused["state"] == "TERMINATED"
            assert REFUSED in refused["reason"]
            agreed = negotiate(consumer, offer, ["psi.cardinality"], purpose="cross-border-payment")
            assert agreed["state"] == "FINALIZED", agreed
            job = run_job(consumer, agreed["agreement_id"], "psi.cardinality", tmp_path / "a.csv")
            assert (job["status"], job["summary"]) == ("succeeded", {"cardinality": 100})
            listed.write_text(json.dumps({"rules": [RULE]}, ensure_ascii=False))  # the scenario taken back
            job = run_job(consumer, agreed["agreement_id"], "psi.cardinality", tmp_path / "a.csv")
            assert (job["status"], job["error"]) == ("denied", f"denied by provider: {REFUSED}")
            # a list the operator broke refuses what needs it, saying so, and tds status tells
            listed.write_text(json.dumps({"rules": [{"id": "EX-901"}]}))
            broken = (
                "the space's export list (export_list.json) cannot be used: export list rules[0]: reason "
                "must be a non-empty string; the operator fixes the file"
            )
            assert operator.get("/admin/health")["problems"] == [broken]
            job = run_job(consumer, agreed["agreement_id"], "psi.cardinality", tmp_path / "a.csv")
            assert job["status"] == "denied" and "its export list: HTTP 503" in job["error"], job
        finally:
            consumer.close()
            provider.close()
            operator.close()
