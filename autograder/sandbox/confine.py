"""Confinement of one student runner, applied in the forked child before it runs student code.

As root (a grading server), the child gets, in this order:

1. new mount, network, PID, IPC and UTS namespaces (``unshare``); the runner is PID 1 of its
   PID namespace, so when it dies every process it started dies with it (fork bombs, stray
   daemons, threads left running);
2. a private root: a size-bounded tmpfs holding read-only bind mounts of the system and Python
   directories only (``/usr``, the interpreter without its site-packages, the runner's own five
   files and the files of the libraries it may import, one by one; see ``Plan``),
   a fresh ``/proc`` of its own PID namespace, ``/dev/null`` and friends, and a writable
   ``/submission`` (a copy of the student's files) and ``/tmp``. The course repository, hidden
   tests, the reference solution, other submissions and the grader's ``/proc`` entries do not
   exist there. A runner that holds a GPU also gets that GPU's device node, the driver's
   control nodes and libraries, and a read-only ``/sys`` (the CUDA driver reads it to start);
   see :mod:`autograder.sandbox.gpu`;
3. rlimits on address space, CPU time, processes, file size and open files;
4. a separate unprivileged uid per concurrent runner, no supplementary groups, and
   ``no_new_privs``; a clean environment; every file descriptor but the protocol's and the
   output pipe closed.

Without root only rlimits, a fresh work directory, the clean environment and closed file
descriptors apply (plus a network namespace if unprivileged user namespaces are allowed); each
missing protection is named in ``degraded`` and reported with every result.
"""

from __future__ import annotations

import ctypes
import os
import resource
import shutil
from dataclasses import dataclass
from pathlib import Path

from autograder.sandbox import policy

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18

PR_SET_NO_NEW_PRIVS = 38

SANDBOX_WORKDIR = "/submission"
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32")
_DEVICES = ("null", "zero", "full", "random", "urandom")

_libc = ctypes.CDLL(None, use_errno=True)


class ConfinementError(Exception):
    """A step of the confinement failed where it must not (e.g. the uid switch as root)."""


@dataclass(frozen=True)
class Plan:
    """What the child must do; plain data, sent to the fork server as JSON."""

    staging_dir: str          # the student's files, prepared by the grader
    uid: int                  # the unprivileged uid of this runner slot
    memory_mb: int
    cpu_s: int
    max_processes: int
    disk_mb: int
    max_open_files: int = 256
    readonly_paths: tuple[str, ...] = ()  # the interpreter's own tree: bound read-only
    # Directories inside those (the interpreter's own site-packages) hidden under an empty,
    # read-only tmpfs: only the libraries below appear there.
    hidden_paths: tuple[str, ...] = ()
    # (source, target) pairs bound read-only one by one: the runner's own files and each file
    # or folder of the libraries a runner may import, nothing else of the virtualenv.
    binds: tuple[tuple[str, str], ...] = ()
    # Small files and symlinks copied as they are (the virtualenv's pyvenv.cfg and python).
    copies: tuple[str, ...] = ()
    root_mount: str = ""      # an empty directory to build the private root on
    workdir: str = ""         # without root: where to copy the files (fresh, per runner)
    # A GPU runner (see autograder.sandbox.gpu): its device nodes, (host path, path in the
    # root), bound as devices; a read-only /sys; and a data limit in place of the address-space
    # limit (the CUDA driver reserves address space by the terabyte, unused).
    gpu: bool = False
    devices: tuple[tuple[str, str], ...] = ()
    # Variables added to the clean environment (a GPU runner's CUDA_VISIBLE_DEVICES, ...).
    environment: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_json(cls, fields: dict) -> Plan:
        """A plan from its JSON form (lists back to tuples)."""
        pairs = ("binds", "devices", "environment")
        return cls(**{**fields,
                      **{k: tuple(fields[k]) for k in ("readonly_paths", "hidden_paths",
                                                       "copies") if k in fields},
                      **{k: tuple(tuple(p) for p in fields[k]) for k in pairs if k in fields}})


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int,
           data: str | None = None) -> None:
    _check(_libc.mount(source.encode() if source else None, target.encode(),
                       fstype.encode() if fstype else None, ctypes.c_ulong(flags),
                       data.encode() if data else None), f"mount {target}")


def _bind_readonly(source: str, target: str) -> None:
    _mount(source, target, None, MS_BIND | MS_REC)
    _mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def unshare_namespaces(is_root: bool) -> list[str]:
    """Enter new namespaces; returns the protections that could not be had."""
    if is_root:
        flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
        if _libc.unshare(flags) == 0:
            return []
        err = os.strerror(ctypes.get_errno())
        return [f"namespaces (mount, network, PID): unshare failed: {err}; student code can "
                f"reach the network, see the grader's processes, and read every file its uid "
                f"may read (the course repository is protected only by file permissions)"]
    degraded = ["separate user: the grader is not running as root, so student code runs as "
                "the grader's own user",
                "private filesystem: without root the student runner can read any file the "
                "grader's user can read",
                "PID namespace: without root, processes the student code starts are only "
                "killed through the process group"]
    if _libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0:
        degraded.append("network namespace: unprivileged user namespaces are not available, "
                        "so student code can open network connections")
    return degraded


def build_root(plan: Plan) -> str:
    """Make the private root (as root, inside the new mount and PID namespaces)."""
    root = plan.root_mount
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV,
           f"size={plan.disk_mb}m,mode=755,nr_inodes=65536")
    for d in SYSTEM_DIRS:
        if os.path.islink(d):
            os.symlink(os.readlink(d), root + d)
        elif os.path.isdir(d):
            os.makedirs(root + d, exist_ok=True)
            _bind_readonly(d, root + d)
    for p in plan.readonly_paths:
        real = os.path.realpath(p)
        if not os.path.isdir(real) or os.path.exists(root + real):
            continue
        os.makedirs(root + real, exist_ok=True)
        _bind_readonly(real, root + real)
    hidden = [root + h for h in plan.hidden_paths if os.path.isdir(root + h)]
    for h in hidden:
        _mount("tmpfs", h, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=755")
    for source, target in plan.binds:
        if not os.path.lexists(source) or os.path.lexists(root + target):
            continue
        os.makedirs(os.path.dirname(root + target), exist_ok=True)
        if os.path.isdir(source):
            os.mkdir(root + target)
        else:
            Path(root + target).touch()
        _bind_readonly(source, root + target)
    for h in hidden:
        _mount(None, h, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "size=64k,mode=755")
    for path in plan.copies:
        if os.path.lexists(path) and not os.path.lexists(root + path):
            os.makedirs(os.path.dirname(root + path), exist_ok=True)
            shutil.copy2(path, root + path, follow_symlinks=False)
    # /etc: only what the dynamic loader and Python need, plus a passwd entry for the uid.
    os.makedirs(root + "/etc", exist_ok=True)
    for f in ("/etc/ld.so.cache", "/etc/localtime", "/etc/nsswitch.conf"):
        if os.path.isfile(f):
            shutil.copy(f, root + f)
    Path(root + "/etc/passwd").write_text(
        f"root:x:0:0::/:/usr/sbin/nologin\nstudent:x:{plan.uid}:{plan.uid}::{SANDBOX_WORKDIR}:"
        f"/usr/sbin/nologin\n")
    Path(root + "/etc/group").write_text(f"root:x:0:\nstudent:x:{plan.uid}:\n")
    os.makedirs(root + "/dev", exist_ok=True)
    for dev in _DEVICES:
        Path(root + "/dev/" + dev).touch()
        _mount("/dev/" + dev, root + "/dev/" + dev, None, MS_BIND)
    for source, target in plan.devices:
        # A device needs a mount without nodev (the root's tmpfs has it): its own bind, as for
        # /dev/null. Only these nodes of the host's /dev exist in the root.
        Path(root + target).touch()
        _mount(source, root + target, None, MS_BIND)
    if plan.gpu and os.path.isdir("/sys"):
        # Without /sys the CUDA driver fails to start (CUDA_ERROR_OPERATING_SYSTEM). Not
        # recursive: the filesystems mounted below /sys (cgroup, debugfs, ...) stay out.
        os.makedirs(root + "/sys", exist_ok=True)
        _mount("/sys", root + "/sys", None, MS_BIND)
        _mount(None, root + "/sys", None,
               MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.makedirs(root + "/dev/shm", exist_ok=True)
    _mount("tmpfs", root + "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV,
           f"size={plan.disk_mb}m,mode=1777")
    os.makedirs(root + "/proc", exist_ok=True)
    _mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.makedirs(root + "/tmp", mode=0o1777, exist_ok=True)
    os.chmod(root + "/tmp", 0o1777)
    work = root + SANDBOX_WORKDIR
    shutil.copytree(plan.staging_dir, work, symlinks=False)
    for dirpath, dirnames, filenames in os.walk(work):
        os.chown(dirpath, plan.uid, plan.uid)
        for name in filenames:
            os.chown(os.path.join(dirpath, name), plan.uid, plan.uid)
    _check(_libc.chroot(root.encode()), "chroot")
    os.chdir(SANDBOX_WORKDIR)
    return SANDBOX_WORKDIR


def copy_workdir(plan: Plan, *, owner: int | None = None) -> str:
    """Without namespaces: a fresh directory holding a copy of the student's files, owned by
    ``owner`` (the runner's uid, when it is about to switch to it) and private to it."""
    shutil.copytree(plan.staging_dir, plan.workdir, symlinks=False, dirs_exist_ok=True)
    if owner is not None:
        for dirpath, dirnames, filenames in os.walk(plan.workdir):
            os.chown(dirpath, owner, owner)
            for name in filenames:
                os.chown(os.path.join(dirpath, name), owner, owner)
        os.chmod(plan.workdir, 0o700)
    os.chdir(plan.workdir)
    return plan.workdir


def _vm_now(field: str = "VmSize") -> int:
    """A ``/proc/self/status`` figure in bytes (VmSize: address space; VmData: data)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def apply_limits(plan: Plan, *, is_root: bool) -> None:
    """rlimits. The address-space limit counts what the warm interpreter has already mapped
    (torch maps a lot), so the student gets ``memory_mb`` on top of it.

    A GPU runner gets a data limit instead (``RLIMIT_DATA``: private writable memory, the heap
    and anonymous mappings): the CUDA driver reserves terabytes of address space it never
    uses (inaccessible, uncounted by RLIMIT_DATA) and fails under an address-space limit.
    GPU memory itself is bounded by the one device the runner holds."""
    if plan.gpu:
        memory = {resource.RLIMIT_DATA: _vm_now("VmData") + plan.memory_mb * 2**20}
    else:
        memory = {resource.RLIMIT_AS: _vm_now("VmSize") + plan.memory_mb * 2**20}
    limits = {
        **memory,
        resource.RLIMIT_CPU: max(1, int(plan.cpu_s)),
        resource.RLIMIT_FSIZE: plan.disk_mb * 2**20,
        resource.RLIMIT_NOFILE: plan.max_open_files,
        resource.RLIMIT_CORE: 0,
    }
    if is_root:  # per-uid: only meaningful when the runner has a uid of its own
        limits[resource.RLIMIT_NPROC] = plan.max_processes
    for which, value in limits.items():
        soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        # The CPU soft limit sends SIGXCPU; the hard one a second later SIGKILL.
        hard_value = value + 1 if which == resource.RLIMIT_CPU else value
        resource.setrlimit(which, (value, hard_value))


def drop_privileges(uid: int) -> None:
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise ConfinementError("the uid switch did not take effect")


def no_new_privs() -> bool:
    return _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0


def clean_environment(home: str, extra: tuple[tuple[str, str], ...] = ()) -> None:
    """Replace the whole environment with the sandbox policy's clean one (plus ``extra``, the
    plan's own variables: a GPU runner's CUDA_VISIBLE_DEVICES)."""
    os.environ.clear()
    os.environ.update(policy.clean_environment(home))
    os.environ.update(dict(extra))


def close_fds_except(keep: set[int]) -> None:
    for fd in [int(name) for name in os.listdir("/proc/self/fd")]:
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:  # the directory listing's own descriptor, already closed
                pass
