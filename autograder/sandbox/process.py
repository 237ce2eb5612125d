"""The ``process`` sandbox backend (the default): runners forked from a warm fork server.

See :mod:`autograder.sandbox.confine` for what confines a runner and
:mod:`autograder.sandbox.zygote` for the process tree.
"""

from __future__ import annotations

import json
import os
import select
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
from autograder.sandbox.confine import Plan

UID_BASE = 61000
# Imported once by the fork server. torch._dynamo is what the first torch.optim optimizer of a
# process imports (about a second, longer on a loaded machine): every training submission
# would pay it.
DEFAULT_PRELOAD = ("numpy", "torch", "torch._dynamo")


class ProcessRunner(RunnerProcess):
    def __init__(self, *args, status_fd: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.status_fd = status_fd
        self._status_buf = b""
        self._exit: ExitInfo | None = None

    def exit_info(self, timeout: float = 2.0) -> ExitInfo | None:
        deadline = time.monotonic() + timeout
        while self._exit is None:
            remaining = deadline - time.monotonic()
            if remaining < 0:
                return None
            ready, _, _ = select.select([self.status_fd], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(self.status_fd, 4096)
            if not chunk:
                break
            self._status_buf += chunk
            for line in self._status_buf.split(b"\n"):
                if line.startswith(b"{") and b'"exit"' in line:
                    d = json.loads(line)
                    self._exit = ExitInfo(code=d["exit"], signaled=d["signaled"],
                                          cpu_s=d["cpu_s"], maxrss_kb=d["maxrss_kb"])
        return self._exit

    def close(self) -> None:
        super().close()
        self.exit_info(timeout=2.0)
        try:
            os.close(self.status_fd)
        except OSError:
            pass


class ProcessSandbox(Sandbox):
    """Runners as confined processes forked from one warm fork server."""

    name = "process"

    def __init__(self, preload: tuple[str, ...] = DEFAULT_PRELOAD, uid_base: int = UID_BASE):
        self.preload = preload
        self.uid_base = uid_base
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._zygote: subprocess.Popen | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="autograder-sandbox-")
        # Traversable but not listable: a runner without a private root (no namespaces) must
        # reach its own work directory below this one, and nothing else.
        os.chmod(self._tmp.name, 0o711)
        self.root_mount = os.path.join(self._tmp.name, "root")
        os.makedirs(self.root_mount)
        self._readonly_paths = self.readonly_paths()  # fixed for this process: computed once

    # The paths a runner needs read-only inside its private root.
    @staticmethod
    def readonly_paths() -> tuple[str, ...]:
        paths = {sys.prefix, sys.base_prefix, sys.exec_prefix,
                 os.path.dirname(autograder.__file__)}
        for p in sys.path:
            if p.endswith("site-packages") and os.path.isdir(p):
                paths.add(p)
        return tuple(sorted(paths))

    def _ensure_zygote(self) -> socket.socket:
        if self._sock is not None and self._zygote is not None and self._zygote.poll() is None:
            return self._sock
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1",
               "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
        # -I: no user site, no PYTHONPATH, and no current directory on sys.path.
        self._zygote = subprocess.Popen(
            [sys.executable, "-I", "-m", "autograder.sandbox.zygote", str(child.fileno()),
             ",".join(self.preload)],
            pass_fds=[child.fileno()], env=env, cwd="/", stdin=subprocess.DEVNULL,
            close_fds=True)
        child.close()
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

    def start(self, files: Path, limits: Limits, slot: int = 0) -> RunnerProcess:
        proto_in_r, proto_in_w = os.pipe()    # grader -> runner
        proto_out_r, proto_out_w = os.pipe()  # runner -> grader
        out_r, out_w = os.pipe()              # runner's stdout + stderr
        status_r, status_w = os.pipe()        # supervisor -> grader
        workdir = tempfile.mkdtemp(prefix="runner-", dir=self._tmp.name)
        plan = Plan(staging_dir=str(files), uid=self.uid_base + slot,
                    memory_mb=limits.memory_mb, cpu_s=limits.cpu_s,
                    max_processes=limits.max_processes, disk_mb=limits.disk_mb,
                    readonly_paths=self._readonly_paths, root_mount=self.root_mount,
                    workdir=workdir)
        request = {"op": "spawn", "plan": asdict(plan),
                   "max_message": limits.max_message_bytes}
        child_fds = [proto_in_r, proto_out_w, out_w, status_w]
        try:
            with self._lock:
                sock = self._ensure_zygote()
                socket.send_fds(sock, [json.dumps(request).encode()], child_fds)
        finally:
            for fd in child_fds:
                os.close(fd)
        init_pid = self._read_pid(status_r)
        runner = ProcessRunner(
            Channel(proto_out_r, proto_in_w, limits.max_message_bytes), out_r,
            OutputBuffer(limits.max_output_bytes), kill_pids=(init_pid,), degraded=[],
            status_fd=status_r)
        return runner

    @staticmethod
    def _read_pid(status_r: int) -> int:
        line = b""
        deadline = time.monotonic() + 30
        while not line.endswith(b"\n"):
            ready, _, _ = select.select([status_r], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(status_r, 1) if ready else b""
            if not chunk:
                raise SandboxError("the fork server did not report the runner's pid")
            line += chunk
        return int(json.loads(line)["pid"])

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._zygote is not None:
            try:
                self._zygote.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._zygote.kill()
                self._zygote.wait()
            self._zygote = None
        self._tmp.cleanup()
