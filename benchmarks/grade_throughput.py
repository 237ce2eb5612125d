"""Seconds per submission: our isolated grader against a bare in-process pytest run.

Generates N softmax submissions (the reference and its mutants, round robin: a mix of correct
and buggy work), then grades them

* with our grader: intake, the process sandbox (a runner per submission, forked from the warm
  fork server, with namespaces, a private root, rlimits and its own uid), the protocol, and
  the trusted harness with public and hidden tests;
* with the floor: the same test files in one plain pytest session, the student modules imported
  into the test process itself (no isolation, no protocol), reporting outcomes the same lean
  way our plugin does (plain pytest's failure rendering costs ~3 ms per failing test, which
  would flatter us).

Both run in this one process, one after the other, so the ratio is meaningful on a noisy
machine. The fork server's start (importing torch once) is reported apart from the per-
submission figure, since it is paid once per batch.

    .venv/bin/python benchmarks/grade_throughput.py [N]
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from autograder.course import Course  # noqa: E402
from autograder.harness.grader import grade_uploads  # noqa: E402
from autograder.sandbox.process import ProcessSandbox  # noqa: E402


def make_submissions(assignment, n: int, dest: Path) -> list[Path]:
    sources = [assignment.reference_files()["softmax"]] + assignment.mutant_files()
    paths = []
    for i in range(n):
        path = dest / f"student{i:04d}.py"
        path.write_text(sources[i % len(sources)].read_text())
        paths.append(path)
    return paths


class FloorPlugin:
    """Plain pytest: the student's module imported in-process; no isolation at all."""

    def __init__(self, modules: list[Path], reference: Path):
        self.modules = modules
        self.reference_path = reference

    def pytest_configure(self, config):
        for marker in ("points(p)", "visibility(v)", "time_limit(s)"):
            config.addinivalue_line("markers", marker)

    def pytest_generate_tests(self, metafunc):
        if "student" in metafunc.fixturenames:
            metafunc.parametrize("student", self.modules, indirect=True, scope="session",
                                 ids=[p.stem for p in self.modules])

    @staticmethod
    def _load(path: Path, name: str):
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    @pytest.fixture(scope="session")
    def student(self, request):
        return self._load(request.param, f"floor_{request.param.stem}")

    @pytest.fixture(scope="session")
    def reference(self):
        return self._load(self.reference_path, "floor_reference")

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_makereport(self, item, call):
        # The same lean report as our grader builds, so the ratio measures isolation only.
        outcome = "passed" if call.excinfo is None else "failed"
        return pytest.TestReport(item.nodeid, item.location, {}, outcome,
                                 None if call.excinfo is None else str(call.excinfo.value),
                                 call.when, duration=call.duration)

    @pytest.fixture
    def rng(self, request):
        seed = int.from_bytes(hashlib.sha256(request.node.name.encode()).digest()[:8], "little")
        return np.random.default_rng(seed)


def run_floor(assignment, uploads: list[Path]) -> float:
    import torch
    torch.set_num_threads(1)  # as our grader does
    tests = assignment.public_test_files() + assignment.hidden_test_files()
    plugin = FloorPlugin(uploads, assignment.reference_files()["softmax"])
    with tempfile.TemporaryDirectory() as tmp:
        ini = Path(tmp) / "pytest.ini"
        ini.write_text("[pytest]\n")
        start = time.perf_counter()
        pytest.main([*map(str, tests), "-c", str(ini), "-p", "no:cacheprovider",
                     "-p", "no:terminal", "-p", "no:logging", "-p", "no:warnings",
                     "-p", "no:unraisableexception", "-p", "no:threadexception",
                     "--import-mode=importlib",
                     "--rootdir", str(assignment.course_root)], plugins=[plugin])
        return time.perf_counter() - start


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    assignment = Course(REPO).assignment("softmax")
    with tempfile.TemporaryDirectory() as tmp:
        uploads = make_submissions(assignment, n, Path(tmp))
        with ProcessSandbox() as sandbox:
            start = time.perf_counter()
            grade_uploads(assignment, uploads[:1], sandbox=sandbox)  # starts the fork server
            warmup = time.perf_counter() - start
            start = time.perf_counter()
            results = grade_uploads(assignment, uploads, sandbox=sandbox)
            ours = time.perf_counter() - start
        jobs = max(2, (os.cpu_count() or 1) // 2)  # a worker keeps about two CPUs busy
        start = time.perf_counter()
        grade_uploads(assignment, uploads, jobs=jobs)
        pooled = time.perf_counter() - start
        floor = run_floor(assignment, uploads)
    tests = len(results[0].tests)
    full = sum(r.score == r.max_score for r in results)
    print(f"softmax: {n} submissions ({full} correct, {n - full} buggy), {tests} tests each")
    print(f"  fork server start (once per batch): {warmup:.2f} s")
    print(f"  ours  (process sandbox, protocol, trusted harness): {ours / n * 1000:7.1f} ms "
          f"per submission")
    print(f"  ours with {jobs} workers on {os.cpu_count()} CPUs (each starts its own fork "
          f"server): {pooled / n * 1000:7.1f} ms per submission")
    print(f"  floor (plain pytest in one process, no isolation):  {floor / n * 1000:7.1f} ms "
          f"per submission")
    print(f"  isolation costs {ours / floor:.2f}x the floor "
          f"(+{(ours - floor) / n * 1000:.1f} ms per submission)")


if __name__ == "__main__":
    main()
