"""GPU device requests and the one-job-per-device allocator (no GPU needed)."""

from __future__ import annotations

import multiprocessing
import threading

import pytest

from autograder.sandbox.base import Limits
from autograder.sandbox.docker import RunSpec, run_command
from autograder.sandbox.gpu import (GpuAllocator, GpuUnavailable, detect_gpus, gpu_flags,
                                    parse_nvidia_smi, request_gpu)

SMI = """\
GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-11111111-2222-3333-4444-555555555555)
GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee)
  MIG 3g.20gb     Device  0: (UUID: MIG-0f0e0d0c-0b0a-0908-0706-050403020100)
  MIG 3g.20gb     Device  1: (UUID: MIG-10111213-1415-1617-1819-1a1b1c1d1e1f)
"""


def test_nvidia_smi_gives_whole_gpus_and_mig_slices_instead_of_their_parent():
    assert parse_nvidia_smi(SMI) == [
        "GPU-11111111-2222-3333-4444-555555555555",
        "MIG-0f0e0d0c-0b0a-0908-0706-050403020100",
        "MIG-10111213-1415-1617-1819-1a1b1c1d1e1f",
    ]
    assert parse_nvidia_smi("") == []
    assert parse_nvidia_smi("No devices were found\n") == []


def test_configured_gpus_win_over_detection(tmp_path):
    assert detect_gpus({"AUTOGRADER_GPUS": "0, 2"}) == ["0", "2"]
    assert detect_gpus({"AUTOGRADER_GPUS": ""}) == []
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\ncat <<'X'\n" + SMI + "X\n")
    fake.chmod(0o755)
    assert len(detect_gpus({}, nvidia_smi=str(fake))) == 3
    with pytest.raises(ValueError, match="not a GPU id"):
        detect_gpus({"AUTOGRADER_GPUS": "all"})


@pytest.mark.parametrize("device", ["0", "3", "GPU-11111111-2222-3333-4444-555555555555",
                                    "MIG-0f0e0d0c-0b0a-0908-0706-050403020100"])
def test_a_request_names_exactly_one_device(device):
    assert gpu_flags(device) == ["--gpus", f"device={device}"]
    assert gpu_flags(None) == []


@pytest.mark.parametrize("bad", ["all", "0,1", "device=0", "", "count=2", "0 1"])
def test_never_all_gpus_nor_several(bad):
    with pytest.raises(ValueError):
        gpu_flags(bad)


def _cmd(device):
    spec = RunSpec(name="n", image="img", limits=Limits(), uid=61000, channel_dir="/c",
                   files_dir="/f", owner="h:1", expires=0, gpu_device=device)
    return run_command("docker", spec)


def test_the_container_gets_the_leased_device_and_no_address_space_limit():
    cmd = _cmd("MIG-0f0e0d0c-0b0a-0908-0706-050403020100")
    i = cmd.index("--gpus")
    assert cmd[i + 1] == "device=MIG-0f0e0d0c-0b0a-0908-0706-050403020100"
    assert cmd.count("--gpus") == 1
    assert cmd[-2] == "0"  # CUDA maps huge address ranges: the cgroup limit alone applies
    cpu = _cmd(None)
    assert "--gpus" not in cpu and cpu[-2] != "0"


def test_policies(tmp_path):
    none = GpuAllocator([], lock_dir=tmp_path)
    two = GpuAllocator(["0", "1"], lock_dir=tmp_path)
    assert request_gpu("none", two) is None
    assert request_gpu("optional", none) is None          # runs on the CPU
    assert request_gpu("optional", None) is None
    with pytest.raises(GpuUnavailable, match="requires a GPU.*has none"):
        request_gpu("required", none)
    with pytest.raises(GpuUnavailable, match="requires a GPU"):
        request_gpu("required", None)
    a = request_gpu("required", two)
    b = request_gpu("optional", two)
    assert {a.device, b.device} == {"0", "1"}
    with pytest.raises(GpuUnavailable, match="busy"):
        request_gpu("required", two)
    assert request_gpu("optional", two) is None           # all busy: the CPU
    a.release()
    c = request_gpu("required", two)
    assert c.device == a.device
    with pytest.raises(ValueError):
        request_gpu("sometimes", two)


def test_at_most_one_job_per_device_across_threads(tmp_path):
    alloc = GpuAllocator(["0", "1"], lock_dir=tmp_path)
    holding: list[str] = []
    peak = []
    lock = threading.Lock()

    def job():
        lease = alloc.acquire(timeout=10)
        assert lease is not None
        with lock:
            assert lease.device not in holding
            holding.append(lease.device)
            peak.append(len(holding))
        threading.Event().wait(0.01)
        with lock:
            holding.remove(lease.device)
        lease.release()

    threads = [threading.Thread(target=job) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max(peak) <= 2 and alloc.busy == []


def _hold_in_child(lock_dir, ready, release):
    lease = GpuAllocator(["0"], lock_dir=lock_dir).acquire()
    ready.put(lease.device if lease else None)
    release.get(timeout=30)


def test_another_worker_process_cannot_take_a_held_device(tmp_path):
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Queue(), ctx.Queue()
    child = ctx.Process(target=_hold_in_child, args=(str(tmp_path), ready, release))
    child.start()
    try:
        assert ready.get(timeout=30) == "0"
        mine = GpuAllocator(["0"], lock_dir=tmp_path)
        assert mine.acquire(timeout=0.3) is None
        release.put(True)
        child.join(30)
        lease = mine.acquire(timeout=5)  # freed when the other worker let go (or died)
        assert lease is not None and lease.device == "0"
    finally:
        if child.is_alive():
            child.kill()


def test_a_required_gpu_on_a_worker_without_one_is_refused_before_any_container(
        tmp_path, monkeypatch):
    from autograder.errors import PlatformError
    from autograder.sandbox.docker import DockerSandbox

    monkeypatch.setenv("AUTOGRADER_GPUS", "")
    sb = DockerSandbox(gpu="required", check=False, docker="/nonexistent/docker")
    try:
        with pytest.raises(GpuUnavailable, match="requires a GPU") as info:
            sb.start(tmp_path, Limits())
        assert isinstance(info.value, PlatformError)  # shown as a message, not a traceback
        assert sb._runners == set()
    finally:
        sb.close()
    # optional: runs on the CPU (no device request), so it gets as far as launching docker
    sb = DockerSandbox(gpu="optional", check=False, docker="/nonexistent/docker", warm=0)
    try:
        with pytest.raises(FileNotFoundError):
            sb.start(tmp_path, Limits())
    finally:
        sb.close()


def test_each_job_gets_its_own_device_and_gives_it_back(tmp_path, monkeypatch):
    """Through DockerSandbox.start with a stand-in docker CLI that records its command line."""
    from autograder.sandbox.docker import DockerSandbox

    log = tmp_path / "argv"
    fake = tmp_path / "docker"
    release = tmp_path / "release"  # a "container" runs until the test lets it end
    fake.write_text(f'#!/bin/sh\nfor a in "$@"; do printf "%s " "$a"; done >> {log}\n'
                    f'echo >> {log}\n'
                    f'[ "$1" = run ] && while [ ! -e {release} ]; do sleep 0.05; done\n'
                    f'exit 125\n')
    fake.chmod(0o755)
    files = tmp_path / "files"
    files.mkdir()
    alloc = GpuAllocator(["0", "MIG-0f0e0d0c-0b0a-0908-0706-050403020100"],
                         lock_dir=tmp_path / "locks")
    sb = DockerSandbox(gpu="required", gpus=alloc, check=False, docker=str(fake), warm=0)
    try:
        a = sb.start(files, Limits())
        b = sb.start(files, Limits(), slot=1)
        assert sorted(alloc.busy) == sorted(alloc.devices)
        with pytest.raises(GpuUnavailable, match="busy"):
            sb.start(files, Limits())
        release.touch()
        for r in (a, b):
            r.exit_info(timeout=10)
            r.close()
            r._done.wait(10)
        assert alloc.busy == []  # released when the container ended
    finally:
        sb.close()
    runs = [line.split() for line in log.read_text().splitlines() if " run " in f" {line}"]
    requests = sorted(line[line.index("--gpus") + 1] for line in runs)
    assert requests == ["device=0", "device=MIG-0f0e0d0c-0b0a-0908-0706-050403020100"]


# --- the process backend: which nodes and files give a runner one GPU (no GPU, no root) -------

from autograder.sandbox import confine, policy  # noqa: E402
from autograder.sandbox.gpu import (GpuHost, parse_ldconfig, passthrough)  # noqa: E402

LDCONFIG = """\
1234 libs found in cache `/etc/ld.so.cache'
\tlibcuda.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcuda.so.1
\tlibcuda.so.1 (libc6) => /usr/lib/i386-linux-gnu/libcuda.so.1
\tlibcuda.so (libc6,x86-64) => /usr/local/cuda/lib64/stubs/libcuda.so
\tlibnvidia-ml.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1
\tlibnvidia-mlx.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libnvidia-mlx.so.1
\tlibcudart.so.12 (libc6,x86-64) => /usr/local/cuda/lib64/libcudart.so.12
\tlibc.so.6 (libc6,x86-64) => /lib/x86_64-linux-gnu/libc.so.6
"""


def test_the_driver_libraries_from_ldconfig_are_this_architectures_and_no_stub():
    assert parse_ldconfig(LDCONFIG, machine="x86_64") == [
        "/usr/lib/x86_64-linux-gnu/libcuda.so.1", "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1"]


def _info(proc, bus, uuid, minor):
    (proc / bus).mkdir(parents=True)
    (proc / bus / "information").write_text(
        f"Model: \t\t NVIDIA H200\nGPU UUID: \t {uuid}\nBus Location: \t {bus}\n"
        f"Device Minor: \t {minor}\nGPU Excluded:\t No\n")


def test_a_gpu_id_names_its_node_by_the_drivers_own_records(tmp_path):
    proc = tmp_path / "gpus"
    # Minor numbers follow the driver's probe order, indices the PCI bus order: they differ.
    _info(proc, "0000:b1:00.0", "GPU-bbbb", 0)
    _info(proc, "0000:19:00.0", "GPU-aaaa", 1)
    host = GpuHost(dev_dir=str(tmp_path), lib_dirs=(), proc_dir=str(proc))
    assert host.device_minor("0") == 1 and host.device_minor("1") == 0
    assert host.device_minor("GPU-bbbb") == 0
    with pytest.raises(GpuUnavailable, match="GPU 2 .* does not exist"):
        host.device_minor("2")
    with pytest.raises(GpuUnavailable, match="not known to the NVIDIA driver"):
        host.device_minor("GPU-cccc")
    # No driver records (a stand-in tree): an index is the minor.
    assert GpuHost(proc_dir=str(tmp_path / "none")).device_minor("3") == 3


def test_the_process_backend_refuses_what_it_cannot_hand_over_with_the_fix(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "libnvidia-ml.so.1").write_bytes(b"x")
    host = GpuHost(dev_dir=str(tmp_path / "dev"), lib_dirs=(str(lib),),
                   proc_dir=str(tmp_path / "none"))
    with pytest.raises(GpuUnavailable, match="MIG slice.*docker backend.*whole GPUs"):
        passthrough("MIG-0f0e0d0c-0b0a-0908-0706-050403020100", host)
    with pytest.raises(GpuUnavailable, match="no character device .*nvidia0"):
        passthrough("0", host)
    dev = tmp_path / "dev"
    dev.mkdir()
    (dev / "nvidia0").write_text("a regular file is no device")
    with pytest.raises(GpuUnavailable, match="no character device"):
        passthrough("0", host)
    (dev / "nvidia0").unlink()
    (dev / "nvidia0").symlink_to("/dev/null")  # a character device, without mknod
    with pytest.raises(GpuUnavailable, match="nvidiactl is missing.*nvidia-modprobe"):
        passthrough("0", host)
    for name in ("nvidiactl", "nvidia-uvm"):
        (dev / name).symlink_to("/dev/null")
    with pytest.raises(GpuUnavailable, match="libcuda.so.1 was not found"):
        passthrough("0", host)
    (lib / "libcuda.so.1").write_bytes(b"x")
    gpu = passthrough("0", host)
    assert gpu.device_binds == ((str(dev / "nvidia0"), "/dev/nvidia0"),
                                (str(dev / "nvidiactl"), "/dev/nvidiactl"),
                                (str(dev / "nvidia-uvm"), "/dev/nvidia-uvm"))
    assert {t for _, t in gpu.library_binds} == {str(lib / "libcuda.so.1"),
                                                 str(lib / "libnvidia-ml.so.1")}
    assert dict(gpu.environment)["CUDA_VISIBLE_DEVICES"] == "0"


def test_a_copy_of_the_lock_keeps_the_device_held(tmp_path):
    """The process backend sends a copy of the lock to the runner's supervisor: the grader's
    release must not free a device the runner still uses (no LOCK_UN through a copy)."""
    import os

    alloc = GpuAllocator(["0"], lock_dir=tmp_path)
    lease = alloc.acquire()
    copy = os.dup(lease.lock_fd())
    lease.release()
    assert alloc.acquire() is None
    assert GpuAllocator(["0"], lock_dir=tmp_path).acquire() is None
    os.close(copy)  # the runner is gone
    again = alloc.acquire()
    assert again is not None and again.device == "0"
    again.release()


def test_a_plan_survives_its_trip_to_the_fork_server_as_json():
    import dataclasses
    import json

    plan = confine.Plan(staging_dir="/s", uid=61000, memory_mb=1, cpu_s=1, max_processes=1,
                        disk_mb=1, binds=(("/a", "/b"),), gpu=True,
                        devices=(("/dev/nvidia1", "/dev/nvidia1"),),
                        environment=(("CUDA_VISIBLE_DEVICES", "0"),))
    again = confine.Plan.from_json(json.loads(json.dumps(dataclasses.asdict(plan))))
    assert again == plan and hash(again) == hash(plan)


def test_a_gpu_runner_gets_a_data_limit_instead_of_an_address_space_limit():
    """CUDA reserves terabytes of address space: RLIMIT_AS would stop it starting."""
    import ast
    import os
    import resource

    plan = confine.Plan(staging_dir="/s", uid=61000, memory_mb=256, cpu_s=5, max_processes=64,
                        disk_mb=8, gpu=True)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            confine.apply_limits(plan, is_root=False)
            os.write(w, repr((resource.getrlimit(resource.RLIMIT_AS)[0],
                              resource.getrlimit(resource.RLIMIT_DATA)[0])).encode())
        finally:
            os._exit(0)
    os.close(w)
    address_space, data = ast.literal_eval(os.read(r, 200).decode())
    os.close(r)
    os.waitpid(pid, 0)
    assert address_space == resource.getrlimit(resource.RLIMIT_AS)[0]  # untouched
    assert data != resource.RLIM_INFINITY and data >= 256 * 2**20


def test_the_seccomp_policy_leaves_the_cuda_driver_its_calls():
    """The driver talks to its devices with open, ioctl and mmap (of the device files, for
    device and pinned memory); none may be refused. The NUMA calls it tries are refused, as in
    docker's default profile under which GPU containers run, and it carries on without them."""
    needed = {"open", "openat", "ioctl", "mmap", "munmap", "mprotect", "mremap", "madvise",
              "close", "read", "write", "poll", "eventfd2", "futex", "sched_getaffinity",
              "clone", "fcntl"}
    assert not needed & set(policy.DENIED_SYSCALLS)
    assert {"mbind", "get_mempolicy", "set_mempolicy"} <= set(policy.DENIED_SYSCALLS)


def test_without_root_a_gpu_runner_is_only_pointed_at_its_device(tmp_path, monkeypatch):
    """No private root to bind into (a student's laptop): CUDA_VISIBLE_DEVICES selects the
    leased device, and the data limit replaces the address-space limit all the same."""
    from autograder.sandbox import process

    sandbox = process.ProcessSandbox(preload=("numpy",),
                                     gpus=GpuAllocator(["1"], lock_dir=tmp_path))
    try:
        lease = sandbox._lease_gpu(Limits(gpu="optional"))
        assert lease is not None and lease.device == "1"
        monkeypatch.setattr(process.os, "geteuid", lambda: 1000)
        assert sandbox._gpu_plan(lease) == {"gpu": True,
                                            "environment": (("CUDA_VISIBLE_DEVICES", "1"),)}
        assert sandbox._lease_gpu(Limits(gpu="none")) is None
        lease.release()
    finally:
        sandbox.close()
