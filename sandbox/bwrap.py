"""The ``bwrap`` backend: the worker in a bubblewrap sandbox that sees almost nothing.

Every namespace is new (``--unshare-all``: no network, no host processes, no IPC), the sandbox
dies with the connector and runs in a new session (no TIOCSTI into our terminal). The worker
sees, read-only, only the shared libraries, the Python runtime, the installed packages and the
``sandbox`` package itself; a private /tmp as its working directory; and the one dataset of the
job at ``/data/<name>``. It runs as uid 65534 with no capabilities, under the seccomp filter of
:mod:`sandbox.seccomp`, the worker's rlimits, and a pids cgroup where one can be made.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import sandbox
from sandbox import seccomp
from sandbox.interface import check_dataset
from sandbox.limits import Limits
from sandbox.process import BASE_ISOLATION, ProcessBackend, worker_command

NOBODY = "65534"
LIBRARY_DIRS = ("/lib", "/lib64", "/lib32", "/usr/lib", "/usr/lib64", "/usr/lib32")


def runtime_paths() -> list[str]:
    """Directories the worker needs, read-only: Python's prefixes and where packages live."""
    paths = {sys.base_prefix, sys.prefix, sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    paths.add(str(Path(sandbox.__file__).resolve().parent))  # an editable install lives elsewhere
    # keep only outermost directories, so that no bind hides another
    ordered = sorted({str(Path(p).resolve()) for p in paths if Path(p).exists()})
    kept: list[str] = []
    for path in ordered:
        if not any(path == k or path.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(path)
    return kept


def library_args() -> list[str]:
    """The shared libraries, with /lib-style symlinks recreated as they are on the host."""
    args: list[str] = []
    for path in LIBRARY_DIRS:
        p = Path(path)
        if p.is_symlink():
            args += ["--symlink", os.readlink(p), path]
        elif p.is_dir():
            args += ["--ro-bind", path, path]
    return args


def base_args() -> list[str]:
    args = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session"]
    args += ["--unshare-user", "--uid", NOBODY, "--gid", NOBODY, "--cap-drop", "ALL"]
    if disables_userns():
        # no nested user namespace either (user.max_user_namespaces = 1 inside); the seccomp
        # filter refuses clone's namespace flags as well, for bubblewraps older than 0.8
        args += ["--disable-userns"]
    # the private /tmp first: binds after it stay visible even when they live under /tmp
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    args += library_args()
    for path in runtime_paths():
        args += ["--ro-bind", path, path]
    args += ["--chdir", "/tmp"]
    args += ["--clearenv", "--setenv", "LANG", "C.UTF-8", "--setenv", "PATH", "/usr/bin:/bin"]
    return args


@functools.cache
def disables_userns() -> bool:
    """Whether this bubblewrap has --disable-userns (0.8.0 and later)."""
    try:
        shown = subprocess.run(["bwrap", "--help"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "--disable-userns" in shown.stdout


@functools.cache
def available() -> tuple[bool, str]:
    """Whether bubblewrap runs the worker's Python here, and if not, why."""
    if shutil.which("bwrap") is None:
        return False, "bubblewrap is not installed (Debian: apt-get install bubblewrap)"
    try:
        probe = subprocess.run(
            [*base_args(), "--", sys.executable, "-I", "-c", "import sandbox.worker"],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"bwrap failed to start: {exc}"
    if probe.returncode != 0:
        return False, f"bwrap refused: {probe.stderr.decode(errors='replace').strip()[-300:]}"
    filtered = "with a seccomp filter" if seccomp.program() is not None else "without seccomp (no table)"
    return True, f"bubblewrap, all namespaces, uid {NOBODY}, {filtered}"


class BwrapBackend(ProcessBackend):
    name = "bwrap"

    def command(
        self, dataset: str | None, limits: Limits, prewarm: str | None = None
    ) -> tuple[list[str], str | None, list[int]]:
        args = base_args()
        seen_as = None
        if dataset is not None:
            check_dataset(dataset)
            seen_as = f"/data/{Path(dataset).name}"
            args += ["--ro-bind", dataset, seen_as]
        plugins = []
        for index, plugin in enumerate(self.plugins):  # read-only, under a name of our own
            plugins.append(f"/plugins/{index}-{plugin.name}")
            args += ["--ro-bind", str(plugin), plugins[-1]]
        fds: list[int] = []
        fd = seccomp.filter_fd()
        if fd is not None:
            args += ["--seccomp", str(fd)]
            fds.append(fd)
        return [*args, "--", *worker_command(sys.executable, limits, prewarm, tuple(plugins))], seen_as, fds

    def isolation(self) -> tuple[str, ...]:
        extra = ("seccomp",) if seccomp.program() is not None else ()
        return (*BASE_ISOLATION, "namespaces", "filesystem-view", "uid-65534", "no-capabilities", *extra)

    def status(self, raw: int | None) -> int | None:
        # bwrap reports a worker killed by a signal as 128 + signal
        return -(raw - 128) if raw is not None and raw > 128 else raw
