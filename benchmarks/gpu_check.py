"""The GPU check of issue 16: the training assignment on CUDA through the process sandbox.

The one prepared script a machine with an NVIDIA GPU runs (as root, so the runner gets its
private root and the device is bound into it; a few minutes)::

    sudo .venv/bin/python benchmarks/gpu_check.py [MUTANT]

It prints, in order:

1. the host: the worker's GPUs (``AUTOGRADER_GPUS`` or ``nvidia-smi -L``), the nodes and driver
   libraries the process backend binds for the first one, the grader's torch;
2. what a runner sees, asked from inside the sandbox with ``resources.gpu = "optional"``: the
   device it was leased, ``/dev``'s NVIDIA nodes, ``CUDA_VISIBLE_DEVICES``, the driver's own
   ``cuInit`` result, ``torch.cuda.is_available()``, the device's name and a matmul on it;
3. the training assignment's reference and one mutant (default ``no_zero_grad``) graded
   through the same sandbox (``resources.gpu = "optional"`` in its assignment.toml): score,
   each test's outcome and time, the submission's wall time, CPU time and peak memory.

Exit status: 0 when CUDA ran inside the runner, the reference got full marks and the mutant lost
points; 1 when something of that failed (the output says what); 2 when this machine has no GPU
(the CUDA path did not run: the grading then ran on the CPU, and its figures say only that the
script works).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from autograder.authoring.mutants import mutant_modules, read_mutant  # noqa: E402
from autograder.course import Course  # noqa: E402
from autograder.harness.grader import grade_uploads, preload_for  # noqa: E402
from autograder.harness.remote import StudentSession  # noqa: E402
from autograder.sandbox.base import Limits, Sandbox  # noqa: E402
from autograder.sandbox.gpu import GpuAllocator, GpuHost, GpuUnavailable, passthrough  # noqa: E402
from autograder.sandbox.process import ProcessSandbox  # noqa: E402

ASSIGNMENT = "training"
DEFAULT_MUTANT = "no_zero_grad"

PROBE = '''
import ctypes
import os


def cuda_facts():
    """What this runner can do with a GPU, from the driver up to torch."""
    facts = {"dev": sorted(n for n in os.listdir("/dev") if n.startswith("nvidia")),
             "env": {k: v for k, v in os.environ.items() if "CUDA" in k or "NVIDIA" in k},
             "sys": os.path.isdir("/sys/devices")}
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
        facts["cuInit"] = cuda.cuInit(0)  # 0: the driver started; 304: an OS call failed
        count = ctypes.c_int(-1)
        facts["cuDeviceGetCount"] = (cuda.cuDeviceGetCount(ctypes.byref(count)), count.value)
    except OSError as e:
        facts["libcuda"] = str(e)
    import torch
    facts["torch"] = torch.__version__
    facts["torch_cuda"] = torch.version.cuda
    facts["available"] = torch.cuda.is_available()
    if not facts["available"]:
        try:
            torch.cuda.init()
        except Exception as e:  # why torch cannot use it, in its own words
            facts["torch_error"] = f"{type(e).__name__}: {e}"
        return facts
    facts["device_count"] = torch.cuda.device_count()
    facts["name"] = torch.cuda.get_device_name(0)
    facts["capability"] = list(torch.cuda.get_device_capability(0))
    x = torch.randn(2048, 2048, device="cuda")
    torch.cuda.synchronize()
    facts["matmul_finite"] = bool(torch.isfinite(x @ x).all().item())
    facts["memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return facts
'''


def host_facts() -> list[str]:
    """The grader's side: GPUs, what the process backend would bind, its torch."""
    import torch

    lines = [f"grader torch {torch.__version__} (CUDA {torch.version.cuda}), "
             f"running as uid {os.geteuid()}"]
    gpus = GpuAllocator().devices
    lines.append(f"worker GPUs: {gpus or 'none'}")
    if gpus:
        try:
            gpu = passthrough(gpus[0], GpuHost())
            lines.append("binds for " + gpus[0] + ": " +
                         ", ".join(t for _, t in gpu.device_binds))
            lines.append("driver libraries: " + ", ".join(t for _, t in gpu.library_binds))
        except GpuUnavailable as e:
            lines.append(f"the process backend refuses this GPU: {e}")
    return lines


def runner_facts(sandbox: Sandbox, tmp: Path) -> tuple[dict, str | None, list[str]]:
    """Ask a runner of ``sandbox`` what it sees (``resources.gpu = "optional"``)."""
    files = tmp / "probe"
    files.mkdir()
    (files / "gpu_probe.py").write_text(PROBE)
    limits = Limits(memory_mb=4096, cpu_s=300, gpu="optional")
    session = StudentSession(sandbox, files, limits, ("gpu_probe",))
    session.deadline = time.monotonic() + 300
    try:
        facts = session.module("gpu_probe").cuda_facts()
        device = getattr(session.runner, "gpu", None)
        return facts, device, session.degraded
    finally:
        session.close()


def submissions(course: Course, mutant_name: str, tmp: Path) -> list[Path]:
    """The reference and one mutant (spliced into the reference, as ``verify`` does), each
    as an upload folder."""
    assignment = course.assignment(ASSIGNMENT)
    references = {m: p.read_text() for m, p in assignment.reference_files().items()}
    path = next(p for p in assignment.mutant_files() if p.stem == mutant_name)
    mutant = mutant_modules(read_mutant(path, assignment.config.modules), references)
    uploads = []
    for name, modules in (("reference", references), (f"mutant-{mutant_name}", mutant)):
        folder = tmp / name
        folder.mkdir()
        for module, source in modules.items():
            (folder / f"{module}.py").write_text(source)
        uploads.append(folder)
    return uploads


def main(argv: list[str]) -> int:
    mutant_name = argv[0] if argv else DEFAULT_MUTANT
    course = Course(REPO)
    assignment = course.assignment(ASSIGNMENT)
    print(f"== {ASSIGNMENT}: resources.gpu = {assignment.config.resources.gpu!r}")
    for line in host_facts():
        print("host:", line)
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp_name:
        tmp = Path(tmp_name)
        began = time.monotonic()
        with ProcessSandbox(preload=preload_for(assignment)) as sandbox:
            facts, device, degraded = runner_facts(sandbox, tmp)
            print(f"runner: leased GPU {device!r}, first answer after "
                  f"{time.monotonic() - began:.1f} s (fork server start included)")
            for key, value in facts.items():
                print(f"runner: {key} = {value}")
            for d in degraded:
                print(f"runner: degraded: {d}")
            if device is None:
                problems.append("no GPU was handed to the runner")
            elif not facts.get("available"):
                problems.append("the runner held a GPU but torch.cuda.is_available() is False")

            uploads = submissions(course, mutant_name, tmp)
            for upload in uploads:
                t0 = time.monotonic()
                [result] = grade_uploads(assignment, [upload], sandbox=sandbox)
                wall = time.monotonic() - t0
                r = result.resources
                print(f"\n== {upload.name}: {result.score:g} / {result.max_score:g} in "
                      f"{wall:.1f} s (runner CPU {r.cpu_s:.1f} s, peak {r.max_rss_mb:.0f} MB, "
                      f"{r.runner_starts} runner start(s)), on "
                      f"{'cuda' if facts.get('available') else 'cpu'}")
                for t in result.tests:
                    first = t.output.strip().splitlines()[0][:100] if t.output.strip() else ""
                    print(f"  {t.outcome:<14} {t.score:>5g}/{t.max_score:<4g} "
                          f"{t.duration_s:6.2f} s  {t.name}" + (f"  [{first}]" if first and
                                                                t.outcome != "passed" else ""))
                if upload.name == "reference" and result.score < result.max_score:
                    problems.append(f"the reference lost points ({result.score:g} / "
                                    f"{result.max_score:g})")
                if upload.name != "reference" and result.score >= result.max_score:
                    problems.append(f"the mutant {mutant_name} kept full marks")
    print()
    if device is None and not GpuAllocator().devices:
        print("RESULT: no GPU on this machine: the CUDA path did NOT run (graded on the CPU).")
        return 2
    if problems:
        print("RESULT: FAILED: " + "; ".join(problems))
        return 1
    print("RESULT: CUDA ran inside the process sandbox; reference full marks, mutant caught.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
