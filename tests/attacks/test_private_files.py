"""node-files-world-readable: a node's data directory holds its key, its database (with job
results) and its datasets' staging; another user of the host may read none of it. Every folder
is 0700 and every file 0600, after init and after the node has served a job."""

from __future__ import annotations

import stat
from pathlib import Path

from tds.local import cluster, negotiate, publish_dataset, run_job
from tests.integration.helpers import cardinality_offer, phone_sets


def too_open(root: Path) -> list[str]:
    found = []
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        mode = stat.S_IMODE(path.lstat().st_mode)
        if mode & 0o077:
            found.append(f"{path.relative_to(root.parent)} {mode:o}")
    return found


def test_a_node_keeps_its_files_to_itself(tmp_path: Path) -> None:
    phone_sets(tmp_path, "137", range(0, 30), range(10, 60))
    with cluster(tmp_path / "nodes") as live:
        bank = live.add_connector("bank", "Bank", 71)
        telecom = live.add_connector("telecom", "Telecom", 72)
        consumer, provider = bank.api(), telecom.api()
        try:
            entry = publish_dataset(
                provider,
                "subs",
                tmp_path / "b.csv",
                cardinality_offer({"model": "per_job", "amount_fen": 100}),
            )
            agreement = negotiate(consumer, entry["offers"][0]["id"], ["psi.cardinality"])["agreement_id"]
            assert (
                run_job(consumer, agreement, "psi.cardinality", tmp_path / "a.csv")["status"] == "succeeded"
            )
        finally:
            consumer.close()
            provider.close()
        for node in (live.space, bank, telecom):
            assert (node.config.path / "tds.db").exists()
            assert too_open(node.config.path) == []
