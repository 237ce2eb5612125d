"""The process backend's seccomp filter (x86-64), a classic BPF program built with ctypes from
:mod:`autograder.sandbox.policy` (the docker backend writes the same policy as docker's profile).

It refuses with EPERM every call in :data:`~autograder.sandbox.policy.DENIED_SYSCALLS`,
``clone`` with any namespace flag and ``fcntl``'s lock and lease commands; ``clone3`` answers
ENOSYS, so the C library falls back to ``clone``, whose flags the filter can inspect. Any other
ABI (32-bit x86, x32) is refused. Every other call is allowed, so numpy, torch threads,
``fork`` and ``subprocess`` keep working.

The filter is installed after ``no_new_privs`` and the uid switch, right before the runner
serves, and is inherited by every process the student starts.
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct

from autograder.sandbox import policy

AUDIT_ARCH_X86_64 = 0xC000003E
_X32_SYSCALL_BIT = 0x40000000
#: The refused calls by x86-64 number (the 32-bit-only names have none: that ABI is refused).
DENIED = {name: policy.X86_64_NUMBERS[name] for name in policy.DENIED_SYSCALLS
          if name not in policy.X86_ONLY}
CLONE = policy.X86_64_CLONE
CLONE3 = policy.X86_64_CLONE3
FCNTL = policy.X86_64_FCNTL
CLONE_NAMESPACE_FLAGS = 0
for _flag in policy.CLONE_NAMESPACE_FLAGS.values():
    CLONE_NAMESPACE_FLAGS |= _flag

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
#: Offsets in ``struct seccomp_data``: nr, arch, then the 64-bit arguments from 16 on (the low
#: 32 bits first on little-endian x86-64).
_NR, _ARCH, _ARG0, _ARG1 = 0, 4, 16, 24


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def build_program() -> bytes:
    """The filter as raw ``sock_filter`` instructions."""
    eperm = _RET_ERRNO | policy.EPERM
    enosys = _RET_ERRNO | policy.ENOSYS
    prog = [
        _insn(_LD_W_ABS, 0, 0, _ARCH),
        _insn(_JEQ_K, 1, 0, AUDIT_ARCH_X86_64),          # x86-64? skip the kill
        _insn(_RET_K, 0, 0, _RET_KILL_PROCESS),          # another ABI: refuse outright
        _insn(_LD_W_ABS, 0, 0, _NR),
        _insn(_JGE_K, 0, 1, _X32_SYSCALL_BIT),           # the x32 ABI: refuse
        _insn(_RET_K, 0, 0, eperm),
    ]
    for nr in sorted(set(DENIED.values())):
        prog.append(_insn(_JEQ_K, 0, 1, nr))
        prog.append(_insn(_RET_K, 0, 0, eperm))
    prog += [
        _insn(_JEQ_K, 0, 1, CLONE3),
        _insn(_RET_K, 0, 0, enosys),
        _insn(_JEQ_K, 0, 4, CLONE),                      # clone: look at its flags
        _insn(_LD_W_ABS, 0, 0, _ARG0),
        _insn(_JSET_K, 0, 1, CLONE_NAMESPACE_FLAGS),
        _insn(_RET_K, 0, 0, eperm),
        _insn(_RET_K, 0, 0, _RET_ALLOW),
    ]
    commands = sorted(policy.FCNTL_LOCK_COMMANDS.values())
    prog += [
        _insn(_JEQ_K, 0, 2 * len(commands) + 2, FCNTL),  # fcntl: look at its command
        _insn(_LD_W_ABS, 0, 0, _ARG1),
    ]
    for cmd in commands:
        prog.append(_insn(_JEQ_K, 0, 1, cmd))
        prog.append(_insn(_RET_K, 0, 0, eperm))
    prog += [
        _insn(_RET_K, 0, 0, _RET_ALLOW),                 # (end of fcntl)
        _insn(_RET_K, 0, 0, _RET_ALLOW),
    ]
    return b"".join(prog)


def describe_program(program: bytes) -> dict[str, set]:
    """What a program refuses, read back from its instructions (for the test that compares it
    with the docker profile): ``{"syscalls": {names}, "clone_flags": {names},
    "fcntl_commands": {names}}``."""
    by_number = {nr: name for name, nr in DENIED.items()}
    insns = [struct.unpack("=HBBI", program[i:i + 8]) for i in range(0, len(program), 8)]
    refused: dict[str, set] = {"syscalls": set(), "clone_flags": set(), "fcntl_commands": set()}
    eperm = _RET_ERRNO | policy.EPERM
    loaded = None  # which seccomp_data field A holds
    for i, (code, jt, jf, k) in enumerate(insns):
        if code == _LD_W_ABS:
            loaded = k
            continue
        if i + 1 >= len(insns) or insns[i + 1] != (_RET_K, 0, 0, eperm) or jt != 0 or jf != 1:
            continue
        if code == _JEQ_K and loaded == _NR and k in by_number:
            refused["syscalls"].add(by_number[k])
        elif code == _JEQ_K and loaded == _ARG1:
            refused["fcntl_commands"] |= {n for n, v in policy.FCNTL_LOCK_COMMANDS.items()
                                          if v == k}
        elif code == _JSET_K and loaded == _ARG0:
            refused["clone_flags"] |= {n for n, v in policy.CLONE_NAMESPACE_FLAGS.items()
                                       if v & k == v}
    return refused


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
