"""Per-submission cost of each sandbox backend, side by side in one run, on the softmax workload.

Grades the same N softmax submissions (the reference and its mutants, round robin) with

* the ``docker`` backend: a container per submission from the grading image (started one
  submission ahead, as the harness prefetches), protocol over FIFOs;
* the ``process`` backend: a runner forked from the warm fork server;
* the floor: plain pytest, the student modules imported into the test process (no isolation);

and prints milliseconds per submission and each backend's overhead over the floor. Also the
bare start-to-hello time of one runner (no tests), the latency a lone submission sees.
Then the torch assignment (``training``: the reference and its mutants, each training a small
MLP), both backends side by side (no floor there: its tests need the harness's fixtures).
One worker, one process, one after the other, so the figures compare on a noisy machine.

    .venv/bin/python benchmarks/backend_overhead.py [N [N_TORCH]]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from grade_throughput import make_submissions, run_floor  # noqa: E402

from autograder.course import Course  # noqa: E402
from autograder.harness.grader import grade_uploads  # noqa: E402
from autograder.sandbox.base import Limits  # noqa: E402
from autograder.sandbox.docker import DockerSandbox, docker_status  # noqa: E402
from autograder.sandbox.process import ProcessSandbox  # noqa: E402


def start_to_hello(sandbox, files: Path, n: int = 5) -> float:
    """Median seconds from start() to the runner's hello, then close (no student code)."""
    times = []
    for _ in range(n):
        t = time.perf_counter()
        runner = sandbox.start(files, Limits(memory_mb=512, cpu_s=30))
        runner.channel.recv_bytes(wait=runner.waiter(time.monotonic() + 120))
        times.append(time.perf_counter() - t)
        runner.close()
    return statistics.median(times)


def timed_batch(assignment, uploads, sandbox) -> tuple[float, list]:
    grade_uploads(assignment, uploads[:1], sandbox=sandbox)  # warm: fork server, page cache
    t = time.perf_counter()
    results = grade_uploads(assignment, uploads, sandbox=sandbox)
    return time.perf_counter() - t, results


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    status = docker_status()
    assignment = Course(REPO).assignment("softmax")
    rows: list[tuple[str, float, float | None]] = []
    scores: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        uploads = make_submissions(assignment, n, Path(tmp))
        one = Path(tmp) / "one"
        one.mkdir()
        (one / "softmax.py").write_text(uploads[0].read_text())
        if status is None:
            with DockerSandbox() as sandbox:
                hello = start_to_hello(sandbox, one)
                secs, results = timed_batch(assignment, uploads, sandbox)
            rows.append(("docker  (container per submission)", secs, hello))
            scores["docker"] = [r.score for r in results]
        with ProcessSandbox() as sandbox:
            hello = start_to_hello(sandbox, one)
            secs, results = timed_batch(assignment, uploads, sandbox)
        rows.append(("process (forked from the warm fork server)", secs, hello))
        scores["process"] = [r.score for r in results]
        floor = run_floor(assignment, uploads)
    print(f"softmax: {n} submissions, {len(results[0].tests)} tests each, one worker")
    if status is not None:
        print(f"  docker: not measured ({status})")
    print(f"  {'':44s} {'ms/submission':>14s} {'over floor':>11s} {'start->hello':>13s}")
    for name, secs, hello in rows:
        print(f"  {name:44s} {secs / n * 1000:14.1f} {(secs - floor) / n * 1000:+11.1f} "
              f"{hello * 1000:10.1f} ms")
    print(f"  {'floor   (plain pytest, no isolation)':44s} {floor / n * 1000:14.1f} {0:+11.1f}")
    if len(scores) == 2:
        print(f"  same scores in both backends: {scores['docker'] == scores['process']}")
    n_torch = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    if n_torch > 0:
        torch_workload(n_torch, status)


def torch_workload(n: int, status: str | None) -> None:
    assignment = Course(REPO).assignment("training")
    sources = [assignment.reference_files()["train"], *assignment.mutant_files()]
    scores = {}
    print(f"training (torch): {n} submissions, one worker")
    with tempfile.TemporaryDirectory() as tmp:
        uploads = []
        for i in range(n):
            path = Path(tmp) / f"student{i:03d}.py"
            path.write_text(sources[i % len(sources)].read_text())
            uploads.append(path)
        backends = ([("docker ", DockerSandbox)] if status is None else []) + \
            [("process", ProcessSandbox)]
        for name, cls in backends:
            with cls() as sandbox:
                secs, results = timed_batch(assignment, uploads, sandbox)
            scores[name] = [r.score for r in results]
            print(f"  {name} {secs / n * 1000:10.1f} ms/submission")
    if len(scores) == 2:
        print(f"  same scores in both backends: {scores['docker '] == scores['process']}")


if __name__ == "__main__":
    main()
