"""he.score results are stored as ids and scores side by side; pages and summaries read the
same from that and from results stored earlier as one row per id."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from connectors import job_store
from connectors.context import Connector
from connectors.models import Job
from node.db import Database, migrate

ROWS = [
    {"id": "C1", "score": 1.5},
    {"id": "C9", "score": None, "not_found": True},
    {"id": "C2", "score": -0.25},
]
STORED = {
    "side by side": {"ids": ["C1", "C9", "C2"], "values": [1.5, None, -0.25]},
    "rows (before)": {"scores": ROWS},
}


@pytest.mark.parametrize("stored", STORED)
def test_pages_and_summary_read_the_same_from_both_forms(tmp_path: Path, stored: str) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    migrate(url, "connectors:migrations")
    ctx = cast(Connector, SimpleNamespace(db=Database(url)))
    with ctx.db.transaction() as session:
        session.add(Job(id="j", role="consumer", agreement_id="a", peer_id="p", operation="he.score",
                        status="succeeded", result=STORED[stored]))  # fmt: skip
    job = job_store.get(ctx, "j")
    assert job_store.view(job)["summary"] == {"scored": 2, "not_found": 1}
    page: dict[str, Any] = job_store.result(ctx, "j", 0, 100)
    assert (page["count"], page["offset"], page["scores"]) == (3, 0, ROWS)
    page = job_store.result(ctx, "j", 1, 1)
    assert (page["count"], page["offset"], page["scores"]) == (3, 1, ROWS[1:2])
    assert job_store.result(ctx, "j", 3, 10)["scores"] == []
