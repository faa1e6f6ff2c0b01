"""The homomorphic operations in the sandbox, end to end on each backend: three providers'
encrypted parts summed without a key equal the plaintext statistics over the union of their
rows; scores equal X·w; bad contexts, ciphertexts and sizes are refused with a reason."""

import json
from pathlib import Path

import numpy as np
import pytest

from sandbox.errors import WorkerFailed
from sandbox.interface import WorkerJob
from sandbox.ops import he

STATS = ["count", "sum", "mean", "variance", "histogram", "linreg"]
PARAMS = {"stats": STATS, "column": "x", "bins": [0, 25, 50, 75, 100], "features": ["x", "z"], "target": "y"}


def provider_csv(path: Path, seed: int, rows: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x, z = rng.uniform(0, 100, rows), rng.normal(5, 2, rows)
    y = 3.0 + 0.5 * x - 2.0 * z + rng.normal(0, 1, rows)
    city = rng.choice(["郑州", "洛阳"], rows)
    lines = [f"{a:.6f},{b:.6f},{c:.6f},{d}" for a, b, c, d in zip(x, z, y, city, strict=True)]
    path.write_text("x,z,y,city\n" + "\n".join(lines) + "\n")
    return np.column_stack([np.round(x, 6), np.round(z, 6), np.round(y, 6), city == "郑州"])


def aggregate(backend, paths: list[Path], params: dict) -> dict:  # type: ignore[no-untyped-def]
    secret, public = he.new_context()  # in the consumer's connector
    fingerprint = he.fingerprint(public)
    parts = []
    for path in paths:
        part = backend.run(
            WorkerJob(
                "he.aggregate.part",
                {**params, "fingerprint": fingerprint},
                [public],
                str(path),
            )
        )
        parts.append(part.blobs[0])
    size = part.header["parts"]
    total = backend.run(WorkerJob("he.sum", {"fingerprint": fingerprint, "size": size}, [public, *parts]))
    return dict(
        backend.run(WorkerJob("he.aggregate.finish", params, [secret, total.blobs[0]])).header["result"]
    )


def close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(1.0, abs(b))


@pytest.mark.parametrize("providers", [1, 3])
def test_encrypted_totals_equal_the_plaintext_statistics(tmp_path: Path, backend, providers: int) -> None:  # type: ignore[no-untyped-def]
    data = [provider_csv(tmp_path / f"p{i}.csv", i, 3000 + 500 * i) for i in range(providers)]
    result = aggregate(backend, [tmp_path / f"p{i}.csv" for i in range(providers)], PARAMS)
    union = np.vstack(data)
    x, z, y = (union[:, i].astype(float) for i in range(3))
    assert result["count"] == len(x)
    assert close(result["sum"], x.sum()) and close(result["mean"], x.mean())
    assert close(result["variance"], x.var(ddof=1))
    assert result["histogram"]["counts"] == list(np.histogram(x, bins=[0, 25, 50, 75, 100])[0])
    design = np.column_stack([np.ones(len(x)), x, z])
    expected = np.linalg.lstsq(design, y, rcond=None)[0]
    got = [
        result["linreg"]["intercept"],
        result["linreg"]["coefficients"]["x"],
        result["linreg"]["coefficients"]["z"],
    ]
    assert all(close(g, e) for g, e in zip(got, expected, strict=True))


def test_where_selects_the_rows_each_provider_counts(tmp_path: Path, backend) -> None:  # type: ignore[no-untyped-def]
    data = provider_csv(tmp_path / "p.csv", 7, 2000)
    params = {"stats": ["count", "sum"], "column": "x", "where": "city = '郑州' and x >= 50"}
    result = aggregate(backend, [tmp_path / "p.csv"], params)
    chosen = data[(data[:, 3] == True) & (data[:, 0].astype(float) >= 50)]  # noqa: E712
    assert result["count"] == len(chosen) and close(result["sum"], chosen[:, 0].astype(float).sum())


def test_differential_privacy_adds_noise_and_needs_bounds(tmp_path: Path, backend) -> None:  # type: ignore[no-untyped-def]
    provider_csv(tmp_path / "p.csv", 8, 2000)
    params = {"stats": ["count", "sum"], "column": "x", "epsilon": 1.0, "bounds": [0, 100]}
    noisy = [aggregate(backend, [tmp_path / "p.csv"], params)["count"] for _ in range(2)]
    assert all(abs(n - 2000) < 2000 for n in noisy)  # Laplace(101): around 2000, almost surely off it
    _, public = he.new_context()
    fingerprint = he.fingerprint(public)
    with pytest.raises(
        WorkerFailed, match=r"differential privacy needs epsilon > 0 and bounds \[lower, upper\]"
    ):
        backend.run(WorkerJob("he.aggregate.part", {"stats": ["count"], "column": "x", "epsilon": 1.0,
                                                    "fingerprint": fingerprint},
                              [public], str(tmp_path / "p.csv")))  # fmt: skip


def test_bad_contexts_and_ciphertexts_are_refused(tmp_path: Path, backend) -> None:  # type: ignore[no-untyped-def]
    provider_csv(tmp_path / "p.csv", 9, 100)
    secret, public = he.new_context()
    fp = he.fingerprint(public)
    part = {"stats": ["count"], "column": "x"}
    with pytest.raises(WorkerFailed, match="the context is not the one this job declared"):
        backend.run(
            WorkerJob("he.aggregate.part", {**part, "fingerprint": fp}, [secret], str(tmp_path / "p.csv"))
        )
    with pytest.raises(WorkerFailed, match="the context carries a secret key; send the public context only"):
        backend.run(
            WorkerJob(
                "he.aggregate.part",
                {**part, "fingerprint": he.fingerprint(secret)},
                [secret],
                str(tmp_path / "p.csv"),
            )
        )
    one = backend.run(
        WorkerJob("he.aggregate.part", {**part, "fingerprint": fp}, [public], str(tmp_path / "p.csv"))
    )
    with pytest.raises(WorkerFailed, match="contribution 0 holds 1 values, expected 3"):
        backend.run(WorkerJob("he.sum", {"fingerprint": fp, "size": 3}, [public, one.blobs[0]]))
    with pytest.raises(WorkerFailed, match="contribution 1 is not a ciphertext of this context"):
        backend.run(
            WorkerJob("he.sum", {"fingerprint": fp, "size": 1}, [public, one.blobs[0], b"\x00garbage"])
        )
    with pytest.raises(
        WorkerFailed, match=r"p.csv: no column 'salary'; the header has \['x', 'z', 'y', 'city'\]"
    ):
        backend.run(
            WorkerJob(
                "he.aggregate.part",
                {"stats": ["sum"], "column": "salary", "fingerprint": fp},
                [public],
                str(tmp_path / "p.csv"),
            )
        )


def test_scores_equal_the_plaintext_product_and_missing_ids_are_not_found(tmp_path: Path, backend) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(11)
    ids = [f"1380000{i:04d}" for i in range(5000)]
    features = rng.uniform(0, 10, (5000, 4))
    rows = "\n".join(
        f"{i}," + ",".join(f"{v:.6f}" for v in row) for i, row in zip(ids, features, strict=True)
    )
    (tmp_path / "f.csv").write_text("id,a,b,c,d\n" + rows + "\n")
    weights = [0.5, -1.25, 2.0, 0.125]
    secret, public = he.new_context()
    encrypted = he.encrypt_weights(he.load_secret(secret), weights)
    asked = [ids[4999], "nobody", *ids[:4500]]
    part = backend.run(
        WorkerJob(
            "he.score.part",
            {"features": ["a", "b", "c", "d"], "id_column": "id", "fingerprint": he.fingerprint(public)},
            [public, json.dumps(asked).encode(), *encrypted],
            str(tmp_path / "f.csv"),
        )
    )
    found = json.loads(part.blobs[0])
    assert found[:3] == [True, False, True] and part.header["found"] == 4501 and part.header["batches"] == 2
    scores = np.frombuffer(
        backend.run(WorkerJob("he.score.finish", {"found": 4501}, [secret, *part.blobs[1:]])).blobs[0], "<f8"
    )
    assert scores.shape == (4501,)
    expected = np.round(features, 6)[[4999, *range(4500)]] @ np.array(weights)
    assert np.max(np.abs(np.array(scores) - expected)) < 1e-3
