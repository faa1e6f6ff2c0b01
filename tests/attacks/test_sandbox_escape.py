"""A job's code may not leave its namespaces: a new user namespace would give it every
capability inside, from which the kernel's attack surface widens (mounts, netfilter, …).

clone(2) with namespace flags used to succeed inside bwrap, whose filter blocked unshare and
setns only. Each attack is run through ``script.run`` and judged from what the syscalls
returned, on the backends that promise namespace isolation (bwrap, docker)."""

from __future__ import annotations

import errno
import platform

import pytest

from sandbox import seccomp
from sandbox.backends import create_backend
from sandbox.interface import WorkerJob
from sandbox.limits import Limits
from tests.conftest import require_backend

ATTACK = """
import ctypes, os, threading
libc = ctypes.CDLL(None, use_errno=True)
def call(*args):
    ctypes.set_errno(0)
    answer = libc.syscall(*args)
    if answer == 0:  # the child of a clone that went through
        os._exit(0)
    if answer > 0:
        os.waitpid(answer, 0)
        return ["child started", 0]
    return [answer, ctypes.get_errno()]
flags = ARGS["flags"]
both = flags["CLONE_NEWUSER"] | flags["CLONE_NEWNET"]
RESULT["clone-newuser-newnet"] = call(ARGS["clone"], both | 17, 0, 0, 0, 0)
RESULT["clone-newns"] = call(ARGS["clone"], flags["CLONE_NEWNS"] | 17, 0, 0, 0, 0)
RESULT["clone-newpid"] = call(ARGS["clone"], flags["CLONE_NEWPID"] | 17, 0, 0, 0, 0)
RESULT["clone3"] = call(435, 0, 0)
ctypes.set_errno(0)
RESULT["unshare-newuser"] = [libc.unshare(flags["CLONE_NEWUSER"]), ctypes.get_errno()]
seen = []
worker = threading.Thread(target=lambda: seen.append("thread ran"))
worker.start(); worker.join()
RESULT["thread"] = seen
"""

FLAGS = {"CLONE_NEWUSER": 0x10000000, "CLONE_NEWNET": 0x40000000, "CLONE_NEWNS": 0x00020000,
         "CLONE_NEWPID": 0x20000000}  # fmt: skip


@pytest.mark.parametrize("name", ["bwrap", "docker"])
def test_clone_with_namespace_flags_and_clone3_are_refused(request: pytest.FixtureRequest, name: str) -> None:
    require_backend(request, name)
    machine = platform.machine()
    result = create_backend(name, Limits(wall_seconds=30)).run(
        WorkerJob("script.run", {"source": ATTACK, "args": {"clone": seccomp.CLONE[machine], "flags": FLAGS}})
    )
    answers = result.header["result"]
    assert answers["thread"] == ["thread ran"]  # threads (clone without namespace flags) still work
    assert answers["unshare-newuser"] == [-1, errno.EPERM]
    for attack in ("clone-newuser-newnet", "clone-newns", "clone-newpid"):
        assert answers[attack] == [-1, errno.EPERM], (attack, answers[attack])
    if name == "bwrap":  # our filter: clone3 answers ENOSYS so that libc falls back to clone
        assert answers["clone3"] == [-1, errno.ENOSYS]
    else:  # Docker's default profile refuses clone3 likewise
        assert answers["clone3"][0] == -1 and answers["clone3"][1] in (errno.ENOSYS, errno.EPERM)


def test_bwrap_runs_with_user_namespaces_disabled(request: pytest.FixtureRequest) -> None:
    require_backend(request, "bwrap")
    from sandbox import bwrap

    assert bwrap.disables_userns()  # Debian 12's bubblewrap 0.8.0 has it
    assert "--disable-userns" in bwrap.base_args()
