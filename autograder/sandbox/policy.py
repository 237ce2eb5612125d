"""The one sandbox policy both backends apply: refused system calls, the clean environment, the
runner's uids and the libraries a runner may see.

The ``process`` backend compiles :data:`DENIED_SYSCALLS` (and the argument rules below) into its
own seccomp filter (:mod:`autograder.sandbox.seccomp`); the ``docker`` backend writes the same
policy as docker's seccomp profile (:func:`autograder.sandbox.docker.seccomp_profile`). A test
decodes both and checks they refuse the same set.

Everything refused answers EPERM (``clone3`` answers ENOSYS, so the C library falls back to
``clone``, whose flags a filter can read). Every other call is allowed: numpy, torch threads,
``fork`` and ``subprocess`` keep working. Other ABIs (32-bit, x32) are refused outright.

A runner that holds a GPU runs under the same policy on both backends. The CUDA driver talks to
its device with ``open``, ``ioctl`` and ``mmap`` of the device files (device memory, pinned host
memory, the UVM range), none of which is refused (``ioctl`` is allowed whatever its request:
the device node a runner may open is the filter on it). The NUMA calls it tries (``mbind``,
``get_mempolicy``, ``set_mempolicy``) are refused here as in docker's default profile, under
which GPU containers routinely run, and it carries on without them. Its JIT cache, which locks
files (refused here), is off in a runner (``CUDA_CACHE_DISABLE``); ``perf_event_open`` is only
for profilers.
``tests/sandbox/test_gpu.py`` checks the list; ``benchmarks/gpu_check.py`` runs CUDA under it.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import threading
from pathlib import Path

from autograder.sandbox.base import SandboxError

#: Refused on every architecture (docker skips names an architecture lacks). Why each group:
DENIED_SYSCALLS: tuple[str, ...] = (
    # debugging or reading other processes, and comparing their kernel objects
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    # mounting, changing root, new or other namespaces (clone's flags: below)
    "mount", "umount", "umount2", "pivot_root", "chroot", "unshare", "setns", "open_tree",
    "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    # kernel keyrings, eBPF, perf events, userfaultfd: a large, often exploited surface
    "add_key", "request_key", "keyctl", "bpf", "perf_event_open", "userfaultfd",
    # io_uring: a second way to every file and socket call, past the filter's view
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    # modules, kexec, reboot, swap, accounting, quotas, the kernel log, clocks, I/O ports
    "init_module", "finit_module", "delete_module", "create_module", "query_module",
    "get_kernel_syms", "kexec_load", "kexec_file_load", "reboot", "swapon", "swapoff", "acct",
    "quotactl", "quotactl_fd", "syslog", "settimeofday", "stime", "clock_settime",
    "clock_adjtime", "adjtimex", "iopl", "ioperm", "vm86", "vm86old", "personality",
    "vhangup", "lookup_dcookie", "nfsservctl", "uselib", "ustat", "sysfs", "_sysctl",
    # file handles that bypass paths and permissions on the way; filesystem-wide watches
    "name_to_handle_at", "open_by_handle_at", "fanotify_init",
    # NUMA placement (docker's default refuses it without CAP_SYS_NICE)
    "mbind", "set_mempolicy", "get_mempolicy", "move_pages",
    # covert channels between two runners that share read-only files (the interpreter, the
    # libraries): a lock one takes is seen by the other, and so is one's open() by the
    # other's inotify watch. A runner needs neither.
    "flock", "inotify_init", "inotify_init1",
)

#: x86-64 numbers of the refused calls; the names missing here exist only on 32-bit x86, whose
#: ABI the filter refuses as a whole.
X86_64_NUMBERS: dict[str, int] = {
    "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "kcmp": 312,
    "pidfd_getfd": 438, "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161,
    "unshare": 272, "setns": 308, "open_tree": 428, "move_mount": 429, "fsopen": 430,
    "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442, "add_key": 248,
    "request_key": 249, "keyctl": 250, "bpf": 321, "perf_event_open": 298, "userfaultfd": 323,
    "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    "init_module": 175, "finit_module": 313, "delete_module": 176, "create_module": 174,
    "query_module": 178, "get_kernel_syms": 177, "kexec_load": 246, "kexec_file_load": 320,
    "reboot": 169, "swapon": 167, "swapoff": 168, "acct": 163, "quotactl": 179,
    "quotactl_fd": 443, "syslog": 103, "settimeofday": 164, "clock_settime": 227,
    "clock_adjtime": 305, "adjtimex": 159, "iopl": 172, "ioperm": 173, "personality": 135,
    "vhangup": 153, "lookup_dcookie": 212, "nfsservctl": 180, "uselib": 134, "ustat": 136,
    "sysfs": 139, "_sysctl": 156, "name_to_handle_at": 303, "open_by_handle_at": 304,
    "fanotify_init": 300, "mbind": 237, "set_mempolicy": 238, "get_mempolicy": 239,
    "move_pages": 279, "flock": 73, "inotify_init": 253, "inotify_init1": 294,
}
X86_ONLY = frozenset({"umount", "stime", "vm86", "vm86old"})
X86_64_CLONE = 56
X86_64_CLONE3 = 435
X86_64_FCNTL = 72

#: ``clone`` with any of these flags is refused: a new namespace of any kind (a user namespace
#: needs no privilege and opens the rest). ``unshare`` and ``setns`` are refused whole.
CLONE_NAMESPACE_FLAGS: dict[str, int] = {
    "CLONE_NEWTIME": 0x00000080, "CLONE_NEWNS": 0x00020000, "CLONE_NEWCGROUP": 0x02000000,
    "CLONE_NEWUTS": 0x04000000, "CLONE_NEWIPC": 0x08000000, "CLONE_NEWUSER": 0x10000000,
    "CLONE_NEWPID": 0x20000000, "CLONE_NEWNET": 0x40000000,
}

#: ``fcntl`` commands refused: record locks (classic and open-file-description) and leases, the
#: same covert channel as ``flock``.
FCNTL_LOCK_COMMANDS: dict[str, int] = {
    "F_GETLK": 5, "F_SETLK": 6, "F_SETLKW": 7, "F_OFD_GETLK": 36, "F_OFD_SETLK": 37,
    "F_OFD_SETLKW": 38, "F_SETLEASE": 1024, "F_GETLEASE": 1025,
}

EPERM = 1
ENOSYS = 38

#: Runner uids: from ``UID_BASE`` up, one per concurrently running runner on this machine,
#: never a uid of a person or a service. ``RLIMIT_NPROC`` counts processes per uid across the
#: whole machine, so two runners sharing a uid would share one process allowance: a fork bomb
#: graded by one grader would make another grader's student crash. :class:`UidLeases` hands
#: them out machine-wide.
UID_BASE = 61000
#: How many runner uids there are from a base (far more than runners a machine can hold).
UID_SPAN = 2000


def _lease_dir() -> Path:
    """Where the uid leases live: under ``/run`` (root, machine-wide) when writable, else a
    folder of this user's in the temporary directory (uids are not switched then anyway)."""
    run = Path("/run")
    if os.geteuid() == 0 and os.access(run, os.W_OK):
        return run / "autograder-uids"
    return Path(tempfile.gettempdir()) / f"autograder-uids-{os.geteuid()}"


class UidLeases:
    """The runner uids one sandbox holds, one per slot, leased machine-wide.

    A lease is an exclusive ``flock`` on ``<dir>/<uid>``, held until :meth:`close` or the death
    of the process (the kernel drops the lock): graders on one machine (a service's workers, a
    TA's ``grade`` beside them, ``grade --jobs N``) never give two runners the same uid, and a
    crashed grader's uids come back by themselves. A slot keeps its uid for the sandbox's life.
    """

    def __init__(self, base: int = UID_BASE, span: int = UID_SPAN,
                 directory: Path | None = None) -> None:
        self.base, self.span = base, span
        self.directory = directory or _lease_dir()
        self._held: dict[int, tuple[int, int]] = {}  # slot -> (uid, fd of its lock file)
        self._lock = threading.Lock()

    def uid(self, slot: int) -> int:
        """The uid of ``slot``: leased on first use, the same afterwards."""
        with self._lock:
            if slot not in self._held:
                self._held[slot] = self._lease()
            return self._held[slot][0]

    def _lease(self) -> tuple[int, int]:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        taken = {uid for uid, _ in self._held.values()}
        for uid in range(self.base, self.base + self.span):
            if uid in taken:
                continue
            fd = os.open(self.directory / str(uid), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            return uid, fd
        raise SandboxError(f"all {self.span} runner uids from {self.base} are in use on this "
                           f"machine (leases in {self.directory})")

    def close(self) -> None:
        """Give every uid back."""
        with self._lock:
            held, self._held = list(self._held.values()), {}
        for _uid, fd in held:
            os.close(fd)  # closing the only descriptor of the lock file drops the flock


#: Where the runner's own files live inside a sandbox (both backends): the ``autograder``
#: package with ``__init__.py``, ``protocol.py`` and ``runner/`` only.
RUNNER_ROOT = "/opt/autograder-runner"

#: The runner's own files, relative to the ``autograder`` package: all of the platform a
#: sandbox holds (the docker image copies them, the process backend binds them).
RUNNER_FILES: tuple[str, ...] = ("__init__.py", "protocol.py", "runner/__init__.py",
                                 "runner/serve.py", "runner/container_entry.py")

#: The libraries a runner can import besides the standard library (and what they require):
#: the same set in the docker image and in the process backend's private root.
RUNNER_LIBRARIES: tuple[str, ...] = ("numpy", "msgpack", "torch")


def clean_environment(home: str) -> dict[str, str]:
    """The whole environment of a runner (and of the fork server it comes from): nothing of
    the grader's (no secrets, no ``PYTHONPATH``, no proxies), one thread per math library."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
