"""The hostile suite's cases: job bodies that try to hurt the host, and how the host checks.

Each case is a script run through ``script.run`` with the limits it needs. Whether it was
contained is decided on the host side, from what the host can observe — a listener that got a
connection, a secret that came back, a file that appeared, a process that survived — never from
the script's own word alone. Network cases aim only at listeners the test opened on loopback.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.errors import LimitExceeded, SandboxError
from sandbox.interface import WorkerResult

MARKER_PREFIX = "tdshostile"  # process names of the survival cases start with this (≤ 15 bytes)


class Host:
    """What the host holds and watches while one case runs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.canary = secrets.token_hex(16)
        self.marker = f"{MARKER_PREFIX}{secrets.token_hex(2)}"
        secret = root / "secret"
        secret.mkdir(mode=0o700)
        self.key = secret / "node.key"
        self.key.write_text(f"-----BEGIN PRIVATE KEY----- {self.canary}\n")
        self.key.chmod(0o600)
        self.database = secret / "connector.db"
        self.database.write_bytes(b"SQLite format 3\x00" + self.canary.encode())
        self.other_dataset = secret / "other.csv"
        self.other_dataset.write_text(f"phone\n{self.canary}\n")
        self.dataset = root / "mine.csv"
        self.dataset.write_text("phone\n13800000000\n")
        self.outside = root / "outside" / "written-by-the-job"
        self.outside.parent.mkdir()
        self.tcp = socket.create_server(("127.0.0.1", 0))
        self.tcp.settimeout(0.2)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp.settimeout(0.5)
        self.tcp_hits: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    self.tcp_hits.append(conn.recv(100) or b"(connected)")
                except OSError:
                    self.tcp_hits.append(b"(connected)")

    def args(self) -> dict[str, Any]:
        return {
            "tcp_port": self.tcp.getsockname()[1],
            "udp_port": self.udp.getsockname()[1],
            "key": str(self.key),
            "database": str(self.database),
            "other_dataset": str(self.other_dataset),
            "outside": str(self.outside),
            "host_pid": os.getpid(),
            "marker": self.marker,
        }

    def udp_received(self) -> bool:
        try:
            self.udp.recv(100)
            return True
        except OSError:
            return False

    def survivors(self) -> list[int]:
        """Host processes carrying this case's marker as their name."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if (entry / "comm").read_text().strip() == self.marker:
                        found.append(int(entry.name))
                except OSError:
                    continue
        return found

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.tcp.close()
        self.udp.close()


Judge = Callable[[Host, "WorkerResult | None", "SandboxError | None"], tuple[bool, str]]


@dataclass(frozen=True)
class Case:
    name: str
    source: str
    judge: Judge
    limits: dict[str, int] = field(default_factory=dict)


def _said(result: WorkerResult | None, error: SandboxError | None) -> str:
    return str(result.header if result else error)


def secret_stays(host: Host, result: WorkerResult | None, error: SandboxError | None) -> tuple[bool, str]:
    leaked = host.canary in _said(result, error)
    return not leaked, "the secret came back" if leaked else "secret not reached"


def limit_hit(limit: str) -> Judge:
    def judge(host: Host, result: WorkerResult | None, error: SandboxError | None) -> tuple[bool, str]:
        if isinstance(error, LimitExceeded) and error.limit == limit:
            return True, str(error)
        return False, f"expected the {limit} limit, got {_said(result, error)[:200]}"

    return judge


def no_survivor(limit: str | None = None) -> Judge:
    def judge(host: Host, result: WorkerResult | None, error: SandboxError | None) -> tuple[bool, str]:
        alive = host.survivors()
        if alive:
            return False, f"processes outlived the job: {alive}"
        if limit is not None:
            return limit_hit(limit)(host, result, error)
        return True, f"nothing survived ({_said(result, error)[:120]})"

    return judge


def tcp_judge(host: Host, result: WorkerResult | None, error: SandboxError | None) -> tuple[bool, str]:
    return (not host.tcp_hits, f"listener got {host.tcp_hits}" if host.tcp_hits else "no connection")


def udp_judge(host: Host, result: WorkerResult | None, error: SandboxError | None) -> tuple[bool, str]:
    got = host.udp_received()
    return not got, "datagram arrived" if got else "no datagram"


def outside_judge(host: Host, result: WorkerResult | None, error: SandboxError | None) -> tuple[bool, str]:
    written = host.outside.exists()
    return not written, f"{host.outside} was written" if written else "nothing written outside"


def fork_judge(host: Host, result: WorkerResult | None, error: SandboxError | None) -> tuple[bool, str]:
    alive = host.survivors()
    forked = result.header["result"].get("forked", 0) if result else None
    if alive:
        return False, f"{len(alive)} processes outlived the job"
    if result is not None and forked is not None and forked >= BOMB_ATTEMPTS:
        return False, f"all {forked} forks succeeded: no process limit"
    return True, f"stopped after {forked} forks ({result.header['result'].get('error') if result else error})"


def ptrace_judge(host: Host, result: WorkerResult | None, error: SandboxError | None) -> tuple[bool, str]:
    if result is None:
        return True, str(error)
    answer = result.header["result"]
    return answer["host"] != 0, f"PTRACE_SEIZE of the host process returned {answer['host']} ({answer})"


def root_judge(host: Host, result: WorkerResult | None, error: SandboxError | None) -> tuple[bool, str]:
    if result is None:
        return True, str(error)
    answer = result.header["result"]
    return answer["euid"] != 0, f"euid after the attempt: {answer['euid']} ({answer.get('error')})"


READ = """
try:
    with open(ARGS[{field!r}], "rb") as f:
        RESULT["data"] = f.read(4096).decode("latin-1")
except OSError as exc:
    RESULT["error"] = str(exc)
"""

BOMB_ATTEMPTS = 300
MEMORY_LIMIT_MB = 160

CASES = [
    Case("tcp-out", """
import socket
try:
    with socket.create_connection(("127.0.0.1", ARGS["tcp_port"]), timeout=3) as s:
        s.sendall(b"leaked")
    RESULT["sent"] = True
except OSError as exc:
    RESULT["error"] = str(exc)
""", tcp_judge),
    Case("udp-out", """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    s.sendto(b"leaked", ("127.0.0.1", ARGS["udp_port"]))
    RESULT["sent"] = True
except OSError as exc:
    RESULT["error"] = str(exc)
""", udp_judge),
    Case("read-key-file", READ.format(field="key"), secret_stays),
    Case("read-database", READ.format(field="database"), secret_stays),
    Case("read-other-dataset", READ.format(field="other_dataset"), secret_stays),
    Case("read-via-proc", """
import os
seen = {}
for pid in (ARGS["host_pid"], os.getppid(), 1):
    for path in (f"/proc/{pid}/environ", f"/proc/{pid}/root{ARGS['key']}"):
        try:
            with open(path, "rb") as f:
                seen[path] = f.read(4096).decode("latin-1")
        except OSError as exc:
            seen[path] = str(exc)
RESULT["seen"] = seen
""", secret_stays),
    Case("host-environment", """
import os
RESULT["env"] = dict(os.environ)
with open("/proc/self/environ", "rb") as f:
    RESULT["self"] = f.read().decode("latin-1")
""", secret_stays),
    Case("write-outside-scratch", """
try:
    with open(ARGS["outside"], "w") as f:
        f.write("pwned")
    RESULT["written"] = True
except OSError as exc:
    RESULT["error"] = str(exc)
""", outside_judge),
    Case("fill-disk", """
with open("filler", "wb") as f:
    for _ in range(64):
        f.write(b"x" * (1 << 20))
""", limit_hit("file_size"), {"file_size_mb": 4}),
    Case("allocate-memory", f"""
hoard = bytearray({2 * MEMORY_LIMIT_MB} << 20)
""", limit_hit("memory"), {"memory_mb": MEMORY_LIMIT_MB, "total_memory_mb": MEMORY_LIMIT_MB}),
    Case("cpu-spin", """
while True:
    pass
""", limit_hit("cpu"), {"cpu_seconds": 1, "wall_seconds": 15}),
    Case("sleep-past-wall-clock", """
import time
time.sleep(600)
""", limit_hit("wall"), {"wall_seconds": 2}),
    Case("fork-bomb", f"""
import ctypes, os, time
ctypes.CDLL(None).prctl(15, ARGS["marker"].encode(), 0, 0, 0)  # PR_SET_NAME
forked = 0
try:
    for _ in range({BOMB_ATTEMPTS}):
        if os.fork() == 0:
            time.sleep(120)
            os._exit(0)
        forked += 1
except OSError as exc:
    RESULT["error"] = str(exc)
RESULT["forked"] = forked
""", fork_judge, {"processes": 32}),
    Case("daemonize", """
import ctypes, os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        ctypes.CDLL(None).prctl(15, ARGS["marker"].encode(), 0, 0, 0)  # PR_SET_NAME
        os.closerange(0, 3)
        time.sleep(120)
    os._exit(0)
time.sleep(0.5)
RESULT["daemonized"] = True
""", no_survivor()),
    Case("flood-output", """
import os
chunk = b"x" * (1 << 20)
for _ in range(64):
    os.write(1, chunk)
""", limit_hit("output"), {"output_mb": 1}),
    Case("ptrace-parent", """
import ctypes, ctypes.util, os
libc = ctypes.CDLL(None, use_errno=True)
PTRACE_SEIZE, PTRACE_DETACH = 0x4206, 17
RESULT["host"] = libc.ptrace(PTRACE_SEIZE, ARGS["host_pid"], 0, 0)
RESULT["host_errno"] = ctypes.get_errno()
RESULT["parent"] = libc.ptrace(PTRACE_SEIZE, os.getppid(), 0, 0)
for pid in (ARGS["host_pid"], os.getppid()):
    libc.ptrace(PTRACE_DETACH, pid, 0, 0)
""", ptrace_judge),
    Case("setuid-root", """
import os
try:
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)
except OSError as exc:
    RESULT["error"] = str(exc)
RESULT["euid"] = os.geteuid()
""", root_judge),
]  # fmt: skip
