"""Grading a batch of submissions: intake, one pytest session with the grading plugin, results.

The trusted grader runs here, in this process: it holds the tests, the reference and every
expected value. Student code only ever runs in runners started by the sandbox backend.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from autograder.course import Assignment
from autograder.harness import plugin as plugin_module
from autograder.harness.plugin import (GradingPlugin, GradingSpec, HarnessError,
                                       PreparedSubmission)
from autograder.sandbox.base import Limits, Sandbox
from autograder.submissions import IntakeError, prepare, submission_id
from autograder.results import GradingResult, Outcome, ResourceUse, TestResult


def make_sandbox(backend: str) -> Sandbox:
    """The sandbox backend by name."""
    if backend == "process":
        from autograder.sandbox.process import ProcessSandbox
        return ProcessSandbox()
    if backend == "docker":
        try:
            from autograder.sandbox.docker import DockerSandbox
        except ImportError:
            raise HarnessError("the docker backend is not available in this installation") \
                from None
        return DockerSandbox()
    raise HarnessError(f"unknown sandbox backend {backend!r}: use 'process' or 'docker'")


def spec_for(assignment: Assignment, *, hidden: bool = True) -> GradingSpec:
    """The grading spec of a course assignment: public tests, and hidden tests with the
    reference when ``hidden`` (a TA grading); public tests only otherwise."""
    cfg = assignment.config
    public = assignment.public_test_files()
    hidden_files = assignment.hidden_test_files() if hidden else []
    if not public and not hidden_files:
        raise HarnessError(f"{assignment.name} has no tests (tests/test_*.py in "
                           f"{assignment.public_tests_dir} or {assignment.hidden_tests_dir})")
    refs = {m: p for m, p in assignment.reference_files().items() if p.is_file()} if hidden else {}
    return GradingSpec(
        assignment=assignment.name, modules=cfg.modules, test_files=public + hidden_files,
        hidden_files=frozenset(hidden_files), reference_files=refs,
        limits=Limits.from_resources(cfg.resources),
        test_time_limit_s=cfg.resources.test_time_limit_s,
        submission_time_limit_s=cfg.resources.time_limit_s, rootdir=assignment.course_root)


def spec_for_release(release_dir: Path) -> GradingSpec:
    """The spec for a student's `autograder check` inside their copy of a release: the public
    tests only, no reference, the student's files in ``release_dir`` as the submission."""
    from autograder.config import load_assignment

    cfg = load_assignment(release_dir / "assignment.toml", folder_must_match=False)
    tests = sorted((release_dir / "tests").glob("test_*.py"))
    if not tests:
        raise HarnessError(f"no public tests in {release_dir / 'tests'}; run `autograder check` "
                           f"inside the folder of the assignment you downloaded")
    return GradingSpec(
        assignment=cfg.name, modules=cfg.modules, test_files=tests, hidden_files=frozenset(),
        reference_files={}, limits=Limits.from_resources(cfg.resources),
        test_time_limit_s=cfg.resources.test_time_limit_s,
        submission_time_limit_s=cfg.resources.time_limit_s, rootdir=release_dir)


def run_session(spec: GradingSpec, submissions: Sequence[PreparedSubmission], sandbox: Sandbox,
                on_result: Callable[[GradingResult], None] | None = None, slot: int = 0
                ) -> dict[str, GradingResult]:
    """Grade prepared submissions with one pytest session; returns results by submission id.
    ``slot`` tells concurrent sessions apart (their runners get distinct uids)."""
    if not submissions:
        return {}
    plugin = GradingPlugin(spec, list(submissions), sandbox, on_result, slot=slot)
    with tempfile.TemporaryDirectory(prefix="autograder-pytest-") as tmp:
        ini = Path(tmp) / "pytest.ini"
        ini.write_text("[pytest]\n")
        args = [*(str(p) for p in spec.test_files),
                "-c", str(ini), "--rootdir", str(spec.rootdir),
                "--confcutdir", str(spec.rootdir), "--import-mode=importlib",
                # Plugins the grader does not use; logging alone costs ~18 ms a submission.
                "-p", "no:cacheprovider", "-p", "no:stepwise", "-p", "no:terminal",
                "-p", "no:logging", "-p", "no:warnings", "-p", "no:unraisableexception",
                "-p", "no:threadexception", "-p", "no:doctest", "-p", "no:junitxml",
                "--capture=sys", "-W", "ignore::DeprecationWarning",
                # Plain asserts: a student reads the test's own message (or the failing line),
                # not pytest's introspection dumping the values compared.
                "--assert=plain"]
        before = set(sys.modules)
        try:
            code = pytest.main(args, plugins=[plugin, plugin_module])
        finally:
            _forget_modules_imported_since(before, spec)
    if plugin.collect_errors:
        raise HarnessError("the tests could not be collected:\n" + "\n".join(plugin.collect_errors))
    missing = [s.id for s in submissions if s.id not in plugin.results]
    if missing:
        raise HarnessError(f"pytest ended (exit code {int(code)}) without grading "
                           f"{', '.join(missing[:5])}; run the tests with plain pytest to see why")
    return plugin.results


def _forget_modules_imported_since(before: set[str], spec: GradingSpec) -> None:
    """pytest caches test modules in sys.modules by their path relative to the rootdir; the
    next session (another course, or edited tests) must import its own files afresh. Only the
    test files, conftests and the reference are forgotten: a library the tests imported (torch)
    must stay, since importing an extension module twice crashes the interpreter."""
    test_dirs = tuple(str(d.resolve()) + "/" for d in {p.parent for p in spec.test_files})
    root = str(spec.rootdir.resolve()) + "/"
    for name in set(sys.modules) - before:
        file = getattr(sys.modules[name], "__file__", None) or ""
        if (file.startswith(test_dirs) and "site-packages" not in file
                or (file.startswith(root) and file.endswith("/conftest.py"))
                or name.startswith("_autograder_reference_")):
            del sys.modules[name]


def intake_failure(assignment: str, sub_id: str, message: str, backend: str) -> GradingResult:
    """The result of an upload that could not be staged: no points, and the reason."""
    return GradingResult(
        assignment=assignment, submission=sub_id, backend=backend, resources=ResourceUse(),
        tests=(TestResult(name="submission", score=0.0, max_score=0.0,
                          outcome=Outcome.ERROR, output=message),),
        output=f"Your submission could not be graded: {message}")


def default_jobs(count: int) -> int:
    """Workers for a batch. One grader already keeps two processes busy (the trusted side and
    the student runner take turns, and the next runner is prefetched), so a worker needs about
    two CPUs; each also pays a fork-server start (~2 s, importing torch), worth it only for a
    large batch. On a 2-CPU machine this is always 1 (measured: two workers there grade 2.4x
    slower per submission each, and lose overall)."""
    return max(1, min((os.cpu_count() or 1) // 2, count // 16))


def grade_uploads(assignment: Assignment, uploads: Sequence[Path], *, backend: str = "process",
                  hidden: bool = True, sandbox: Sandbox | None = None, jobs: int = 1,
                  on_result: Callable[[GradingResult], None] | None = None
                  ) -> list[GradingResult]:
    """Grade uploads (folders, zips, .py files, notebooks) of one assignment, in order.

    ``jobs`` > 1 grades in that many worker processes (see :mod:`autograder.harness.worker`);
    ``jobs`` = 0 picks :func:`default_jobs`. A given ``sandbox`` implies one in-process worker.
    """
    spec = spec_for(assignment, hidden=hidden)
    results: dict[str, GradingResult] = {}
    order: list[str] = []
    with tempfile.TemporaryDirectory(prefix="autograder-intake-") as tmp:
        os.chmod(tmp, 0o700)
        prepared: list[PreparedSubmission] = []
        seen: set[str] = set()
        for index, upload in enumerate(uploads):
            sub_id = submission_id(Path(upload))
            if sub_id in seen:
                sub_id = f"{sub_id}-{index + 1}"
            seen.add(sub_id)
            order.append(sub_id)
            try:
                prepared.append(prepare(Path(upload), Path(tmp) / f"s{index}",
                                        assignment.config.modules,
                                        assignment.support_files(), sub_id=sub_id))
            except IntakeError as e:
                results[sub_id] = intake_failure(assignment.name, sub_id, str(e),
                                                 sandbox.name if sandbox else backend)
                if on_result:
                    on_result(results[sub_id])
        jobs = default_jobs(len(prepared)) if jobs == 0 else max(1, jobs)
        if sandbox is not None or jobs == 1 or len(prepared) < 2:
            own = sandbox is None
            sandbox = sandbox or make_sandbox(backend)
            try:
                results.update(run_session(spec, prepared, sandbox, on_result))
            finally:
                if own:
                    sandbox.close()
        else:
            from autograder.harness.worker import run_workers
            results.update(run_workers(spec, prepared, backend, jobs, on_result))
    return [results[s] for s in order]
