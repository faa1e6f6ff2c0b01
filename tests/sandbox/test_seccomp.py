import errno
import platform
import struct

import pytest

from sandbox import seccomp
from sandbox.backends import create_backend
from sandbox.interface import WorkerJob
from sandbox.limits import Limits
from tests.conftest import require_backend


def instructions(code: bytes) -> list[tuple[int, int, int, int]]:
    return [struct.unpack("=HBBI", code[i : i + 8]) for i in range(0, len(code), 8)]


def run(program: bytes, arch: int, nr: int, arg0: int = 0) -> int:
    """A naive classic-BPF interpreter for the opcodes the filter uses: its verdict for one call."""
    data = {seccomp.OFFSET_NR: nr, seccomp.OFFSET_ARCH: arch, seccomp.OFFSET_ARG0: arg0}
    code, pc, acc = instructions(program), 0, 0
    while True:
        op, jt, jf, k = code[pc]
        if op == seccomp.RET_K:
            return k
        if op == seccomp.LD_W_ABS:
            acc = data[k]
            pc += 1
            continue
        taken = {seccomp.JEQ_K: acc == k, seccomp.JGE_K: acc >= k, seccomp.JSET_K: bool(acc & k)}[op]
        assert jt >= 0 and jf >= 0
        pc += 1 + (jt if taken else jf)


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_the_filter_refuses_each_blocked_call_and_namespace_clones(machine: str) -> None:
    arch, numbers = seccomp.SYSCALLS[machine]
    program = seccomp.program(machine) or b""
    assert set(numbers) == set(seccomp.BLOCKED)
    for name, number in numbers.items():
        assert run(program, arch, number) == seccomp.RET_EPERM, name
    assert run(program, arch, 0) == seccomp.RET_ALLOW  # read / io_setup
    assert run(program, arch + 1, 0) == seccomp.RET_KILL_PROCESS  # a foreign architecture
    assert run(program, arch, seccomp.CLONE3) == seccomp.RET_ENOSYS
    clone = seccomp.CLONE[machine]
    thread = 0x003D0F00  # CLONE_VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|SETTLS|PARENT_SETTID|CHILD_CLEARTID
    assert run(program, arch, clone, thread) == seccomp.RET_ALLOW
    assert run(program, arch, clone, 17) == seccomp.RET_ALLOW  # fork: SIGCHLD only
    for bit in range(8, 32):  # the low byte is the exit signal
        flag = 1 << bit
        expected = seccomp.RET_EPERM if flag & seccomp.CLONE_NAMESPACE_FLAGS else seccomp.RET_ALLOW
        assert run(program, arch, clone, flag | 17) == expected, hex(flag)
    if machine == "x86_64":
        assert run(program, arch, seccomp.X32_SYSCALL_BIT | 0) == seccomp.RET_EPERM


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
