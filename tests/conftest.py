"""Fixtures for the whole suite: a throwaway PostgreSQL cluster, per-test databases, fixed keys.

`make test` needs no running database: the session starts its own PostgreSQL cluster (initdb
into a temporary directory, a free port on loopback) and stops it at the end. Without the
server binaries the PostgreSQL cases are skipped — except in CI (CI=true), where that is a
failure, because .ci/run installs them.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts.keys import SigningKey
from tds.local import free_port

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
TESTDATA = SHARED / "testdata"

# Fixed Ed25519 test keys (RFC 8032 seeds) for reproducible documents.
ALICE = SigningKey.from_seed(bytes(range(32)))
BOB = SigningKey.from_seed(bytes(range(32, 64)))
MALLORY = SigningKey.from_seed(bytes(range(64, 96)))

# The fields of a succeeded usage record between telecom (provider) and bank (consumer).
USAGE_FIELDS = dict(
    id="urn:uuid:r",
    job="urn:uuid:j",
    agreement="urn:uuid:a",
    dataset="urn:uuid:d",
    provider="telecom",
    consumer="bank",
    operation="psi.cardinality",
    purpose="risk-control",
    outcome="succeeded",
    reason="completed",
    consumer_set_size=10,
    provider_set_size=12,
    fee_fen=5000,
    started_at="2026-11-27T08:00:00Z",
    finished_at="2026-11-27T08:00:01Z",
)


def _postgres_bindir() -> Path | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL cluster for this test session; yields its base URL (no database)."""
    bindir = _postgres_bindir()
    if bindir is None:
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL server binaries are missing (.ci/run installs package postgresql)")
        pytest.skip("PostgreSQL server binaries are not installed")
    tmp = Path(tempfile.mkdtemp(prefix="tds-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        prefix = ["runuser", "-u", "postgres", "--"]
        shutil.chown(tmp, "postgres")
    data, port = tmp / "data", free_port()

    def run(*args: str) -> None:
        subprocess.run([*prefix, *args], check=True, capture_output=True)

    run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "tds", "-E", "UTF8", "--no-sync")
    run(
        str(bindir / "pg_ctl"),
        "-D",
        str(data),
        "-l",
        str(tmp / "server.log"),
        "-w",
        "-o",
        f"-p {port} -k {tmp} -h 127.0.0.1 -F -c max_connections=200",
        "start",
    )
    try:
        yield f"postgresql+psycopg://tds@127.0.0.1:{port}"
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def postgres_db(postgres_server: str) -> str:
    """A new, empty database on the session's cluster."""
    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    base = postgres_server.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{postgres_server}/{name}"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test against the embedded default and against PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return str(request.getfixturevalue("postgres_db"))
