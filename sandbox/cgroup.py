"""A pids cgroup per job: a process-count limit that holds for root, and a sure way to kill all.

RLIMIT_NPROC does not bind a process whose real user is root (the kernel exempts it), and a
process that calls ``setsid`` escapes a process-group kill. A cgroup with ``pids.max`` bounds
the process count for everyone, and its member list is every process the job started, however
it detached. Both cgroup v1 (``/sys/fs/cgroup/pids``) and v2 (a delegated subtree with the pids
controller) are handled; where neither is writable, :func:`create` returns None and the job's
record says the limit was the rlimit only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from pathlib import Path

V1_ROOT = Path("/sys/fs/cgroup/pids")
V2_ROOT = Path("/sys/fs/cgroup")


def _parent() -> Path | None:
    if (V1_ROOT / "cgroup.procs").exists():
        return V1_ROOT
    controllers = V2_ROOT / "cgroup.controllers"
    if controllers.exists() and "pids" in controllers.read_text().split():
        return V2_ROOT
    return None


class PidsCgroup:
    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def procs(self) -> Path:
        return self.path / "cgroup.procs"

    def members(self) -> list[int]:
        try:
            return [int(line) for line in self.procs.read_text().split()]
        except (FileNotFoundError, ValueError):
            return []

    def kill_all(self) -> None:
        """SIGKILL every member until none is left (a fork mid-kill is caught by the next pass)."""
        for _ in range(200):
            members = self.members()
            if not members:
                return
            for pid in members:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.005)

    def remove(self) -> None:
        self.kill_all()
        for _ in range(100):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.01)  # killed processes leave the cgroup as they are reaped


def create(max_pids: int) -> PidsCgroup | None:
    """A new pids cgroup allowing ``max_pids`` processes, or None where none can be made."""
    parent = _parent()
    if parent is None:
        return None
    path = parent / f"tds-job-{uuid.uuid4().hex[:12]}"
    try:
        path.mkdir()
        (path / "pids.max").write_text(str(max_pids))
    except OSError:
        with contextlib.suppress(OSError):
            path.rmdir()
        return None
    return PidsCgroup(path)


def available() -> tuple[bool, str]:
    group = create(8)
    if group is None:
        return False, "no writable pids cgroup (needs /sys/fs/cgroup/pids or a delegated cgroup v2 subtree)"
    group.remove()
    return True, f"pids cgroup under {group.path.parent}"
