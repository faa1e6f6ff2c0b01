"""Fixtures for the whole suite: a throwaway PostgreSQL cluster and Docker engine, fixed keys.

`make test` needs no running database: the session starts its own PostgreSQL cluster (initdb
into a temporary directory, a free port on loopback) and stops it at the end. Likewise, when no
Docker engine answers and ``dockerd`` is installed, the session starts a private one (its own
socket and data directory) for the docker sandbox cases. Without the binaries those cases are
skipped — except in CI (CI=true), where that is a failure, because .ci/run installs them.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts.keys import SigningKey
from node import clock
from tds.local import create_postgres_database, docker_engine_answers, postgres_bindir, postgres_cluster
from tds.local import docker_engine as docker_engine_or_private

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
TESTDATA = SHARED / "testdata"

# Fixed Ed25519 test keys (RFC 8032 seeds) for reproducible documents.
ALICE = SigningKey.from_seed(bytes(range(32)))
BOB = SigningKey.from_seed(bytes(range(32, 64)))
MALLORY = SigningKey.from_seed(bytes(range(64, 96)))

# An hour ago by the nodes' clock: a use the space accepts on whatever day the suite runs.
_HOUR_AGO = clock.now().replace(microsecond=0) - dt.timedelta(hours=1)

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
    started_at=_HOUR_AGO.isoformat().replace("+00:00", "Z"),
    finished_at=(_HOUR_AGO + dt.timedelta(seconds=1)).isoformat().replace("+00:00", "Z"),
)


def period(months: int = 0, now: dt.datetime | None = None) -> str:
    """The settlement period (YYYY-MM) ``months`` after the one the nodes' clock is in now
    (negative: before), so that tests name "last month" instead of a date."""
    now = now or clock.now()
    index = now.year * 12 + now.month - 1 + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def at(in_period: str, day: int, time_of_day: str = "10:00:00") -> str:
    """An RFC 3339 UTC instant on ``day`` of ``in_period``."""
    return f"{in_period}-{day:02d}T{time_of_day}Z"


def period_end(in_period: str) -> str:
    """The instant ``in_period`` closes: the first moment of the next month."""
    year, month = map(int, in_period.split("-"))
    return at(period(1, dt.datetime(year, month, 1, tzinfo=dt.UTC)), 1, "00:00:00")


@pytest.fixture(scope="session", autouse=True)
def user_state_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The suite's own $XDG_STATE_HOME (an auditor's seen heads go there): the tests, and the
    processes they start, never write to the user's."""
    folder = tmp_path_factory.mktemp("xdg-state")
    before = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(folder)
    yield folder
    if before is None:
        del os.environ["XDG_STATE_HOME"]
    else:
        os.environ["XDG_STATE_HOME"] = before


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL cluster for this test session; yields its base URL (no database)."""
    if postgres_bindir() is None:
        missing("PostgreSQL server binaries are not installed", "package postgresql")
    with postgres_cluster(fsync=False) as url:
        yield url


def missing(what: str, install: str) -> None:
    """Skip for a missing component; in CI, fail: .ci/run is meant to have installed it."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} (.ci/run installs {install})")
    pytest.skip(what)


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[None]:
    """A Docker engine for the session: the running one, or a private dockerd started here."""
    if not docker_engine_answers() and (shutil.which("dockerd") is None or os.geteuid() != 0):
        missing("no Docker engine runs and dockerd (as root) is not available", "docker.io")
    with docker_engine_or_private():  # raises, failing the tests that need it, if dockerd does not start
        yield


SANDBOX_BACKENDS = ("process", "bwrap", "docker")
SANDBOX_INSTALL = {"bwrap": "package bubblewrap", "docker": "docker.io", "process": "nothing"}


def require_backend(request: pytest.FixtureRequest, name: str) -> None:
    """Skip (fail in CI) when sandbox backend ``name`` cannot run here, saying why."""
    from sandbox.backends import probe

    if name == "docker":
        request.getfixturevalue("docker_engine")
    works, why = probe(name)
    if not works:
        missing(f"sandbox backend {name}: {why}", SANDBOX_INSTALL[name])


@pytest.fixture(params=SANDBOX_BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    """Each sandbox backend in turn: the same test on process, bwrap and docker."""
    require_backend(request, request.param)
    return str(request.param)


@pytest.fixture
def postgres_db(postgres_server: str) -> str:
    """A new, empty database on the session's cluster."""
    return create_postgres_database(postgres_server, "t_" + uuid.uuid4().hex[:12])


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test against the embedded default and against PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return str(request.getfixturevalue("postgres_db"))
