"""GPUs for the docker backend: which devices a worker has, one job per device, device requests.

An assignment's ``resources.gpu`` says what it needs:

* ``none``: no device request; the container sees no GPU.
* ``optional``: one GPU when the worker has a free one, else the job runs on the CPU.
* ``required``: one GPU, or the job is refused with a message that says why
  (:class:`GpuUnavailable`).

A job never gets more than one device and never ``--gpus all``: the request names exactly one
device (an index, a ``GPU-…`` UUID or a MIG slice's ``MIG-…`` UUID). A worker knows its devices
from ``AUTOGRADER_GPUS`` (comma-separated ids; empty means none) or, without it, from
``nvidia-smi -L`` (MIG slices replace the GPU they are cut from). The :class:`GpuAllocator`
hands each device to at most one job at a time, across the threads and the processes of one
machine: a device is held by an exclusive ``flock`` on its own lock file, so two worker
processes started with the same device list still never share a device.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

GPU_ENV = "AUTOGRADER_GPUS"
POLICIES = ("none", "optional", "required")

_GPU_LINE = re.compile(r"^GPU (\d+): .*\(UUID: (GPU-[0-9A-Za-z-]+)\)")
_MIG_LINE = re.compile(r"^\s+MIG .*\(UUID: (MIG-[0-9A-Za-z/-]+)\)")
_DEVICE_ID = re.compile(r"^(\d+|GPU-[0-9A-Za-z-]+|MIG-[0-9A-Za-z/-]+)$")


from autograder.sandbox.base import SandboxError


class GpuUnavailable(SandboxError):
    """A job needs a GPU this worker cannot give it. The message says what to do."""


def parse_nvidia_smi(text: str) -> list[str]:
    """Device ids from ``nvidia-smi -L``: a GPU's UUID, or the UUIDs of its MIG slices when it
    is partitioned (a partitioned GPU cannot be handed out whole)."""
    devices: list[str] = []
    current: str | None = None
    slices: list[str] = []

    def flush() -> None:
        if current is not None:
            devices.extend(slices or [current])

    for line in text.splitlines():
        m = _GPU_LINE.match(line)
        if m:
            flush()
            current, slices = m.group(2), []
            continue
        m = _MIG_LINE.match(line)
        if m and current is not None:
            slices.append(m.group(1))
    flush()
    return devices


def validate_device(device: str) -> str:
    device = device.strip()
    if not _DEVICE_ID.match(device):
        raise ValueError(f"{device!r} is not a GPU id: write an index (0), a GPU UUID "
                         f"(GPU-...) or a MIG UUID (MIG-...)")
    return device


def detect_gpus(env: dict[str, str] | None = None, nvidia_smi: str | None = None) -> list[str]:
    """This worker's GPUs: ``AUTOGRADER_GPUS`` when set, else ``nvidia-smi -L``, else none."""
    env = os.environ if env is None else env
    if GPU_ENV in env:
        return [validate_device(d) for d in env[GPU_ENV].split(",") if d.strip()]
    smi = nvidia_smi if nvidia_smi is not None else shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20,
                             check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return parse_nvidia_smi(out)


def gpu_flags(device: str | None) -> list[str]:
    """The ``docker run`` flags for one job: exactly one named device, or nothing."""
    if device is None:
        return []
    device = validate_device(device)
    return ["--gpus", f"device={device}"]


@dataclass
class GpuLease:
    """One device held by one job; :meth:`release` (or the end of the process) frees it."""

    device: str
    _fd: int
    _allocator: GpuAllocator

    def release(self) -> None:
        self._allocator._release(self)


class GpuAllocator:
    """At most one job per device, across threads and processes on this machine."""

    def __init__(self, devices: list[str] | None = None, lock_dir: str | Path | None = None):
        self.devices = [validate_device(d) for d in
                        (detect_gpus() if devices is None else devices)]
        if len(set(self.devices)) != len(self.devices):
            raise ValueError(f"a GPU is listed twice: {self.devices}")
        self.lock_dir = Path(lock_dir or Path(tempfile.gettempdir()) / "autograder-gpu-locks")
        self._cond = threading.Condition()
        self._held: dict[str, GpuLease] = {}

    def _lock_path(self, device: str) -> Path:
        name = hashlib.sha256(device.encode()).hexdigest()[:16]
        return self.lock_dir / f"gpu-{name}.lock"

    def _try(self, device: str) -> GpuLease | None:
        if device in self._held:
            return None
        self.lock_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self._lock_path(device), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        lease = GpuLease(device, fd, self)
        self._held[device] = lease
        return lease

    def acquire(self, timeout: float = 0.0) -> GpuLease | None:
        """A free device, waiting up to ``timeout`` seconds; None if every device stays busy
        (or the worker has none)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for device in self.devices:
                    lease = self._try(device)
                    if lease is not None:
                        return lease
                remaining = deadline - time.monotonic()
                if not self.devices or remaining <= 0:
                    return None
                # Another process may free a device without notifying us: poll as well.
                self._cond.wait(min(remaining, 0.2))

    def _release(self, lease: GpuLease) -> None:
        with self._cond:
            if self._held.get(lease.device) is not lease:
                return
            del self._held[lease.device]
            try:
                fcntl.flock(lease._fd, fcntl.LOCK_UN)
            finally:
                os.close(lease._fd)
            self._cond.notify_all()

    @property
    def busy(self) -> list[str]:
        with self._cond:
            return sorted(self._held)


def request_gpu(policy: str, allocator: GpuAllocator | None, timeout: float = 0.0
                ) -> GpuLease | None:
    """The device for one job under ``policy``: a lease, None (run on the CPU), or
    :class:`GpuUnavailable` for a ``required`` job that cannot have one."""
    if policy not in POLICIES:
        raise ValueError(f"resources.gpu must be one of {', '.join(POLICIES)}, not {policy!r}")
    if policy == "none":
        return None
    devices = allocator.devices if allocator is not None else []
    lease = allocator.acquire(timeout) if allocator is not None and devices else None
    if lease is None and policy == "required":
        if not devices:
            raise GpuUnavailable(
                "this assignment requires a GPU (resources.gpu = \"required\"), but this "
                "worker has none (no nvidia-smi, and AUTOGRADER_GPUS is not set): grade it on "
                "a GPU worker, or set resources.gpu = \"optional\" to allow the CPU")
        raise GpuUnavailable(
            f"this assignment requires a GPU, and all {len(devices)} of this worker's GPUs "
            f"({', '.join(devices)}) are busy with other jobs; try again when one is free")
    return lease
