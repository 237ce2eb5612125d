"""The ``process`` sandbox backend (the default): runners forked from a warm fork server.

See :mod:`autograder.sandbox.confine` for what confines a runner and
:mod:`autograder.sandbox.zygote` for the process tree. An assignment whose ``resources.gpu`` is
``optional`` or ``required`` gets one GPU of the worker's for the runner's life (its device
node, the driver's control nodes and libraries: :mod:`autograder.sandbox.gpu`).
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path

import autograder
from autograder.protocol import Channel
from autograder.sandbox.base import (ExitInfo, Limits, OutputBuffer, RunnerProcess, Sandbox,
                                     SandboxError)
from autograder.sandbox import policy
from autograder.sandbox import confine
from autograder.sandbox.confine import Plan
from autograder.sandbox.gpu import GpuAllocator, GpuHost, GpuLease, passthrough, request_gpu

UID_BASE = policy.UID_BASE
# Imported once by the fork server. torch._dynamo is what the first torch.optim optimizer of a
# process imports (about a second, longer on a loaded machine): every training submission
# would pay it.
DEFAULT_PRELOAD = ("numpy", "torch", "torch._dynamo")


def _under_system_dir(path: str) -> bool:
    return any(path == d or path.startswith(d + "/") for d in confine.SYSTEM_DIRS)


def _site_dirs() -> list[str]:
    """Every directory packages are installed in, for this interpreter and its base."""
    import site
    import sysconfig

    dirs = set(site.getsitepackages()) | {sysconfig.get_paths()["purelib"],
                                         sysconfig.get_paths()["platlib"]}
    for prefix in {sys.base_prefix, sys.base_exec_prefix, "/usr", "/usr/local"}:
        dirs |= set(site.getsitepackages([prefix]))
    dirs.add("/usr/lib/python3/dist-packages")  # Debian's python3-* packages
    return sorted(os.path.realpath(d) for d in dirs if os.path.isdir(d))


@functools.lru_cache(maxsize=4)
def library_entries(names: tuple[str, ...] = policy.RUNNER_LIBRARIES) -> list[str]:
    """The installed files and folders (top-level entries of a site-packages directory) of
    ``names`` and of everything they require, recursively. Fixed for this process (computed
    once): every sandbox of a process (verify, a worker's) binds the same."""
    import csv
    import importlib.metadata as md
    import re

    from packaging.markers import InvalidMarker
    from packaging.requirements import InvalidRequirement, Requirement

    entries: set[str] = set()
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        for req in dist.requires or []:
            try:
                r = Requirement(req)
                if r.marker is None or r.marker.evaluate({"extra": ""}):
                    todo.append(r.name)
            except (InvalidRequirement, InvalidMarker):
                continue
        # The first part of each path in RECORD, resolved once per entry: torch's RECORD has
        # some 15,000 lines, and a realpath per file cost seconds of every `check`.
        record = dist.read_text("RECORD")
        tops = ({row[0].replace("\\", "/").split("/", 1)[0]
                 for row in csv.reader(record.splitlines()) if row} if record is not None
                else {f.parts[0] for f in dist.files or [] if f.parts})
        for top in tops:
            if not top or top in ("..", "__pycache__") or top.endswith(".pth"):
                continue
            entries.add(os.path.realpath(str(dist.locate_file(top))))
    return sorted(e for e in entries if os.path.lexists(e))


def runtime_view(runner_pkg: str) -> dict:
    """The :class:`~autograder.sandbox.confine.Plan` fields that shape what of this machine's
    Python a runner sees (see :meth:`ProcessSandbox._runtime_view`)."""
    readonly = ProcessSandbox.readonly_paths()
    sites = _site_dirs()
    copies = []
    if sys.prefix != sys.base_prefix:  # a virtualenv: its pyvenv.cfg and python, no more
        venv = os.path.realpath(sys.prefix)
        copies = [os.path.join(venv, "pyvenv.cfg")] + sorted(
            os.path.join(venv, "bin", n) for n in os.listdir(os.path.join(venv, "bin"))
            if n.startswith("python") and os.path.islink(os.path.join(venv, "bin", n)))
    return {
        "readonly_paths": readonly,
        "hidden_paths": tuple(sites),
        "binds": ((runner_pkg, policy.RUNNER_ROOT + "/autograder"),
                  *((e, e) for e in library_entries())),
        "copies": tuple(copies),
    }


class ProcessRunner(RunnerProcess):
    """A runner of the process backend. Its status pipe carries the init's report of the
    runner's own wait status and resource use, then the supervisor's report of the init's."""

    #: How long the init may take to end the runner and report, before the SIGKILL.
    END_WAIT_S = 2.0

    def __init__(self, *args, status_fd: int, lease: GpuLease | None = None, **kwargs):
        super().__init__(*args, kill_pids=(), **kwargs)
        self.status_fd = status_fd
        # The init's pid: reported on the status pipe by the fork server, read on first need
        # (a runner started ahead for the next submission costs the grader no wait for it).
        self._init_pid: int | None = None
        # The GPU this runner holds (its supervisor holds a copy of the lock until the runner's
        # last process has ended; this one is given back at close).
        self.lease = lease
        self.gpu: str | None = lease.device if lease is not None else None
        self._status_buf = b""
        self._status_open = True
        self._runner_report: dict | None = None
        self._exit: ExitInfo | None = None
        self._ended = False

    def _read_status(self, deadline: float) -> bool:
        """Read what the status pipe holds by ``deadline``: the init's pid, then the runner's
        and the init's reports. False once nothing more can come by then."""
        if not self._status_open:
            return False
        try:
            ready, _, _ = select.select([self.status_fd], [], [],
                                        max(0.0, deadline - time.monotonic()))
            chunk = os.read(self.status_fd, 4096) if ready else None
        except (OSError, ValueError):  # the pipe is already closed
            chunk = b""
        if chunk is None:
            return False
        if not chunk:
            self._status_open = False
            return False
        self._status_buf += chunk
        *lines, self._status_buf = self._status_buf.split(b"\n")
        for line in lines:
            if not line.startswith(b"{"):
                continue
            d = json.loads(line)
            if "pid" in d:
                self._init_pid = int(d["pid"])
                self.kill_pids = (self._init_pid,)
            elif "runner" in d:
                self._runner_report = d["runner"]
            elif "exit" in d:
                # The runner's own status and usage where the init reported them (always,
                # unless the sandbox failed before the runner started); else the init's.
                r = self._runner_report or d
                self._exit = ExitInfo(code=r["exit"], signaled=r["signaled"],
                                      cpu_s=r["cpu_s"], maxrss_kb=r["maxrss_kb"])
        return True

    def init_pid(self, timeout: float = 30.0) -> int | None:
        """The pid of the runner's init (None if the fork server never reported one)."""
        deadline = time.monotonic() + timeout
        while self._init_pid is None and self._read_status(deadline):
            pass
        return self._init_pid

    def exit_info(self, timeout: float = 2.0) -> ExitInfo | None:
        deadline = time.monotonic() + timeout
        while self._exit is None and self._read_status(deadline):
            pass
        return self._exit

    def end(self) -> bool:
        """Ask the init to end the runner (it reports the runner's status and usage), without
        waiting: :meth:`close` collects the report."""
        if self._ended or self._exit is not None:
            return self._ended
        self._ended = True
        pid = self.init_pid(timeout=self.END_WAIT_S)
        if pid is None:
            return False
        try:
            os.kill(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
        return True

    def kill(self) -> None:
        """End the runner through its init (so its status and usage are reported), then kill
        whatever is left of it."""
        if self._exit is None:
            self.end()
            self.exit_info(timeout=self.END_WAIT_S)  # at once if the init is already gone
        super().kill()

    def close(self) -> None:
        super().close()
        self.exit_info(timeout=2.0)
        try:
            os.close(self.status_fd)
        except OSError:
            pass
        if self.lease is not None:
            self.lease.release()
            self.lease = None


#: The protocol pipes' capacity: an array of up to this size crosses in one write and one
#: read, instead of a wake-up of the other side per 64 KiB (Linux's default).
PIPE_BYTES = 1 << 20


def _widen_pipe(fd: int) -> None:
    try:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except OSError:  # above /proc/sys/fs/pipe-max-size, or the user's pipe quota: the default
        pass


class ProcessSandbox(Sandbox):
    """Runners as confined processes forked from one warm fork server."""

    name = "process"

    def __init__(self, preload: tuple[str, ...] = DEFAULT_PRELOAD, uid_base: int = UID_BASE,
                 *, gpus: GpuAllocator | None = None, gpu_wait_s: float = 0.0,
                 gpu_host: GpuHost | None = None):
        """``gpus``: the worker's GPUs (None: found on first need, from ``AUTOGRADER_GPUS`` or
        ``nvidia-smi -L``); ``gpu_wait_s``: how long a runner waits for a busy GPU before it
        runs on the CPU (``optional``) or is refused (``required``); ``gpu_host``: where the
        device nodes and driver libraries are (a stand-in tree in tests)."""
        self.preload = preload
        self.uid_base = uid_base
        self.uids = policy.UidLeases(uid_base)
        self.gpus = gpus
        self.gpu_wait_s = gpu_wait_s
        self.gpu_host = gpu_host or GpuHost()
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._zygote: subprocess.Popen | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="autograder-sandbox-")
        # Traversable but not listable: a runner without a private root (no namespaces) must
        # reach its own work directory below this one, and nothing else.
        os.chmod(self._tmp.name, 0o711)
        self.root_mount = os.path.join(self._tmp.name, "root")
        os.makedirs(self.root_mount)
        self._view_lock = threading.Lock()
        self._view_made: dict | None = None
        self._greeting: socket.socket | None = None  # a started fork server not yet ready

    @property
    def _view(self) -> dict:
        """:meth:`_runtime_view`, made once, on first need: :meth:`warm_up` makes it after it
        has started the fork server, so that the server's imports begin ~0.15 s sooner."""
        with self._view_lock:
            if self._view_made is None:
                self._view_made = self._runtime_view()
            return self._view_made

    def _runtime_view(self) -> dict:
        """What of this machine's Python a runner sees (fixed for this process: computed
        once): the interpreter's own tree without its site-packages, the runner's own files
        (a copy, bound at :data:`~autograder.sandbox.policy.RUNNER_ROOT` as in the docker
        image) and the files of the runner's libraries; never the rest of the virtualenv,
        the ``autograder`` package or the course."""
        runner_pkg = os.path.join(self._tmp.name, "runner", "autograder")
        package = os.path.dirname(autograder.__file__)
        for rel in policy.RUNNER_FILES:
            os.makedirs(os.path.dirname(os.path.join(runner_pkg, rel)), exist_ok=True)
            shutil.copyfile(os.path.join(package, rel), os.path.join(runner_pkg, rel))
        os.chmod(os.path.join(self._tmp.name, "runner"), 0o755)
        return runtime_view(runner_pkg)

    @staticmethod
    def readonly_paths() -> tuple[str, ...]:
        """The interpreter's own trees, bound read-only into a runner's private root."""
        return tuple(sorted({os.path.realpath(p) for p in (sys.base_prefix, sys.base_exec_prefix)
                             if not _under_system_dir(os.path.realpath(p))}))

    def warm_up(self) -> None:
        """Start the fork server now; it imports ``preload`` while the caller goes on (the
        grader's own imports, the tests' collection). The first :meth:`start` waits for it."""
        with self._lock:
            if self._greeting is None and (self._zygote is None or self._zygote.poll() is not None):
                self._spawn_zygote()
        self._view  # noqa: B018 - made now, while the fork server imports

    def _spawn_zygote(self) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = policy.clean_environment(home="/")
        # The fork server must never start the CUDA driver: a runner forked after that cannot
        # use its GPU. Should anything it imports ask torch.cuda.is_available(), torch asks
        # NVML instead of the driver (a runner's own environment does not carry this).
        env["PYTORCH_NVML_BASED_CUDA_CHECK"] = "1"
        # -I: no user site, no PYTHONPATH, and no current directory on sys.path.
        self._zygote = subprocess.Popen(
            [sys.executable, "-I", "-m", "autograder.sandbox.zygote", str(child.fileno()),
             ",".join(self.preload)],
            pass_fds=[child.fileno()], env=env, cwd="/", stdin=subprocess.DEVNULL,
            close_fds=True)
        child.close()
        for stale in (self._sock, self._greeting):  # of a fork server that died
            if stale is not None:
                stale.close()
        self._sock = None
        self._greeting = parent

    def _ensure_zygote(self) -> socket.socket:
        if self._sock is not None and self._zygote is not None and self._zygote.poll() is None:
            return self._sock
        if self._greeting is None or self._zygote is None or self._zygote.poll() is not None:
            self._spawn_zygote()
        parent = self._greeting
        assert parent is not None
        self._greeting = None
        parent.settimeout(120)
        try:
            hello = parent.recv(1024)
        except OSError as e:
            raise SandboxError(f"the fork server did not start: {e}") from None
        if b"ready" not in hello:
            raise SandboxError("the fork server did not start (no greeting)")
        parent.settimeout(None)
        self._sock = parent
        return parent

    def _lease_gpu(self, limits: Limits) -> GpuLease | None:
        """A GPU for one runner under the assignment's ``resources.gpu``, or None (the CPU);
        :class:`~autograder.sandbox.gpu.GpuUnavailable` for a ``required`` one it cannot
        have."""
        wanted = limits.gpu or "none"
        if wanted != "none" and self.gpus is None:
            self.gpus = GpuAllocator()  # AUTOGRADER_GPUS, else nvidia-smi -L, else none
        return request_gpu(wanted, self.gpus, self.gpu_wait_s)

    def _gpu_plan(self, lease: GpuLease | None) -> dict:
        """The plan's GPU fields for a leased device: as root, its nodes and the driver's
        libraries in the private root, seen as CUDA device 0. Without root there is no private
        root to bind into: the device is only selected, and every GPU is as reachable as every
        file is (the "private filesystem" protection the runner reports missing)."""
        if lease is None:
            return {}
        if os.geteuid() != 0:
            return {"gpu": True, "environment": (("CUDA_VISIBLE_DEVICES", lease.device),)}
        gpu = passthrough(lease.device, self.gpu_host)
        return {"gpu": True, "devices": gpu.device_binds,
                "binds": (*self._view["binds"], *gpu.library_binds),
                "environment": gpu.environment}

    def start(self, files: Path, limits: Limits, slot: int = 0) -> RunnerProcess:
        lease = self._lease_gpu(limits)
        try:
            return self._start(files, limits, slot, lease)
        except BaseException:
            if lease is not None:
                lease.release()
            raise

    def _start(self, files: Path, limits: Limits, slot: int,
               lease: GpuLease | None) -> RunnerProcess:
        gpu_fields = self._gpu_plan(lease)
        proto_in_r, proto_in_w = os.pipe()    # grader -> runner
        proto_out_r, proto_out_w = os.pipe()  # runner -> grader
        for fd in (proto_in_w, proto_out_w):
            _widen_pipe(fd)
        out_r, out_w = os.pipe()              # runner's stdout + stderr
        status_r, status_w = os.pipe()        # supervisor -> grader
        workdir = tempfile.mkdtemp(prefix="runner-", dir=self._tmp.name)
        plan = Plan(staging_dir=str(files), uid=self.uids.uid(slot),
                    memory_mb=limits.memory_mb, cpu_s=limits.cpu_s,
                    max_processes=limits.max_processes, disk_mb=limits.disk_mb,
                    root_mount=self.root_mount, **{**self._view, **gpu_fields},
                    workdir=workdir)
        request = {"op": "spawn", "plan": asdict(plan),
                   "max_message": limits.max_message_bytes}
        child_fds = [proto_in_r, proto_out_w, out_w, status_w]
        try:
            with self._lock:
                sock = self._ensure_zygote()
                # A GPU lease's lock goes along: the runner's supervisor holds the device.
                socket.send_fds(sock, [json.dumps(request).encode()],
                                child_fds + ([lease.lock_fd()] if lease is not None else []))
        finally:
            for fd in child_fds:
                os.close(fd)
        # Not waited for: the fork server reports the init's pid on the status pipe, read when
        # first needed (the hello comes on the protocol channel; a fork server that failed
        # closes it, and the session reports the sandbox's failure).
        return ProcessRunner(
            Channel(proto_out_r, proto_in_w, limits.max_message_bytes), out_r,
            OutputBuffer(limits.max_output_bytes), degraded=[], status_fd=status_r, lease=lease)

    def close(self) -> None:
        for sock in (self._sock, self._greeting):
            if sock is not None:
                sock.close()
        self._sock = self._greeting = None
        if self._zygote is not None:
            # Its runners are closed, and it holds nothing worth an orderly exit: killed, not
            # waited on through an interpreter teardown (about a second with torch loaded).
            self._zygote.kill()
            self._zygote.wait()
            self._zygote = None
        self.uids.close()
        self._tmp.cleanup()
