"""The process backend hands exactly one GPU to a runner (issue 16), proven without a GPU.

A stand-in device tree replaces the host's: character devices made with ``mknod`` (``/dev/null``
underneath) named ``nvidia0``, ``nvidia1``, ``nvidiactl``, ... and fake driver libraries beside
a decoy, with ``AUTOGRADER_GPUS=0,1`` as the worker's GPUs. Student code graded through the real
process sandbox lists ``/dev`` and the library folder from inside and opens what it sees. CUDA
itself never runs here: ``benchmarks/gpu_check.py`` is the check for a machine with a GPU.
"""

from __future__ import annotations

import json
import os
import stat
import textwrap
import threading
import time
from pathlib import Path

import pytest

from autograder.course import Course
from autograder.harness.grader import grade_uploads
from autograder.harness.remote import StudentSession
from autograder.results import Outcome
from autograder.sandbox.base import Limits
from autograder.sandbox.gpu import GpuAllocator, GpuHost, GpuUnavailable
from autograder.sandbox.process import ProcessSandbox
from tests.conftest import as_root, write

pytestmark = pytest.mark.skipif(
    not as_root(), reason="needs root: the stand-in GPUs are made with mknod, and only root "
                          "builds the private root a device is bound into")

UID_BASE = 65000 + (os.getpid() % 200) * 2
NODES = ("nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm", "nvidia-uvm-tools")
LIBRARIES = ("libcuda.so.1", "libcuda.so.555.42", "libnvidia-ml.so.1",
             "libnvidia-ptxjitcompiler.so.1")

PROBE = '''
import os
import time


def look(lib_dir):
    """What this runner can see of the GPU: /dev, the driver's folder, its environment."""
    dev = sorted(os.listdir("/dev"))
    opened = {}
    for name in dev:
        if name.startswith("nvidia"):
            try:
                fd = os.open("/dev/" + name, os.O_RDWR)
                os.write(fd, b"x")  # /dev/null underneath: a write that works
                os.close(fd)
                opened[name] = "ok"
            except OSError as e:
                opened[name] = e.strerror
    try:
        os.stat("/dev/nvidia1" if "nvidia0" in dev else "/dev/nvidia0")
        other = "exists"
    except OSError as e:
        other = e.strerror
    return {"dev": dev, "opened": opened, "other_gpu": other,
            "libs": sorted(os.listdir(lib_dir)) if os.path.isdir(lib_dir) else None,
            "env": {k: v for k, v in os.environ.items() if "CUDA" in k or "NVIDIA" in k},
            "sys": os.path.isdir("/sys/devices")}


def hold(seconds):
    time.sleep(seconds)
    return 1
'''


@pytest.fixture(scope="module")
def standin(tmp_path_factory) -> GpuHost:
    """A stand-in for the host's NVIDIA devices and driver: /dev/null's device number under
    the names the driver gives its nodes, fake libraries beside a decoy that must stay out."""
    root = tmp_path_factory.mktemp("gpu-host")
    dev, lib = root / "dev", root / "lib"
    dev.mkdir()
    lib.mkdir()
    null = os.stat("/dev/null").st_rdev
    for name in NODES + ("fb0",):  # fb0: a device of the host that is no GPU's
        os.mknod(dev / name, 0o666 | stat.S_IFCHR, null)
        os.chmod(dev / name, 0o666)
    (lib / "libcuda.so.555.42").write_bytes(b"\x7fELF fake driver")
    (lib / "libcuda.so.1").symlink_to("libcuda.so.555.42")
    for name in ("libnvidia-ml.so.1", "libnvidia-ptxjitcompiler.so.1", "libsecret.so",
                 "course-notes.txt"):
        (lib / name).write_bytes(b"fake")
    return GpuHost(dev_dir=str(dev), lib_dirs=(str(lib),), proc_dir=str(root / "no-driver"))


@pytest.fixture(scope="module")
def lock_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("gpu-locks")


@pytest.fixture(scope="module")
def sandbox(standin, lock_dir):
    # A GPU is waited for 0 s unless a test says otherwise: the allocator's policy decides.
    with ProcessSandbox(preload=("numpy",), uid_base=UID_BASE,
                        gpus=GpuAllocator(["0", "1"], lock_dir=lock_dir),
                        gpu_host=standin) as sb:
        yield sb


@pytest.fixture
def files(tmp_path) -> Path:
    write(tmp_path / "files" / "probe.py", PROBE)
    return tmp_path / "files"


def _session(sandbox, files, gpu: str, slot: int) -> StudentSession:
    limits = Limits(memory_mb=512, cpu_s=60, max_processes=32, disk_mb=16, gpu=gpu)
    session = StudentSession(sandbox, files, limits, ("probe",), slot=slot)
    session.deadline = time.monotonic() + 120
    return session


def _lib_dir(standin: GpuHost) -> str:
    return standin.lib_dirs[0]


def _own_node(seen: dict) -> str:
    nodes = [n for n in seen["dev"] if n in ("nvidia0", "nvidia1")]
    assert len(nodes) == 1, seen["dev"]
    return nodes[0]


def _probe_course(tmp_path: Path, standin) -> tuple[Path, Path]:
    """A course whose one test (resources.gpu = "optional") writes what the student process
    saw to ``<out>/<submission>.json``; returns (course root, out)."""
    out = tmp_path / "seen"
    out.mkdir()
    root = tmp_path / "course"
    write(root / "course.toml", 'name = "gpu"\n')
    write(root / "assignments/toy/assignment.toml",
          'name = "toy"\nmodules = ["probe"]\n[resources]\ngpu = "optional"\n'
          'test_time_limit_s = 60\ntime_limit_s = 120\nmemory_mb = 512\n')
    write(root / "assignments/toy/tests/test_public.py", textwrap.dedent(f'''
        import json
        from pathlib import Path
        import pytest

        @pytest.mark.points(1)
        def test_look(student, submission):
            seen = student.look({_lib_dir(standin)!r})
            Path({str(out)!r}, submission.id + ".json").write_text(json.dumps(seen))
        '''))
    write(root / "solutions/toy/probe.py", PROBE)
    return root, out


def test_a_graded_submission_sees_its_one_gpu_the_control_nodes_and_the_driver_only(
        tmp_path, sandbox, standin):
    """Through the whole grading path (course, pytest, plugin), resources.gpu = "optional"."""
    root, out = _probe_course(tmp_path, standin)
    upload = write(root / "uploads" / "probe.py", PROBE)
    [result] = grade_uploads(Course(root).assignment("toy"), [upload], sandbox=sandbox)
    assert [t.outcome for t in result.tests] == [Outcome.PASSED], result.tests
    seen = json.loads(next(out.glob("*.json")).read_text())

    own = _own_node(seen)
    nvidia = sorted(n for n in seen["dev"] if n.startswith("nvidia"))
    assert nvidia == sorted([own, "nvidiactl", "nvidia-uvm", "nvidia-uvm-tools"])
    assert "fb0" not in seen["dev"]                       # nothing else of the host's /dev
    assert seen["other_gpu"] == "No such file or directory"
    assert seen["opened"] == {n: "ok" for n in nvidia}    # its own device opens
    assert seen["libs"] == sorted(LIBRARIES)              # the driver, not the decoys
    assert seen["env"]["CUDA_VISIBLE_DEVICES"] == "0"     # its one GPU, as CUDA counts
    assert seen["env"]["NVIDIA_VISIBLE_DEVICES"] == own[len("nvidia"):]
    assert seen["sys"] is True                            # the driver reads /sys to start


def test_every_submission_of_a_batch_gets_the_gpu_not_only_every_other_one(
        tmp_path, standin, files):
    """The harness starts the next submission's runner ahead of time; a GPU runner started
    ahead would find the device held by the current one and run on the CPU."""
    root, out = _probe_course(tmp_path, standin)
    uploads = [write(root / "uploads" / f"s{i}.py", PROBE) for i in range(3)]
    with ProcessSandbox(preload=("numpy",), uid_base=UID_BASE + 130,
                        gpus=GpuAllocator(["0"], lock_dir=tmp_path / "locks"),
                        gpu_host=standin) as sb:
        results = grade_uploads(Course(root).assignment("toy"), uploads, sandbox=sb)
    assert all(t.outcome == Outcome.PASSED for r in results for t in r.tests)
    seen = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    assert len(seen) == 3
    assert [s["env"].get("CUDA_VISIBLE_DEVICES") for s in seen] == ["0", "0", "0"]


def test_two_runners_get_different_gpus_and_a_third_is_refused_or_runs_on_the_cpu(
        sandbox, files, standin):
    a = _session(sandbox, files, "required", slot=0)
    b = _session(sandbox, files, "optional", slot=1)
    try:
        seen_a = a.module("probe").look(_lib_dir(standin))
        seen_b = b.module("probe").look(_lib_dir(standin))
        assert {_own_node(seen_a), _own_node(seen_b)} == {"nvidia0", "nvidia1"}
        assert {a.runner.gpu, b.runner.gpu} == {"0", "1"}
        assert sorted(sandbox.gpus.busy) == ["0", "1"]

        c = _session(sandbox, files, "required", slot=2)
        with pytest.raises(GpuUnavailable, match="all 2 of this worker's GPUs .* are busy"):
            c.module("probe").look(_lib_dir(standin))
        c.close()

        cpu = _session(sandbox, files, "optional", slot=2)  # no GPU free: the CPU
        try:
            seen = cpu.module("probe").look(_lib_dir(standin))
            assert cpu.runner.gpu is None
            assert not [n for n in seen["dev"] if n.startswith("nvidia")]
            assert seen["libs"] is None and seen["env"] == {} and seen["sys"] is False
        finally:
            cpu.close()
    finally:
        a.close()
        b.close()
    assert sandbox.gpus.busy == []


def test_a_third_runner_waits_for_a_gpu_when_the_worker_says_so(standin, files, tmp_path):
    with ProcessSandbox(preload=("numpy",), uid_base=UID_BASE + 100, gpu_wait_s=30,
                        gpus=GpuAllocator(["0", "1"], lock_dir=tmp_path / "locks"),
                        gpu_host=standin) as sb:
        a = _session(sb, files, "required", 0)
        b = _session(sb, files, "required", 1)
        a.module("probe").hold(0)
        b.module("probe").hold(0)
        freed = a.runner.gpu
        threading.Timer(1.0, a.close).start()
        c = _session(sb, files, "required", 2)
        began = time.monotonic()
        try:
            c.module("probe").hold(0)
            assert c.runner.gpu == freed and time.monotonic() - began >= 0.9
        finally:
            b.close()
            c.close()


def test_the_gpu_stays_held_until_the_runner_is_gone_even_if_killed(sandbox, files, lock_dir):
    session = _session(sandbox, files, "required", slot=0)
    session.module("probe").hold(0)
    runner = session.runner
    device = runner.gpu
    # Another worker process on this machine, same devices: it must not get this one.
    other = GpuAllocator([device], lock_dir=lock_dir)
    runner.lease.release()  # the grader's own copy of the lock: the runner's supervisor keeps it
    runner.lease = None
    assert other.acquire() is None, "a GPU in use by a runner was handed to another job"
    runner.kill()  # SIGTERM to its init, SIGKILL to what is left
    lease = other.acquire(timeout=10)
    assert lease is not None and lease.device == device
    lease.release()
    session.close()


def test_required_without_a_gpu_is_the_graders_fault_with_a_message(tmp_path, standin):
    root = tmp_path / "course"
    write(root / "course.toml", 'name = "gpu"\n')
    write(root / "assignments/toy/assignment.toml",
          'name = "toy"\nmodules = ["probe"]\n[resources]\ngpu = "required"\n'
          'test_time_limit_s = 60\ntime_limit_s = 120\nmemory_mb = 512\n')
    write(root / "assignments/toy/tests/test_public.py", '''
        import pytest

        @pytest.mark.points(1)
        def test_hold(student):
            assert student.hold(0) == 1
        ''')
    write(root / "solutions/toy/probe.py", PROBE)
    upload = write(root / "uploads" / "probe.py", PROBE)
    with ProcessSandbox(preload=("numpy",), uid_base=UID_BASE + 110,
                        gpus=GpuAllocator([], lock_dir=tmp_path / "locks"),
                        gpu_host=standin) as sb:
        [result] = grade_uploads(Course(root).assignment("toy"), [upload], sandbox=sb)
    [test] = result.tests
    assert test.outcome == Outcome.GRADER_ERROR      # never counted against the student
    assert "requires a GPU" in test.output and "has none" in test.output
    assert result.grader_errors


def test_a_mig_slice_is_refused_with_a_message_on_the_process_backend(files, tmp_path, standin):
    mig = "MIG-0f0e0d0c-0b0a-0908-0706-050403020100"
    with ProcessSandbox(preload=("numpy",), uid_base=UID_BASE + 120,
                        gpus=GpuAllocator([mig], lock_dir=tmp_path / "locks"),
                        gpu_host=standin) as sb:
        session = _session(sb, files, "optional", 0)
        with pytest.raises(GpuUnavailable, match="MIG slice.*docker backend"):
            session.module("probe").hold(0)
        session.close()
        assert sb.gpus.busy == []  # the slice was given back
