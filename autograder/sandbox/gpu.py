"""GPUs for the sandboxes: which devices a worker has, one job per device, and how one device
reaches a runner (docker's device request; the process backend's device nodes and driver files).

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
processes started with the same device list still never share a device. The lock belongs to the
open lock file, not to a process: the process backend hands a copy of it to the runner's
supervisor, so the device stays held until the runner is gone, whatever the grader does.

The process backend (:class:`GpuHost`, :func:`passthrough`) binds into the runner's private
root the leased GPU's own device node, the driver's control nodes and the driver's user-space
libraries, nothing else of the host's ``/dev``; the runner sees the device as CUDA device 0.
A MIG slice needs the driver's capability nodes for its instance, which this backend does not
bind: it refuses a slice with a message (the docker backend hands slices out).
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import os
import platform
import re
import shutil
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

GPU_ENV = "AUTOGRADER_GPUS"
POLICIES = ("none", "optional", "required")

_GPU_LINE = re.compile(r"^GPU (\d+): .*\(UUID: (GPU-[0-9A-Za-z-]+)\)")
_MIG_LINE = re.compile(r"^\s+MIG .*\(UUID: (MIG-[0-9A-Za-z/-]+)\)")
_DEVICE_ID = re.compile(r"^(\d+|GPU-[0-9A-Za-z-]+|MIG-[0-9A-Za-z/-]+)$")

from autograder.sandbox.base import SandboxError  # noqa: E402 - after the module's constants


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


def detect_gpus(env: Mapping[str, str] | None = None, nvidia_smi: str | None = None
                ) -> list[str]:
    """This worker's GPUs: ``AUTOGRADER_GPUS`` when set, else ``nvidia-smi -L``, else none."""
    environ: Mapping[str, str] = os.environ if env is None else env
    if GPU_ENV in environ:
        return [validate_device(d) for d in environ[GPU_ENV].split(",") if d.strip()]
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
        """Give the device back (a copy of the lock handed to a runner holds it until that
        runner ends)."""
        self._allocator._release(self)

    def lock_fd(self) -> int:
        """The open lock file that holds the device: a process that keeps a copy of it (sent
        with ``SCM_RIGHTS``) keeps the device held until it closes the copy or ends."""
        return self._fd


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
            # Close, never LOCK_UN: an unlock through any copy of the lock file would free the
            # device for everyone while a runner that holds a copy still uses it. The lock
            # goes when the last copy is closed.
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


# --- the process backend: one device's nodes and the driver's files ---------------------------

#: The driver's control nodes a CUDA program opens besides its GPU's own node: the first two are
#: needed (``nvidia-uvm`` is how the CUDA runtime maps memory), the others are bound if present.
CONTROL_NODES_NEEDED = ("nvidiactl", "nvidia-uvm")
CONTROL_NODES_OPTIONAL = ("nvidia-uvm-tools", "nvidia-modeset")

#: The driver's user-space compute libraries (what the NVIDIA container toolkit mounts for the
#: ``compute`` and ``utility`` capabilities). The CUDA runtime, cuBLAS and cuDNN are not here:
#: torch's wheels carry them in site-packages, which the runner already sees.
DRIVER_LIBRARIES = ("libcuda.so", "libcudadebugger.so", "libnvidia-ml.so",
                    "libnvidia-ptxjitcompiler.so", "libnvidia-nvvm.so", "libnvidia-gpucomp.so",
                    "libnvidia-cfg.so", "libnvidia-allocator.so")

#: Where drivers put their libraries when ``ldconfig -p`` does not list them.
USUAL_LIBRARY_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib",
                      "/usr/local/nvidia/lib64", "/usr/local/nvidia/lib", "/usr/lib/wsl/lib",
                      "/run/opengl-driver/lib")


def _is_driver_library(name: str) -> bool:
    return any(name == lib or name.startswith(lib + ".") for lib in DRIVER_LIBRARIES)


def parse_ldconfig(text: str, machine: str | None = None) -> list[str]:
    """The driver libraries ``ldconfig -p`` lists for this machine's architecture (the CUDA
    toolkit's link-time stubs excluded: they are not a driver)."""
    want = "x86-64" if (machine or platform.machine()) == "x86_64" else ""
    found: list[str] = []
    for line in text.splitlines():
        name, sep, path = line.strip().partition(" => ")
        if not sep or "/stubs/" in path:
            continue
        lib, _, flags = name.partition(" (")
        if want and want not in flags:
            continue
        if _is_driver_library(lib) and path not in found:
            found.append(path)
    return found


def _device_info(proc_dir: str) -> list[dict[str, str]]:
    """The driver's own record of each GPU (``/proc/driver/nvidia/gpus/<bus>/information``):
    ``{"uuid", "minor", "bus"}``, in PCI bus order (the order of ``nvidia-smi``'s indices)."""
    gpus = []
    for info in sorted(glob.glob(os.path.join(proc_dir, "*", "information"))):
        fields: dict[str, str] = {}
        try:
            text = Path(info).read_text()
        except OSError:
            continue
        for line in text.splitlines():
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
        if "Device Minor" in fields:
            gpus.append({"uuid": fields.get("GPU UUID", ""), "minor": fields["Device Minor"],
                         "bus": fields.get("Bus Location", os.path.basename(os.path.dirname(info)))})
    return sorted(gpus, key=lambda g: g["bus"])


@dataclass(frozen=True)
class GpuHost:
    """Where this machine keeps its NVIDIA device nodes, driver libraries and driver records.

    The defaults are the real ones; tests point them at a stand-in tree (character devices made
    with ``mknod``, fake libraries) so that the process backend's GPU path runs without a GPU.
    ``lib_dirs`` None: the libraries ``ldconfig -p`` lists, else those in the usual folders."""

    dev_dir: str = "/dev"
    lib_dirs: tuple[str, ...] | None = None
    proc_dir: str = "/proc/driver/nvidia/gpus"

    def device_minor(self, device: str) -> int:
        """The minor number of ``device``'s node (``/dev/nvidia<minor>``): for an index, the
        index-th GPU in PCI bus order (as ``nvidia-smi`` counts), for a UUID the GPU that has
        it, as the driver records them; without those records an index is the minor."""
        gpus = _device_info(self.proc_dir)
        if device.isdigit():
            if not gpus:
                return int(device)
            if int(device) < len(gpus):
                return int(gpus[int(device)]["minor"])
            raise GpuUnavailable(
                f"GPU {device} (from {GPU_ENV} or nvidia-smi) does not exist: the driver knows "
                f"{len(gpus)} GPU(s), indices 0 to {len(gpus) - 1}; fix {GPU_ENV}")
        for gpu in gpus:
            if gpu["uuid"] == device:
                return int(gpu["minor"])
        raise GpuUnavailable(
            f"GPU {device} is not known to the NVIDIA driver ({self.proc_dir} lists "
            f"{len(gpus)} GPU(s)): is the driver loaded, and is {GPU_ENV} right?")

    def driver_libraries(self) -> list[str]:
        """The driver's libraries on this machine: every name a loader may ask for and the file
        it leads to (``libcuda.so.1`` and ``libcuda.so.550.54.15``)."""
        if self.lib_dirs is None:
            paths = self._ldconfig() or self._scan(USUAL_LIBRARY_DIRS)
        else:
            paths = self._scan(self.lib_dirs)
        found: list[str] = []
        for path in paths:
            for p in (path, os.path.realpath(path)):
                if os.path.isfile(p) and p not in found:
                    found.append(p)
        return found

    @staticmethod
    def _ldconfig() -> list[str]:
        ldconfig = shutil.which("ldconfig") or ("/sbin/ldconfig" if os.path.exists(
            "/sbin/ldconfig") else None)
        if ldconfig is None:
            return []
        try:
            out = subprocess.run([ldconfig, "-p"], capture_output=True, text=True, timeout=20,
                                 check=False).stdout
        except (OSError, subprocess.TimeoutExpired):
            return []
        return parse_ldconfig(out)

    @staticmethod
    def _scan(dirs: tuple[str, ...]) -> list[str]:
        return [os.path.join(d, name) for d in dirs if os.path.isdir(d)
                for name in sorted(os.listdir(d)) if _is_driver_library(name)]

    def _node(self, name: str) -> str | None:
        path = os.path.join(self.dev_dir, name)
        try:
            return path if stat.S_ISCHR(os.stat(path).st_mode) else None
        except OSError:
            return None


@dataclass(frozen=True)
class GpuPassthrough:
    """What a process-backend runner gets for one leased GPU: device nodes (host path, path in
    the runner's root), driver libraries (bound read-only at their own paths, where the loader's
    cache names them) and environment variables."""

    device: str
    device_binds: tuple[tuple[str, str], ...]
    library_binds: tuple[tuple[str, str], ...]
    environment: tuple[tuple[str, str], ...]


def passthrough(device: str, host: GpuHost | None = None) -> GpuPassthrough:
    """The nodes, libraries and environment that give a runner ``device`` and no other GPU.

    Raises :class:`GpuUnavailable` (a grader-side fault, never the student's) for a MIG slice,
    a device without its node, missing control nodes or a machine without the driver's
    libraries: each message says what to fix on the worker."""
    host = host or GpuHost()
    device = validate_device(device)
    if device.startswith("MIG-"):
        raise GpuUnavailable(
            f"GPU {device} is a MIG slice: the process backend cannot hand a slice to a runner "
            f"(it would need the slice's capability nodes under /dev/nvidia-caps, which it does "
            f"not bind); grade this assignment with the docker backend, or list whole GPUs in "
            f"{GPU_ENV}")
    minor = host.device_minor(device)
    node = host._node(f"nvidia{minor}")
    if node is None:
        raise GpuUnavailable(
            f"GPU {device}: there is no character device {host.dev_dir}/nvidia{minor}; is the "
            f"NVIDIA driver loaded, and is {GPU_ENV} right?")
    nodes = [(node, f"/dev/nvidia{minor}")]
    for name in CONTROL_NODES_NEEDED + CONTROL_NODES_OPTIONAL:
        path = host._node(name)
        if path is not None:
            nodes.append((path, f"/dev/{name}"))
        elif name in CONTROL_NODES_NEEDED:
            raise GpuUnavailable(
                f"GPU {device}: {host.dev_dir}/{name} is missing, and a runner cannot create it "
                f"(no privileges): run any CUDA program once as root, or "
                f"`nvidia-modprobe -u -c=0`, on this worker")
    libraries = host.driver_libraries()
    if not any(os.path.basename(p).startswith("libcuda.so") for p in libraries):
        where = ", ".join(host.lib_dirs) if host.lib_dirs is not None else \
            "ldconfig -p, " + ", ".join(USUAL_LIBRARY_DIRS)
        raise GpuUnavailable(
            f"GPU {device}: the NVIDIA driver's libcuda.so.1 was not found ({where}); install "
            f"the driver's user-space libraries on this worker")
    return GpuPassthrough(
        device=device,
        device_binds=tuple(nodes),
        library_binds=tuple((p, p) for p in libraries),
        environment=(
            # The runner sees its one GPU as CUDA device 0 (the only node it can open).
            ("CUDA_VISIBLE_DEVICES", "0"),
            ("NVIDIA_VISIBLE_DEVICES", device),
            # No JIT cache under $HOME (the student's folder): it would take disk and locks.
            ("CUDA_CACHE_DISABLE", "1"),
        ))
