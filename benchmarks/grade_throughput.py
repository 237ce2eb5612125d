"""Seconds per submission: our isolated grader against a bare in-process pytest run.

Generates N submissions of one assignment (its reference and its mutants, round robin: a mix of
correct and buggy work), then grades them

* with our grader: intake, the sandbox of the chosen backend (``process``: a runner per
  submission, forked from the warm fork server, with namespaces, a private root, rlimits and
  its own uid; ``docker``: a container per submission), the protocol, and the trusted harness
  with public and hidden tests;
* with the floor: the same test files in one plain pytest session, the student modules imported
  into the test process itself (no isolation, no protocol), reporting outcomes the same lean
  way our plugin does (plain pytest's failure rendering costs ~3 ms per failing test, which
  would flatter us).

Both run in this one process, one after the other, so the ratio is meaningful on a noisy
machine; the load average is printed with the figures. The sandbox's start (the fork server
importing torch once, or the first container) is reported apart from the per-submission figure,
since it is paid once per batch.

    .venv/bin/python benchmarks/grade_throughput.py [ASSIGNMENT] [N] [--backend process|docker]
                                                    [--jobs J]

ASSIGNMENT defaults to softmax and N to one submission per source (reference and mutants).
``--jobs J`` also grades the batch with J workers (each starts its own sandbox).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

# One thread per math library, as every runner gets (policy.clean_environment): the floor runs
# the student's code in this process, and OpenBLAS's default of a thread per core makes its
# matrix products (conv's speed tests) slower, not faster, on a busy two-core machine. Set
# before numpy is imported, which is when OpenBLAS reads it.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from autograder.authoring.mutants import mutant_modules, read_mutant  # noqa: E402
from autograder.course import Course  # noqa: E402
from autograder.harness.grader import grade_uploads, preload_for  # noqa: E402
from autograder.harness.session import start_sandbox  # noqa: E402


def sources_of(assignment) -> list[str]:
    """The reference module's source, then every mutant spliced into it, as ``verify`` grades
    them (a mutant file holds only the functions it changes). Single-module assignments."""
    module = assignment.config.modules[0]
    references = {m: p.read_text() for m, p in assignment.reference_files().items()}
    sources = [references[module]]
    for path in assignment.mutant_files():
        mutant = read_mutant(path, tuple(assignment.config.modules))
        sources.append(mutant_modules(mutant, references)[module])
    return sources


def make_submissions(assignment, n: int, dest: Path) -> list[Path]:
    sources = sources_of(assignment)
    paths = []
    for i in range(n):
        path = dest / f"student{i:04d}.py"
        path.write_text(sources[i % len(sources)])
        paths.append(path)
    return paths


class FloorSubmission:
    """The ``submission`` fixture of the floor: the student's module, and the assignment's
    support modules (conv's ``conv_speed``) importing it, all in this process."""

    def __init__(self, student, main: str, support: dict[str, Path]):
        # An id per submission, as the grader's: tests cache per submission id (training's
        # full run); without one, those tests failed at once here and flattered the floor.
        self.id = student.__name__
        self.student = student
        self.main = main
        self.support = support
        self.loaded: dict[str, object] = {}

    def module(self, name: str):
        if name == self.main:
            return self.student
        if name not in self.loaded:
            saved = sys.modules.get(self.main)
            sys.modules[self.main] = self.student  # what the support module imports
            try:
                self.loaded[name] = FloorPlugin._load(self.support[name],
                                                      f"{self.student.__name__}_{name}")
            finally:
                if saved is None:
                    del sys.modules[self.main]
                else:
                    sys.modules[self.main] = saved
        return self.loaded[name]


class FloorPlugin:
    """Plain pytest: the student's module imported in-process; no isolation at all."""

    def __init__(self, modules: list[Path], reference: Path, main: str = "",
                 support: dict[str, Path] | None = None):
        self.modules = modules
        self.reference_path = reference
        self.main = main
        self.support = support or {}

    def pytest_configure(self, config):
        for marker in ("points(p)", "visibility(v)", "time_limit(s)"):
            config.addinivalue_line("markers", marker)

    def pytest_generate_tests(self, metafunc):
        if "student" in metafunc.fixturenames or "submission" in metafunc.fixturenames:
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
    def submission(self, student):
        # The same tests as ours run: without it, tests that use `submission` (conv's speed
        # tests) would end at setup here and flatter the floor.
        return FloorSubmission(student, self.main, self.support)

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
        # As the grader's own fixture: seeded from the file and the test's name.
        name = request.node.name.split("[")[0]
        params = request.node.name[len(name):]
        # The floor's ids carry the student's module; the grader's rng ignores the submission.
        params = "[" + "-".join(p for p in params.strip("[]").split("-")
                               if not p.startswith("student")) + "]" if params else ""
        params = "" if params == "[]" else params
        key = f"{request.node.path.name}::{name}{params}"
        seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
        return np.random.default_rng(seed)


def run_floor(assignment, uploads: list[Path]) -> float:
    import torch
    torch.set_num_threads(1)  # as our grader does
    tests = assignment.public_test_files() + assignment.hidden_test_files()
    module = assignment.config.modules[0]
    plugin = FloorPlugin(uploads, assignment.reference_files()[module], module,
                         {p.stem: p for p in assignment.support_files()})
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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("assignment", nargs="?", default="softmax")
    parser.add_argument("n", nargs="?", type=int, default=0,
                        help="submissions (default: one per source, reference and mutants)")
    parser.add_argument("--backend", choices=("process", "docker"), default="process")
    parser.add_argument("--jobs", type=int, default=0,
                        help="also grade the batch with this many workers")
    options = parser.parse_args()
    assignment = Course(REPO).assignment(options.assignment)
    n = options.n or len(sources_of(assignment))
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        uploads = make_submissions(assignment, n, Path(tmp))
        sandbox = start_sandbox(options.backend, preload_for(assignment))
        try:
            start = time.perf_counter()
            grade_uploads(assignment, uploads[:1], sandbox=sandbox)  # starts the fork server
            warmup = time.perf_counter() - start
            start = time.perf_counter()
            results = grade_uploads(assignment, uploads, sandbox=sandbox)
            ours = time.perf_counter() - start
        finally:
            sandbox.close()
        pooled = None
        if options.jobs > 1:
            start = time.perf_counter()
            grade_uploads(assignment, uploads, jobs=options.jobs, backend=options.backend)
            pooled = time.perf_counter() - start
        floor = run_floor(assignment, uploads)
    load_after = os.getloadavg()
    tests = len(results[0].tests)
    full = sum(r.score >= r.max_score for r in results)  # extra credit may exceed it
    name = options.assignment
    print(f"{name} on {options.backend}: {n} submissions ({full} correct, {n - full} buggy), "
          f"{tests} tests each; load average {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after ({os.cpu_count()} CPUs)")
    print(f"  sandbox start (once per batch): {warmup:.2f} s")
    print(f"  ours  ({options.backend} sandbox, protocol, trusted harness): "
          f"{ours / n * 1000:7.1f} ms per submission")
    if pooled is not None:
        print(f"  ours with {options.jobs} workers (each starts its own sandbox): "
              f"{pooled / n * 1000:7.1f} ms per submission")
    print(f"  floor (plain pytest in one process, no isolation):  {floor / n * 1000:7.1f} ms "
          f"per submission")
    print(f"  isolation costs {ours / floor:.2f}x the floor "
          f"(+{(ours - floor) / n * 1000:.1f} ms per submission)")
    print(f"RESULT {name} {options.backend} ours_ms={ours / n * 1000:.1f} "
          f"floor_ms={floor / n * 1000:.1f} ratio={ours / floor:.2f} "
          f"load={load_before[0]:.2f}/{load_after[0]:.2f}")


if __name__ == "__main__":
    main()
