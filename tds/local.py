"""Running a space and connectors as real processes on loopback (the demo, the benchmark and
the integration tests all use this)."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from contracts.credit_code import check_character
from node.config import NodeConfig, load
from tds.client import NodeAPI


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def credit_code(seed: int) -> str:
    """A well-formed unified social credit code (GB 32100) for test and demo participants."""
    first17 = f"91410100MA{seed:07d}"
    return first17 + check_character(first17)


def tds_command(*args: str) -> list[str]:
    # -P: the current directory is not put on sys.path, so a folder named like one of the packages
    # (the story's ./space data directory) cannot shadow it in the node's process
    return [sys.executable, "-P", "-m", "tds.cli", *args]


def run_tds(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(tds_command(*args), capture_output=True, text=True, env=env, check=False)


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"node for {url} exited with status {proc.returncode}")
        try:
            if httpx.get(url + "/healthz", timeout=1, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"node at {url} did not become healthy within {timeout} s")


@dataclass
class Node:
    config: NodeConfig
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return self.config.url

    def api(self) -> NodeAPI:
        return NodeAPI.of(self.config)

    def start(self, extra_env: dict[str, str] | None = None) -> None:
        role = self.config.role
        self.log_path = self.config.path / "serve.log"
        # the node's own log, as private as the rest of its directory (it names jobs and peers)
        log = os.fdopen(os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
        env = {**os.environ, **(extra_env or {})}
        self.proc = subprocess.Popen(
            tds_command("--data-dir", str(self.config.path), role, "serve"),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        log.close()
        wait_healthy(self.url, self.proc)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@dataclass
class Cluster:
    root: Path
    space: Node
    connectors: dict[str, Node] = field(default_factory=dict)

    def operator(self) -> NodeAPI:
        return self.space.api()

    def add_connector(
        self,
        name: str,
        legal_name: str,
        seed: int,
        roles: str = "provider,consumer",
        jurisdiction: str = "CN-HA",
        admit: bool = True,
        start: bool = True,
        options: dict[str, Any] | None = None,
    ) -> Node:
        data_dir = self.root / name
        args = [
            "--data-dir",
            str(data_dir),
            "connector",
            "init",
            "--name",
            name,
            "--space",
            self.space.url,
            "--url",
            f"http://127.0.0.1:{free_port()}",
            "--legal-name",
            legal_name,
            "--credit-code",
            credit_code(seed),
            "--roles",
            roles,
            "--jurisdiction",
            jurisdiction,
        ]
        for key, value in (options or {}).items():
            args += ["--option", f"{key}={value}"]
        done = run_tds(*args)
        if done.returncode != 0:
            raise RuntimeError(f"connector init failed: {done.stderr or done.stdout}")
        node = Node(load(data_dir))
        if admit:
            api = self.operator()
            try:
                api.post(f"/admin/participants/{name}/admit")
            finally:
                api.close()
        if start:
            node.start()
        self.connectors[name] = node
        return node

    def stop(self) -> None:
        for node in [*self.connectors.values(), self.space]:
            node.stop()


@contextmanager
def cluster(root: Path, db_url: str | None = None, auto_admit: bool = False) -> Iterator[Cluster]:
    """A space (and later connectors) in ``root``, stopped on exit whatever happens."""
    space_dir = root / "space"
    # a development space: every node of a local cluster listens on loopback
    args = [
        "--data-dir",
        str(space_dir),
        "space",
        "init",
        "--dev",
        "--url",
        f"http://127.0.0.1:{free_port()}",
    ]
    if db_url:
        args += ["--db", db_url]
    if auto_admit:
        args.append("--auto-admit")
    done = run_tds(*args)
    if done.returncode != 0:
        raise RuntimeError(f"space init failed: {done.stderr or done.stdout}")
    space = Node(load(space_dir))
    running = Cluster(root=root, space=space)
    try:
        space.start()
        yield running
    finally:
        running.stop()


# --- a throwaway PostgreSQL cluster (tests, benchmarks) --------------------------------------
def postgres_bindir() -> Path | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


@contextmanager
def postgres_cluster(fsync: bool = True) -> Iterator[str]:
    """initdb into a temporary directory, start on a free loopback port, yield the base URL
    (``postgresql+psycopg://tds@127.0.0.1:PORT``, no database), stop and remove on exit.
    ``fsync=False`` trades durability for speed (tests only)."""
    bindir = postgres_bindir()
    if bindir is None:
        raise RuntimeError(
            "PostgreSQL server binaries are not installed (Debian: apt-get install postgresql)"
        )
    tmp = Path(tempfile.mkdtemp(prefix="tds-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        prefix = ["runuser", "-u", "postgres", "--"]
        shutil.chown(tmp, "postgres")
    data, port = tmp / "data", free_port()

    def run(*args: str) -> None:
        subprocess.run([*prefix, *args], check=True, capture_output=True)

    run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "tds", "-E", "UTF8", "--no-sync")
    options = f"-p {port} -k {tmp} -h 127.0.0.1 -c max_connections=200" + ("" if fsync else " -F")
    run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(tmp / "server.log"), "-w", "-o", options, "start")
    try:
        yield f"postgresql+psycopg://tds@127.0.0.1:{port}"
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(tmp, ignore_errors=True)


# --- a private Docker engine (tests, benchmarks) -----------------------------------------------
def docker_engine_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=5).ping()
        return True
    except Exception:  # no socket, refused, wrong permissions: all mean "no engine"
        return False


@contextmanager
def docker_engine() -> Iterator[None]:
    """The running Docker engine, or a private dockerd started for the block (its own socket,
    data and exec roots in a temporary directory; DOCKER_HOST points at it meanwhile). Raises
    RuntimeError saying what is missing when neither is possible."""
    if docker_engine_answers():
        yield
        return
    dockerd = shutil.which("dockerd")
    if dockerd is None or os.geteuid() != 0:
        raise RuntimeError("no Docker engine runs and dockerd (as root) is not available")
    tmp = Path(tempfile.mkdtemp(prefix="tds-docker-"))
    sock = tmp / "docker.sock"
    log = (tmp / "dockerd.log").open("wb")
    # no iptables and no bridge: sandbox containers run with network_mode=none
    proc = subprocess.Popen(
        [dockerd, "--iptables=false", "--bridge=none", f"--host=unix://{sock}",
         f"--data-root={tmp / 'data'}", f"--exec-root={tmp / 'exec'}", f"--pidfile={tmp / 'docker.pid'}"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    previous = os.environ.get("DOCKER_HOST")
    os.environ["DOCKER_HOST"] = f"unix://{sock}"
    try:
        for _ in range(300):
            if docker_engine_answers() or proc.poll() is not None:
                break
            time.sleep(0.1)
        if not docker_engine_answers():
            raise RuntimeError(f"dockerd did not start: {(tmp / 'dockerd.log').read_text()[-2000:]}")
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        if previous is None:
            os.environ.pop("DOCKER_HOST", None)
        else:
            os.environ["DOCKER_HOST"] = previous
        shutil.rmtree(tmp, ignore_errors=True)


def create_postgres_database(base_url: str, name: str) -> str:
    import psycopg

    with psycopg.connect(
        base_url.replace("postgresql+psycopg://", "postgresql://") + "/postgres", autocommit=True
    ) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return f"{base_url}/{name}"


# --- the story's steps, shared by the demo, the benchmark and the integration tests -----------
def publish_dataset(
    provider: NodeAPI, name: str, csv: Path, offer: dict[str, Any], **dataset: Any
) -> dict[str, Any]:
    """Register ``csv`` at the provider's connector and publish it with one offer."""
    provider.post("/api/datasets", {"name": name, "path": str(csv), "key_column": "phone", **dataset})
    return provider.post(f"/api/datasets/{name}/publish", {"offers": [offer]})


def negotiate(
    consumer: NodeAPI,
    offer_id: str,
    operations: list[str],
    purpose: str = "risk-control",
    timeout: float = 30,
) -> dict[str, Any]:
    """Request an agreement and wait until it is FINALIZED or TERMINATED."""
    neg = consumer.post("/api/contracts", {"offer": offer_id, "purpose": purpose, "operations": operations})
    return consumer.wait_for(
        f"/api/contracts/{neg['id']}",
        lambda n: n["state"] in ("FINALIZED", "TERMINATED"),
        timeout,
    )


def run_job(
    consumer: NodeAPI,
    agreement: str,
    operation: str,
    csv: Path,
    column: str = "phone",
    timeout: float = 7200,
    **extra: Any,
) -> dict[str, Any]:
    """Submit a job and wait for it to end; ``extra`` are the operation's own fields (``sum``,
    ``by`` for psi.sum)."""
    body = {"agreement": agreement, "operation": operation, "input": str(csv), "column": column, **extra}
    job = consumer.post("/api/jobs", body)
    return dict(consumer.wait_for_job(job["id"], timeout))
