"""A seccomp filter (classic BPF) refusing the syscalls a sandboxed job has no use for.

Written here rather than taken from libseccomp because the program is a dozen instructions and
the Python bindings for libseccomp come only from distribution packages, not from PyPI. The
program checks the architecture (a foreign one is killed, so no syscall-number aliasing), then
answers EPERM for the listed calls and allows the rest. bubblewrap installs it after setting up
the sandbox (``--seccomp FD``), so its own use of mount and unshare is unaffected.
See seccomp(2) and linux/filter.h for the encoding.
"""

from __future__ import annotations

import errno
import os
import platform
import struct

# Escape and attack-surface syscalls: debugging others, namespaces and mounts, kernel keyrings,
# eBPF, perf, io_uring, module loading, handle-based opens, cross-process memory access.
BLOCKED = (
    "ptrace", "mount", "umount2", "pivot_root", "chroot", "unshare", "setns",
    "keyctl", "add_key", "request_key", "bpf", "perf_event_open",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "init_module", "finit_module", "delete_module", "kexec_load", "open_by_handle_at",
    "userfaultfd", "process_vm_readv", "process_vm_writev", "reboot", "swapon",
)  # fmt: skip

SYSCALLS = {
    "x86_64": (0xC000003E, {
        "ptrace": 101, "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161,
        "unshare": 272, "setns": 308, "keyctl": 250, "add_key": 248, "request_key": 249,
        "bpf": 321, "perf_event_open": 298, "io_uring_setup": 425, "io_uring_enter": 426,
        "io_uring_register": 427, "init_module": 175, "finit_module": 313, "delete_module": 176,
        "kexec_load": 246, "open_by_handle_at": 304, "userfaultfd": 323, "process_vm_readv": 310,
        "process_vm_writev": 311, "reboot": 169, "swapon": 167,
    }),
    "aarch64": (0xC00000B7, {
        "ptrace": 117, "mount": 40, "umount2": 39, "pivot_root": 41, "chroot": 51,
        "unshare": 97, "setns": 268, "keyctl": 219, "add_key": 217, "request_key": 218,
        "bpf": 280, "perf_event_open": 241, "io_uring_setup": 425, "io_uring_enter": 426,
        "io_uring_register": 427, "init_module": 105, "finit_module": 273, "delete_module": 106,
        "kexec_load": 104, "open_by_handle_at": 265, "userfaultfd": 282, "process_vm_readv": 270,
        "process_vm_writev": 271, "reboot": 142, "swapon": 224,
    }),
}  # fmt: skip

LD_W_ABS, JEQ_K, JGE_K, RET_K = 0x20, 0x15, 0x35, 0x06
RET_KILL_PROCESS, RET_ALLOW = 0x80000000, 0x7FFF0000
RET_EPERM = 0x00050000 | errno.EPERM
X32_SYSCALL_BIT = 0x40000000
OFFSET_NR, OFFSET_ARCH = 0, 4  # struct seccomp_data


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def program(machine: str | None = None) -> bytes | None:
    """The filter for this machine's architecture, or None where it has no syscall table here."""
    entry = SYSCALLS.get(machine or platform.machine())
    if entry is None:
        return None
    arch, numbers = entry
    checks = [numbers[name] for name in BLOCKED]
    body = [_insn(LD_W_ABS, OFFSET_ARCH), _insn(JEQ_K, arch, jt=1), _insn(RET_K, RET_KILL_PROCESS)]
    body.append(_insn(LD_W_ABS, OFFSET_NR))
    extra = 1 if arch == 0xC000003E else 0  # on x86-64, x32 syscall numbers are refused too
    deny_at = 4 + extra + len(checks) + 1  # index of the EPERM return
    if extra:
        body.append(_insn(JGE_K, X32_SYSCALL_BIT, jt=deny_at - len(body) - 1))
    for number in checks:
        body.append(_insn(JEQ_K, number, jt=deny_at - len(body) - 1))
    body.append(_insn(RET_K, RET_ALLOW))
    body.append(_insn(RET_K, RET_EPERM))
    return b"".join(body)


def filter_fd(machine: str | None = None) -> int | None:
    """A readable, inheritable fd holding the filter, for ``bwrap --seccomp``; the caller closes it."""
    code = program(machine)
    if code is None:
        return None
    read, write = os.pipe()
    os.write(write, code)  # a few hundred bytes: fits the pipe buffer
    os.close(write)
    os.set_inheritable(read, True)
    return read
