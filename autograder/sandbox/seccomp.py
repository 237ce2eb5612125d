"""A seccomp filter for the student runner (x86-64), built as a classic BPF program with ctypes.

It refuses, with EPERM, the system calls a grading runner never needs and that widen the
kernel's attack surface or reach outside the sandbox: debugging other processes, mounting,
entering or creating namespaces (``unshare``, ``setns``, and ``clone`` with any namespace
flag), kernel keyrings, eBPF, perf events, userfaultfd, module loading, rebooting, clock and
swap changes, cross-process memory access, file handles that bypass paths. ``clone3`` answers
ENOSYS, so the C library falls back to ``clone``, whose flags the filter can inspect. Every
other call is allowed, so numpy, torch threads, ``fork`` and ``subprocess`` keep working.

The filter is installed after ``no_new_privs`` and the uid switch, right before the runner
serves, and is inherited by every process the student starts.
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct

AUDIT_ARCH_X86_64 = 0xC000003E
_X32_SYSCALL_BIT = 0x40000000

# x86-64 system call numbers.
DENIED = {
    "ptrace": 101, "syslog": 103, "personality": 135, "vhangup": 153, "adjtimex": 159,
    "pivot_root": 155, "chroot": 161, "acct": 163, "settimeofday": 164, "mount": 165,
    "umount2": 166, "swapon": 167, "swapoff": 168, "reboot": 169, "iopl": 172, "ioperm": 173,
    "init_module": 175, "delete_module": 176, "quotactl": 179, "lookup_dcookie": 212,
    "clock_settime": 227, "kexec_load": 246, "add_key": 248, "request_key": 249,
    "keyctl": 250, "unshare": 272, "perf_event_open": 298, "fanotify_init": 300,
    "name_to_handle_at": 303, "open_by_handle_at": 304, "setns": 308,
    "process_vm_readv": 310, "process_vm_writev": 311, "finit_module": 313,
    "kexec_file_load": 320, "bpf": 321, "userfaultfd": 323, "open_tree": 428,
    "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
    "mount_setattr": 442,
}
CLONE = 56
CLONE3 = 435
CLONE_NAMESPACE_FLAGS = (0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000
                         | 0x20000000 | 0x40000000 | 0x00000080)  # NS, CGROUP, UTS, IPC, USER, PID, NET, TIME

_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06
_RET_ALLOW = 0x7FFF0000
_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def build_program() -> bytes:
    """The filter as raw ``sock_filter`` instructions."""
    eperm = _RET_ERRNO | errno.EPERM
    enosys = _RET_ERRNO | errno.ENOSYS
    prog = [
        _insn(_LD_W_ABS, 0, 0, 4),                       # A = arch
        _insn(_JEQ_K, 1, 0, AUDIT_ARCH_X86_64),          # x86-64? skip the kill
        _insn(_RET_K, 0, 0, _RET_KILL_PROCESS),          # another ABI: refuse outright
        _insn(_LD_W_ABS, 0, 0, 0),                       # A = syscall number
        _insn(_JGE_K, 0, 1, _X32_SYSCALL_BIT),           # the x32 ABI: refuse
        _insn(_RET_K, 0, 0, eperm),
    ]
    for nr in sorted(DENIED.values()):
        prog.append(_insn(_JEQ_K, 0, 1, nr))
        prog.append(_insn(_RET_K, 0, 0, eperm))
    prog += [
        _insn(_JEQ_K, 0, 1, CLONE3),
        _insn(_RET_K, 0, 0, enosys),
        _insn(_JEQ_K, 0, 3, CLONE),                      # clone: look at its flags
        _insn(_LD_W_ABS, 0, 0, 16),                      # A = low 32 bits of args[0]
        _insn(_JSET_K, 0, 1, CLONE_NAMESPACE_FLAGS),
        _insn(_RET_K, 0, 0, eperm),
        _insn(_RET_K, 0, 0, _RET_ALLOW),
    ]
    return b"".join(prog)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install() -> str | None:
    """Install the filter in this process; returns why it could not be, or None."""
    if platform.machine() != "x86_64":
        return f"seccomp filter: only built for x86-64, not {platform.machine()}"
    program = build_program()
    buf = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.cast(buf, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        return f"seccomp filter: prctl failed ({errno.errorcode.get(ctypes.get_errno(), '?')})"
    return None
