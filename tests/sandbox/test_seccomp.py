import errno
import platform
import struct

import pytest

from sandbox import seccomp
from sandbox.interface import WorkerJob, create_backend
from sandbox.limits import Limits
from tests.conftest import require_backend


def instructions(code: bytes) -> list[tuple[int, int, int, int]]:
    return [struct.unpack("=HBBI", code[i : i + 8]) for i in range(0, len(code), 8)]


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_program_checks_the_architecture_then_each_blocked_call(machine: str) -> None:
    arch, numbers = seccomp.SYSCALLS[machine]
    program = instructions(seccomp.program(machine) or b"")
    assert set(numbers) == set(seccomp.BLOCKED)
    assert program[0] == (seccomp.LD_W_ABS, 0, 0, seccomp.OFFSET_ARCH)
    assert program[1] == (seccomp.JEQ_K, 1, 0, arch)
    assert program[2] == (seccomp.RET_K, 0, 0, seccomp.RET_KILL_PROCESS)
    assert program[-2:] == [
        (seccomp.RET_K, 0, 0, seccomp.RET_ALLOW),
        (seccomp.RET_K, 0, 0, seccomp.RET_EPERM),
    ]
    deny = len(program) - 1
    checked = []
    for index, (code, jt, jf, k) in enumerate(program[4:-2], start=4):
        assert index + 1 + jt == deny and jf == 0  # every match jumps to the EPERM return
        if code == seccomp.JEQ_K:
            checked.append(k)
    assert sorted(checked) == sorted(numbers.values())


def test_no_program_for_an_unknown_architecture() -> None:
    assert seccomp.program("sparc64") is None


def test_blocked_calls_fail_with_eperm_inside_bwrap(request: pytest.FixtureRequest) -> None:
    require_backend(request, "bwrap")
    numbers = seccomp.SYSCALLS[platform.machine()][1]
    source = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
answers = {}
for name, number in ARGS["numbers"].items():
    ctypes.set_errno(0)
    answers[name] = (libc.syscall(number, 0, 0, 0, 0, 0), ctypes.get_errno())
RESULT.update(answers)
"""
    result = create_backend("bwrap", Limits(wall_seconds=20)).run(
        WorkerJob("script.run", {"source": source, "args": {"numbers": numbers}})
    )
    assert result.header["result"] == {name: [-1, errno.EPERM] for name in numbers}
