"""he.score-unit-weight-reads-features: a "model" with weight 1 on income and 0 elsewhere
decrypted to the provider's exact incomes. Now the provider adds N(0, σ²) to each feature named
in the agreement's score noise before the encrypted product, so such a model gets x + noise
(and a real model's score noise ‖w∘σ‖), and floods every score so that the CKKS error, which
depends on the features, does not show."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from tds.local import negotiate, publish_dataset
from tests.integration.test_he_jobs import c, offer, run

SIGMA = 5.0


def test_a_unit_weight_model_gets_each_feature_with_the_agreed_noise(
    world: dict[str, Any], tmp_path: Path
) -> None:
    terms = {**offer(c("column", "isPartOf", ["x", "z"]), operations=("he.score",)),
             "score_noise": {"x": SIGMA, "z": SIGMA}}  # fmt: skip
    name = f"hos3-{uuid.uuid4().hex[:8]}"
    entry = publish_dataset(
        world["apis"]["hos3"], name, world["root"] / "hos3.csv", terms, key_column="patient"
    )
    assert entry["offers"][0]["score_noise"] == {"x": SIGMA, "z": SIGMA}  # consumers see the terms
    agreement = negotiate(world["lab"], entry["offers"][0]["id"], ["he.score"], purpose="public-health")
    ids = [f"P3-{i}" for i in range(900)]
    (tmp_path / "ids.csv").write_text("customer\n" + "\n".join(ids) + "\n")
    (tmp_path / "reader.json").write_text(
        json.dumps({"features": ["x", "z"], "weights": [1.0, 0.0], "bias": 0.0})
    )
    body = {"operation": "he.score", "agreement": agreement["agreement_id"], "ids": str(tmp_path / "ids.csv"),
            "column": "customer", "model": str(tmp_path / "reader.json")}  # fmt: skip
    job = run(world["lab"], body)
    assert job["status"] == "succeeded", job
    rows = world["lab"].get(f"/api/jobs/{job['id']}/result", limit=1000)["scores"]
    read = np.array([r["score"] for r in rows])
    exact = world["data"]["hos3"][:900, 0]
    off = read - exact
    assert 0.8 * SIGMA < float(np.std(off)) < 1.2 * SIGMA  # x + N(0, 25), not x
    assert abs(float(np.mean(off))) < 1.0  # unbiased: a real model's score stays useful
    assert int(np.sum(np.abs(off) < 0.01)) < 10  # hardly any income comes back to the cent


def test_an_id_is_scored_at_most_as_often_as_the_agreement_allows(
    world: dict[str, Any], tmp_path: Path
) -> None:
    # averaging n noisy scores of one id shrinks the noise by √n: idRepeats bounds n
    rules = (c("column", "isPartOf", ["x", "z"]), c("idRepeats", "lteq", 2))
    terms = {**offer(*rules, operations=("he.score",)), "score_noise": {"x": SIGMA}}
    name = f"hos3-{uuid.uuid4().hex[:8]}"
    entry = publish_dataset(
        world["apis"]["hos3"], name, world["root"] / "hos3.csv", terms, key_column="patient"
    )
    agreement = negotiate(world["lab"], entry["offers"][0]["id"], ["he.score"], purpose="public-health")
    (tmp_path / "reader.json").write_text(
        json.dumps({"features": ["x", "z"], "weights": [1.0, 0.0], "bias": 0.0})
    )

    def score(ids: list[str]) -> dict[str, Any]:
        (tmp_path / "ids.csv").write_text("customer\n" + "\n".join(ids) + "\n")
        body = {"operation": "he.score", "agreement": agreement["agreement_id"], "column": "customer",
                "ids": str(tmp_path / "ids.csv"), "model": str(tmp_path / "reader.json")}  # fmt: skip
        return run(world["lab"], body)

    same = [f"P3-{i}" for i in range(50)]
    assert [score(same)["status"] for _ in range(2)] == ["succeeded", "succeeded"]
    third = score([*same[:1], "P3-999"])  # one id seen twice already is enough
    assert third["status"] == "denied"
    assert "idRepeats lteq 2: idRepeats is 3" in third["error"]
    assert score([f"P3-{i}" for i in range(50, 60)])["status"] == "succeeded"  # other ids: fine
