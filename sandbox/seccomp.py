"""A seccomp filter (classic BPF) refusing the syscalls a sandboxed job has no use for.

Written here rather than taken from libseccomp because the program is a dozen instructions and
the Python bindings for libseccomp come only from distribution packages, not from PyPI. The
program checks the architecture (a foreign one is killed, so no syscall-number aliasing), then
answers EPERM for the listed calls and for clone(2) with any namespace flag, ENOSYS for
clone3(2), and allows the rest. bubblewrap installs it after setting up
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

# Namespace flags of clone(2) (linux/sched.h): a job may start threads and processes, never
# new namespaces, whose user namespace would hand it every capability inside. (CLONE_NEWTIME,
# 0x80, exists only for clone3 and unshare; in clone's flags the low byte is the exit signal.)
CLONE_NAMESPACE_FLAGS = (
    0x00020000  # CLONE_NEWNS
    | 0x02000000  # CLONE_NEWCGROUP
    | 0x04000000  # CLONE_NEWUTS
    | 0x08000000  # CLONE_NEWIPC
    | 0x10000000  # CLONE_NEWUSER
    | 0x20000000  # CLONE_NEWPID
    | 0x40000000  # CLONE_NEWNET
)
# clone(2) takes its flags in the first argument on both tables; clone3(2) passes them in a
# struct that a filter cannot read, so it answers ENOSYS and libc falls back to clone(2).
CLONE = {"x86_64": 56, "aarch64": 220}
CLONE3 = 435  # the same number on both tables

LD_W_ABS, JEQ_K, JGE_K, JSET_K, RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
RET_KILL_PROCESS, RET_ALLOW = 0x80000000, 0x7FFF0000
RET_EPERM = 0x00050000 | errno.EPERM
RET_ENOSYS = 0x00050000 | errno.ENOSYS
X32_SYSCALL_BIT = 0x40000000
OFFSET_NR, OFFSET_ARCH, OFFSET_ARG0 = 0, 4, 16  # struct seccomp_data; arg0's low word (little-endian)


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def program(machine: str | None = None) -> bytes | None:
    """The filter for this machine's architecture, or None where it has no syscall table here.

    Layout: check the architecture; load the syscall number; (x86-64) refuse x32 numbers; one
    jump to EPERM per blocked call; clone3 to ENOSYS; clone to its flags check; allow; then
    the flags check and the two refusals, so that every jump goes forward (BPF's rule)."""
    machine = machine or platform.machine()
    entry = SYSCALLS.get(machine)
    if entry is None:
        return None
    arch, numbers = entry
    # (code, k, jump-if-true label, jump-if-false label); labels are resolved below
    code: list[tuple[int, int, str | None, str | None]] = [
        (LD_W_ABS, OFFSET_ARCH, None, None),
        (JEQ_K, arch, "nr", None),
        (RET_K, RET_KILL_PROCESS, None, None),
    ]
    labels = {"nr": len(code)}
    code.append((LD_W_ABS, OFFSET_NR, None, None))
    if arch == 0xC000003E:  # on x86-64, x32 syscall numbers are refused too
        code.append((JGE_K, X32_SYSCALL_BIT, "eperm", None))
    code += [(JEQ_K, numbers[name], "eperm", None) for name in BLOCKED]
    code.append((JEQ_K, CLONE3, "enosys", None))
    code.append((JEQ_K, CLONE[machine], "clone", None))
    code.append((RET_K, RET_ALLOW, None, None))
    labels["clone"] = len(code)
    code.append((LD_W_ABS, OFFSET_ARG0, None, None))
    code.append((JSET_K, CLONE_NAMESPACE_FLAGS, "eperm", None))
    code.append((RET_K, RET_ALLOW, None, None))
    labels["eperm"] = len(code)
    code.append((RET_K, RET_EPERM, None, None))
    labels["enosys"] = len(code)
    code.append((RET_K, RET_ENOSYS, None, None))

    def offset(at: int, label: str | None) -> int:
        return 0 if label is None else labels[label] - at - 1

    return b"".join(_insn(op, k, offset(at, jt), offset(at, jf)) for at, (op, k, jt, jf) in enumerate(code))


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
