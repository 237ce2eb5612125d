"""What a student or a TA waits for, cold, with the machine's load beside every figure.

Every figure is a fresh ``autograder`` process (as a person runs it), except the marginal cost
per submission, which is measured in this process after a warm-up (as ``grade_throughput.py``
does), beside the in-process floor. Printed:

* ``autograder check`` in a copy of ``release/softmax`` (numpy only) and ``release/training``
  (torch): with the stub as released (what a student sees first) and with the reference
  solution in place (a finished student: the tests do their real work);
* ``autograder grade softmax ONE_SUBMISSION``: seconds until its ``results.json`` exists, and
  until the command exits;
* 20 and 100 softmax submissions through ``autograder grade``, side by side with nbgrader's
  ``autograde`` of an equivalent notebook course (the same submissions as the notebook's
  solution cell, the same test functions called from graded test cells). nbgrader runs from
  its own virtualenv under ``--cache`` (installed there from PyPI on first use; its kernel
  also sees this project's numpy, torch and pytest), never in this process;
* the marginal cost per submission of every assignment on each backend (``process``, and
  ``docker`` when its engine and image are there) against the floor: the same tests in one
  plain pytest session with the student module imported in-process (no isolation);
* ``autograder verify NAME`` for every assignment.

    .venv/bin/python benchmarks/cold_start.py [--quick] [--only SECTION ...] [--cache DIR]

``--quick``: softmax and training checks, one grade, 20 submissions (nbgrader too), the
marginal cost of softmax on the process backend, ``verify softmax``. Sections: check, one,
batch, marginal, verify.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import inspect
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# One BLAS thread in this process, before numpy loads: the floor runs student code here, and the
# sandbox's runners run with one thread too (a second thread only fights the load for the CPU).
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_OUTER_ENV = dict(os.environ)
os.environ.update({name: "1" for name in _THREAD_VARS})

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
AUTOGRADER = [sys.executable, "-m", "autograder.cli"]
ASSIGNMENTS = ("softmax", "conv", "batchnorm", "lstm", "training")


def load() -> str:
    """The 1-minute load average, to print beside a figure measured now."""
    return f"load {os.getloadavg()[0]:.1f}"


def say(line: str) -> None:
    print(line, flush=True)


# --- submissions --------------------------------------------------------------------------
def submission_sources(assignment) -> list[dict[str, str]]:
    """The reference and every readable mutant (spliced into the reference), as module sources:
    a mix of correct and buggy work, round robin."""
    from autograder.authoring.mutants import MutantError, mutant_modules, read_mutant

    references = {m: p.read_text() for m, p in assignment.reference_files().items()}
    sources = [references]
    for path in assignment.mutant_files():
        try:
            sources.append(mutant_modules(read_mutant(path, assignment.config.modules),
                                          references))
        except MutantError:
            continue
    return sources


def make_uploads(assignment, n: int, dest: Path, *, correct_only: bool = False) -> list[Path]:
    """``n`` uploads: a ``.py`` file for a one-module assignment, else a folder. Mutants and
    the reference, round robin; only the reference with ``correct_only``."""
    sources = submission_sources(assignment)[:1 if correct_only else None]
    uploads = []
    for i in range(n):
        modules = sources[i % len(sources)]
        if len(modules) == 1:
            (name, text), = modules.items()
            path = dest / f"student{i:04d}.py"
            path.write_text(text)
        else:
            path = dest / f"student{i:04d}"
            path.mkdir()
            for name, text in modules.items():
                (path / f"{name}.py").write_text(text)
        uploads.append(path)
    return uploads


class Timed:
    """A finished command: wall seconds to exit, to ``watch`` existing, CPU seconds, output."""

    def __init__(self, wall: float, seen: float | None, cpu: float, output: str):
        self.wall, self.seen, self.cpu, self.output = wall, seen, cpu, output


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], cwd: Path, watch: Path | None = None) -> Timed:
    """Run ``cmd``: wall seconds to exit and until ``watch`` existed (polled every 5 ms), and the
    CPU seconds of its whole process tree (every process it started was waited for: the fork
    server reaps its runners), the figure a loaded machine distorts least."""
    env = {**_OUTER_ENV, "COLUMNS": "120"}  # a command runs as a person runs it
    cpu_before = _children_cpu()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    seen = None
    if watch is not None:
        while proc.poll() is None and seen is None:
            if watch.exists():
                seen = time.perf_counter() - start
            else:
                time.sleep(0.005)
    out, _ = proc.communicate()
    total = time.perf_counter() - start
    if seen is None and watch is not None and watch.exists():
        seen = total
    return Timed(total, seen, _children_cpu() - cpu_before, out.decode(errors="replace"))


#: Issue 17's targets, printed beside each figure: check wall seconds per assignment, one
#: submission's seconds to results.json, and how many times faster than nbgrader per batch size.
CHECK_TARGET_S = {"softmax": 1.5, "training": 3.0}
ONE_TARGET_S = 2.0
BATCH_TARGET_X = {20: 20.0, 100: 30.0}


def verdict(value: float, target: float, *, at_most: bool = True) -> str:
    """``[target <= 3 s: met]``-style note for a figure."""
    met = value <= target if at_most else value >= target
    sign, unit = ("<=", " s") if at_most else (">=", "x")
    return f"[target {sign} {target:g}{unit}: {'met' if met else 'NOT met'}]"


# --- sections -----------------------------------------------------------------------------
def bench_check(names: list[str], repeats: int) -> None:
    from autograder.course import Course

    course = Course(REPO)
    say("\n== autograder check, cold (a fresh process each time; median of "
        f"{repeats}) ==")
    for name in names:
        assignment = course.assignment(name)
        for state in ("stub", "reference"):
            with tempfile.TemporaryDirectory() as tmp:
                mine = Path(tmp) / name
                shutil.copytree(assignment.release_dir, mine)
                if state == "reference":
                    for module, path in assignment.reference_files().items():
                        shutil.copy(path, mine / f"{module}.py")
                runs, loads = [], []
                for _ in range(repeats):
                    loads.append(os.getloadavg()[0])
                    runs.append(timed(AUTOGRADER + ["check"], mine))
            last = runs[-1].output.strip()
            summary = next((line for line in reversed(last.splitlines())
                            if "public tests pass" in line), last[-70:])
            wall = statistics.median(r.wall for r in runs)
            target = verdict(wall, CHECK_TARGET_S[name]) if name in CHECK_TARGET_S else ""
            say(f"  check {name:9s} {state:9s} wall {wall:6.2f}"
                f" s, cpu {statistics.median(r.cpu for r in runs):6.2f} s  (walls "
                f"{', '.join(f'{r.wall:.2f}' for r in runs)}; load "
                f"{', '.join(f'{x:.1f}' for x in loads)}) {target} | {summary[:60]}")


def bench_one(repeats: int) -> None:
    from autograder.course import Course

    assignment = Course(REPO).assignment("softmax")
    say(f"\n== autograder grade softmax ONE_SUBMISSION, cold (median of {repeats}) ==")
    results, exits, cpus = [], [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            upload, = make_uploads(assignment, 1, Path(tmp))
            out = Path(tmp) / "out"
            before = load()
            run = timed(AUTOGRADER + ["grade", "softmax", str(upload), "--output", str(out),
                                      "--course", str(REPO)],
                        Path(tmp), watch=out / upload.stem / "results.json")
            if run.seen is None:
                say(f"  no results.json was written:\n{run.output[-2000:]}")
                return
            results.append(run.seen)
            exits.append(run.wall)
            cpus.append(run.cpu)
            say(f"  results.json after {run.seen:5.2f} s, exit after {run.wall:5.2f} s, cpu "
                f"{run.cpu:5.2f} s ({before})")
    say(f"  median: results {statistics.median(results):.2f} s, exit "
        f"{statistics.median(exits):.2f} s, cpu {statistics.median(cpus):.2f} s "
        f"{verdict(statistics.median(results), ONE_TARGET_S)}")


def bench_batch(sizes: list[int], cache: Path) -> None:
    from autograder.course import Course

    assignment = Course(REPO).assignment("softmax")
    say("\n== softmax batches: autograder grade vs nbgrader autograde (same submissions, "
        "same test functions) ==")
    nbgrader = ensure_nbgrader(cache)
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            tmp_path = Path(tmp)
            uploads_dir = tmp_path / "uploads"
            uploads_dir.mkdir()
            uploads = make_uploads(assignment, n, uploads_dir)
            before = load()
            run = timed(AUTOGRADER + ["grade", "softmax", *map(str, uploads), "--output",
                                      str(tmp_path / "out"), "--course", str(REPO)], tmp_path)
            ours = run.wall
            graded = len(list((tmp_path / "out").glob("*/results.json")))
            if graded != n:
                say(f"  ours graded {graded} of {n}:\n{run.output[-2000:]}")
            theirs_line = "nbgrader: not available"
            ratio = ""
            if nbgrader is not None:
                course = build_nbgrader_course(assignment, uploads, tmp_path / "nbcourse")
                mid = load()
                theirs, theirs_cpu, scored = run_nbgrader(nbgrader, course, n)
                theirs_line = (f"nbgrader autograde {theirs:7.2f} s, cpu {theirs_cpu:7.2f} s "
                               f"({mid}; {scored} of {n} notebooks graded)")
                ratio = (f"  -> ours is {theirs / ours:.1f}x faster (cpu: "
                         f"{theirs_cpu / run.cpu:.1f}x)")
                if n in BATCH_TARGET_X:
                    ratio += " " + verdict(theirs / ours, BATCH_TARGET_X[n], at_most=False)
            say(f"  {n:3d} submissions: ours {ours:6.2f} s, cpu {run.cpu:6.2f} s ({before}) | "
                f"{theirs_line}{ratio}")


#: Submissions per assignment for the marginal cost (training trains a model per test).
MARGINAL_N = {"softmax": 10, "batchnorm": 6, "conv": 4, "lstm": 4, "training": 3}


def bench_marginal(names: list[str], backends: list[str], scale: float = 1.0) -> None:
    """Per-submission cost after a warm-up, per backend, beside the in-process floor."""
    from autograder.course import Course
    from autograder.harness.grader import grade_uploads, make_sandbox

    course = Course(REPO)
    say("\n== marginal cost per submission (N copies of the reference after a warm-up of one; "
        "the floor: plain pytest, student code in-process) ==")
    usable = []
    for backend in backends:
        if backend == "docker":
            from autograder.sandbox.docker import docker_status
            why = docker_status()
            if why:
                say(f"  docker: skipped ({why})")
                continue
        usable.append(backend)
    for name in names:
        assignment = course.assignment(name)
        n = max(2, round(MARGINAL_N[name] * scale))
        with tempfile.TemporaryDirectory() as tmp:
            # The reference only: the floor has no time limits, so a mutant that the grader
            # stops at its limit would run on there, and the two would not do the same work.
            uploads = make_uploads(assignment, n, Path(tmp), correct_only=True)
            run_floor(assignment, uploads[:1])  # warm: the tests' imports (torch), page cache
            floor_s = run_floor(assignment, uploads) / n
            row = [f"  {name:9s} N={n:2d} floor {floor_s * 1000:7.1f} ms ({load()})"]
            for backend in usable:
                with make_sandbox(backend) as sandbox:
                    grade_uploads(assignment, uploads[:1], sandbox=sandbox)
                    t = time.perf_counter()
                    grade_uploads(assignment, uploads, sandbox=sandbox)
                    per = (time.perf_counter() - t) / n
                row.append(f"{backend} {per * 1000:7.1f} ms = {per / floor_s:4.2f}x floor "
                           f"({load()})")
            say(" | ".join(row))


def bench_verify(names: list[str]) -> None:
    say("\n== autograder verify NAME, cold ==")
    for name in names:
        before = load()
        run = timed(AUTOGRADER + ["verify", name, "--course", str(REPO)], REPO)
        verdict = run.output.strip().splitlines()[-1] if run.output.strip() else "(no output)"
        say(f"  verify {name:9s} wall {run.wall:7.2f} s, cpu {run.cpu:7.2f} s ({before})  | "
            f"{verdict[:50]}")


# --- the floor: plain pytest, the student's modules imported in this process ---------------
class _LocalFunction:
    """What a test calls on ``student``, in-process: the calling conventions of the harness's
    proxies (``call_returning_args``, ``call_keeping_result``, ``get``) with no boundary."""

    def __init__(self, value):
        self._value = value

    def __call__(self, *args, **kwargs):
        return self._value(*args, **kwargs)

    def call_returning_args(self, *args, **kwargs):
        return self._value(*args, **kwargs), args, kwargs

    def call_keeping_result(self, *args, **kwargs):
        return self._value(*args, **kwargs)

    def get(self):
        return self._value


class _LocalModule:
    def __init__(self, module):
        self._module = module

    def __getattr__(self, name):
        return _LocalFunction(getattr(self._module, name))


class _LocalSubmission:
    def __init__(self, modules: dict, sub_id: str):
        # Its own id per upload, as the grader's: tests cache per submission id (training's
        # full run), and one id for all would let the floor train once for the whole batch.
        self.id = sub_id
        self._modules = modules

    def module(self, name):
        if name not in self._modules:  # a support file, importable from the upload's folder
            import importlib
            self._modules[name] = importlib.import_module(name)
        return _LocalModule(self._modules[name])


class FloorPlugin:
    """Every test over every upload, the upload's modules imported in this process."""

    import pytest as _pytest

    def __init__(self, assignment, uploads: list[Path]):
        self.assignment = assignment
        self.uploads = uploads
        self.modules = assignment.config.modules
        self.outcomes: dict[str, int] = {}
        self.errors: list[str] = []  # setup failures: the floor itself is broken

    @staticmethod
    def _load(path: Path, name: str):
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module

    @_pytest.fixture(scope="session", autouse=True)
    def _floor_upload(self, request):
        upload = request.param
        # Support files and sibling modules import by name, as in a runner's folder.
        folder = upload if upload.is_dir() else upload.parent
        sys.path.insert(0, str(folder))
        for support in self.assignment.support_files():
            shutil.copy(support, folder / support.name)
        files = ({m: upload / f"{m}.py" for m in self.modules} if upload.is_dir()
                 else {self.modules[0]: upload})
        loaded = {m: self._load(p, m) for m, p in files.items()}
        yield _LocalSubmission(loaded, f"floor-{upload}")
        sys.path.remove(str(folder))
        for m in loaded:
            sys.modules.pop(m, None)

    @_pytest.fixture
    def student(self, _floor_upload):
        return _floor_upload.module(self.modules[0])

    @_pytest.fixture
    def submission(self, _floor_upload):
        return _floor_upload

    @_pytest.fixture(scope="session")
    def reference(self):
        path = self.assignment.reference_files()[self.modules[0]]
        return self._load(path, f"_floor_reference_{self.assignment.name}")

    @_pytest.fixture
    def rng(self, request):
        import numpy as np
        name = request.node.name.split("[")[0]
        key = f"{request.node.path.name}::{name}"
        seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
        return np.random.default_rng(seed)

    def pytest_configure(self, config):
        for marker in ("points(p)", "visibility(v)", "time_limit(s)"):
            config.addinivalue_line("markers", marker)

    def pytest_generate_tests(self, metafunc):
        if "_floor_upload" in metafunc.fixturenames:
            metafunc.parametrize("_floor_upload", self.uploads, indirect=True,
                                 scope="session", ids=[p.stem for p in self.uploads])

    def pytest_runtest_makereport(self, item, call):
        import pytest
        # The same lean report as the harness builds, so the ratio measures isolation only.
        outcome = "passed" if call.excinfo is None else "failed"
        if call.when == "call" or outcome == "failed":
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
            if outcome == "failed" and call.when != "call":
                self.errors.append(f"{item.nodeid} ({call.when}): {call.excinfo.value}")
        return pytest.TestReport(item.nodeid, item.location, {}, outcome,
                                 None if call.excinfo is None else str(call.excinfo.value),
                                 call.when, duration=call.duration)


def run_floor(assignment, uploads: list[Path]) -> float:
    """Seconds for the floor to run every test of ``assignment`` over ``uploads``."""
    import pytest

    import torch
    torch.set_num_threads(1)  # as the grader and the fork server do
    tests = assignment.public_test_files() + assignment.hidden_test_files()
    plugin = FloorPlugin(assignment, uploads)
    before = set(sys.modules)
    with tempfile.TemporaryDirectory() as tmp:
        ini = Path(tmp) / "pytest.ini"
        ini.write_text("[pytest]\n")
        start = time.perf_counter()
        pytest.main([*map(str, tests), "-c", str(ini), "-p", "no:cacheprovider",
                     "-p", "no:terminal", "-p", "no:logging", "-p", "no:warnings",
                     "-p", "no:unraisableexception", "-p", "no:threadexception",
                     "--import-mode=importlib", "--assert=plain",
                     "--rootdir", str(assignment.course_root)], plugins=[plugin])
        seconds = time.perf_counter() - start
    if plugin.errors or not plugin.outcomes.get("passed"):
        raise RuntimeError(f"the floor of {assignment.name} did not run its tests: "
                           f"{plugin.outcomes}; {plugin.errors[:3]}")
    for name in set(sys.modules) - before:  # the next assignment imports its own tests
        file = getattr(sys.modules[name], "__file__", None) or ""
        if (file.startswith(str(REPO)) and "/autograder/" not in file
                and "site-packages" not in file):
            del sys.modules[name]
    return seconds


# --- nbgrader, in its own virtualenv -------------------------------------------------------
def ensure_nbgrader(cache: Path) -> Path | None:
    """The ``nbgrader`` executable of a virtualenv under ``cache`` (created on first use from
    PyPI). Its kernel also sees this project's site-packages (numpy, torch, pytest), after its
    own, through a .pth file: the tests need them and a second torch is not installed."""
    venv = cache / "nbgrader-venv"
    exe = venv / "bin" / "nbgrader"
    if not exe.exists():
        say(f"  installing nbgrader into {venv} (once)")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        r = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "nbgrader"],
                           capture_output=True, text=True)
        if r.returncode != 0 or not exe.exists():
            say(f"  nbgrader could not be installed: {r.stderr[-500:]}")
            return None
    site = next((venv / "lib").glob("python3*/site-packages"))
    ours = next(Path(p) for p in sys.path if p.endswith("site-packages") and Path(p).is_dir())
    (site / "zz_autograder_bench.pth").write_text(str(ours) + "\n")
    return exe


def _test_calls(test_file: Path, reference: Path) -> list[tuple[str, float, str]]:
    """(cell id, points, the code calling the test) for every test in ``test_file``, one per
    parametrization, calling it with the fixtures it asks for."""
    spec = importlib.util.spec_from_file_location(f"_nb_{test_file.stem}", test_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    calls = []
    for name, fn in vars(module).items():
        if not (name.startswith("test_") and callable(fn)):
            continue
        marks = getattr(fn, "pytestmark", [])
        points = next((m.args[0] for m in marks if m.name == "points"), 1)
        params = [{}]
        for m in marks:
            if m.name == "parametrize":
                argnames = [a.strip() for a in m.args[0].split(",")] \
                    if isinstance(m.args[0], str) else list(m.args[0])
                values = [v.values if hasattr(v, "values") and hasattr(v, "marks")  # param()
                          else v if len(argnames) > 1 else (v,) for v in m.args[1]]
                params = [{**p, **dict(zip(argnames, v))} for p in params for v in values]
        wanted = inspect.signature(fn).parameters
        for i, p in enumerate(params):
            args = [f"{a}={a}" for a in ("student", "reference") if a in wanted]
            if "rng" in wanted:
                args.append(f"rng=rng_for({test_file.name + '::' + name!r})")
            args += [f"{k}={v!r}" for k, v in p.items()]
            cell_id = f"{name}_{i}" if len(params) > 1 else name
            calls.append((cell_id, float(points),
                          f"{test_file.stem}.{name}({', '.join(args)})"))
    return calls


def _cell(source: str, meta: dict) -> dict:
    return {"cell_type": "code", "execution_count": None, "outputs": [],
            "metadata": {"nbgrader": {"schema_version": 3, "solution": False, "grade": False,
                                      "locked": True, "task": False, **meta}},
            "source": source}


def build_nbgrader_course(assignment, uploads: list[Path], root: Path) -> Path:
    """An nbgrader course whose assignment is the softmax tests as a notebook: a solution
    cell (the student's module), a setup cell, one graded cell per test; and every upload
    as a submitted notebook."""
    support = root / "support"
    (support / "autograder").mkdir(parents=True)
    for module in ("checks.py", "errors.py"):  # what the tests import of ours
        shutil.copy(REPO / "autograder" / module, support / "autograder" / module)
    (support / "autograder" / "__init__.py").write_text("")
    tests = assignment.public_test_files() + assignment.hidden_test_files()
    for t in tests:
        shutil.copy(t, support / t.name)
    reference = assignment.reference_files()[assignment.config.modules[0]]
    shutil.copy(reference, support / "reference_solution.py")
    setup = "\n".join([
        "import sys, types, hashlib",
        f"sys.path.insert(0, {str(support)!r})",
        "import numpy as np",
        *(f"import {t.stem}" for t in tests),
        "import reference_solution as reference",
        "student = types.SimpleNamespace(**{k: v for k, v in globals().items()",
        "                                   if callable(v) and not k.startswith('_')})",
        "def rng_for(key):",
        "    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], 'little')",
        "    return np.random.default_rng(seed)",
    ])
    # The solution cell of the source: any code (each submission's notebook replaces it).
    cells = [_cell("### BEGIN SOLUTION\npass\n### END SOLUTION",
                   {"grade_id": "solution", "solution": True, "locked": False}),
             _cell(setup, {"grade_id": "setup"})]
    for t in tests:
        for cell_id, points, call in _test_calls(t, reference):
            cells.append(_cell(call, {"grade_id": cell_id, "grade": True, "points": points}))
    notebook = {"cells": cells, "metadata": {"kernelspec": {
        "display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4, "nbformat_minor": 5}
    source = root / "source" / "softmax"
    source.mkdir(parents=True)
    (source / "softmax.ipynb").write_text(json.dumps(notebook))
    (root / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.CourseDirectory.root = {str(root)!r}\n"
        "c.CourseDirectory.db_assignments = [dict(name='softmax')]\n"
        "c.ExecutePreprocessor.timeout = 600\n")
    for upload in uploads:
        student_nb = json.loads(json.dumps(notebook))
        student_nb["cells"][0]["source"] = upload.read_text()
        dest = root / "submitted" / upload.stem / "softmax"
        dest.mkdir(parents=True)
        (dest / "softmax.ipynb").write_text(json.dumps(student_nb))
    return root


def run_nbgrader(exe: Path, course: Path, n: int) -> tuple[float, float, int]:
    """Wall and CPU seconds for ``nbgrader autograde`` of every submitted notebook, and how
    many it graded. The assignment is generated first (not timed: nbgrader does it once)."""
    env = {**os.environ, "PATH": f"{exe.parent}:{os.environ.get('PATH', '')}"}
    gen = subprocess.run([str(exe), "generate_assignment", "softmax", "--force"], cwd=course,
                         env=env, capture_output=True, text=True)
    if gen.returncode != 0:
        say(f"  nbgrader generate_assignment failed: {gen.stderr[-1500:]}")
        return float("nan"), float("nan"), 0
    cpu_before = _children_cpu()
    start = time.perf_counter()
    r = subprocess.run([str(exe), "autograde", "softmax", "--create", "--force"], cwd=course,
                       env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    cpu = _children_cpu() - cpu_before
    graded = len(list((course / "autograded").glob("*/softmax/softmax.ipynb")))
    if r.returncode != 0 or graded != n:
        say(f"  nbgrader autograde: exit {r.returncode}, {graded} of {n}: {r.stderr[-1500:]}")
    return seconds, cpu, graded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a subset (see the docstring)")
    parser.add_argument("--only", nargs="*", default=None,
                        choices=["check", "one", "batch", "marginal", "verify"])
    parser.add_argument("--cache", type=Path,
                        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                        / "autograder-bench", help="where nbgrader's virtualenv lives")
    parser.add_argument("--repeats", type=int, default=None, help="cold runs per figure")
    parser.add_argument("--sizes", type=int, nargs="*", default=None,
                        help="batch sizes beside nbgrader (default 20 100; --quick: 20)")
    parser.add_argument("--assignments", nargs="*", default=None, choices=ASSIGNMENTS,
                        help="for the marginal cost and verify (default: all; --quick: softmax)")
    args = parser.parse_args()
    sections = args.only or ["check", "one", "batch", "marginal", "verify"]
    repeats = args.repeats or (1 if args.quick else 3)
    say(f"cold_start on {os.cpu_count()} CPUs, {load()} at the start"
        + (" (quick)" if args.quick else ""))
    if "check" in sections:
        bench_check(["softmax", "training"], repeats)
    if "one" in sections:
        bench_one(repeats)
    if "batch" in sections:
        bench_batch(args.sizes or ([20] if args.quick else [20, 100]), args.cache)
    if "marginal" in sections:
        bench_marginal(args.assignments or (["softmax"] if args.quick else list(ASSIGNMENTS)),
                       ["process"] if args.quick else ["process", "docker"])
    if "verify" in sections:
        bench_verify(args.assignments or (["softmax"] if args.quick else list(ASSIGNMENTS)))
    say(f"\ndone ({load()})")


if __name__ == "__main__":
    main()
