"""Grading a batch of submissions: intake, one pytest session with the grading plugin, results.

The trusted grader runs here, in this process: it holds the tests, the reference and every
expected value. Student code only ever runs in runners started by the sandbox backend.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from autograder.course import Assignment
# Re-exported: callers name them from here. No pytest and no grading plugin at import (they
# load with the first session), so a command starts its sandbox before paying for them.
from autograder.harness.session import make_sandbox, run_session, runner_preload, start_sandbox
from autograder.harness.spec import GradingSpec, PreparedSubmission
from autograder.sandbox.base import Limits, Sandbox
from autograder.submissions import IntakeError, stage, submission_id
from autograder.results import (GradingResult, Outcome, ResourceUse, SubmissionIdentity,
                                TestResult)


def spec_for(assignment: Assignment, *, hidden: bool = True) -> GradingSpec:
    """The grading spec of a course assignment: public tests, and hidden tests with the
    reference when ``hidden`` (a TA grading); public tests only otherwise."""
    cfg = assignment.config
    public = assignment.public_test_files()
    hidden_files = assignment.hidden_test_files() if hidden else []
    if not public and not hidden_files:
        from autograder.harness.plugin import HarnessError
        raise HarnessError(f"{assignment.name} has no tests (tests/test_*.py in "
                           f"{assignment.public_tests_dir} or {assignment.hidden_tests_dir})")
    refs = {m: p for m, p in assignment.reference_files().items() if p.is_file()} if hidden else {}
    return GradingSpec(
        assignment=assignment.name, modules=cfg.modules, test_files=public + hidden_files,
        hidden_files=frozenset(hidden_files), reference_files=refs,
        limits=Limits.from_resources(cfg.resources),
        test_time_limit_s=cfg.resources.test_time_limit_s,
        submission_time_limit_s=cfg.resources.time_limit_s, rootdir=assignment.course_root,
        test_set="full" if hidden else "public")


def spec_for_release(release_dir: Path) -> GradingSpec:
    """The spec for a student's `autograder check` inside their copy of a release: the public
    tests only, no reference, the student's files in ``release_dir`` as the submission."""
    from autograder.config import load_assignment

    cfg = load_assignment(release_dir / "assignment.toml", folder_must_match=False)
    tests = sorted((release_dir / "tests").glob("test_*.py"))
    if not tests:
        from autograder.harness.plugin import HarnessError
        raise HarnessError(f"no public tests in {release_dir / 'tests'}; run `autograder check` "
                           f"inside the folder of the assignment you downloaded")
    return GradingSpec(
        assignment=cfg.name, modules=cfg.modules, test_files=tests, hidden_files=frozenset(),
        reference_files={}, limits=Limits.from_resources(cfg.resources),
        test_time_limit_s=cfg.resources.test_time_limit_s,
        submission_time_limit_s=cfg.resources.time_limit_s, rootdir=release_dir,
        test_set="public")


def intake_failure(assignment: str, sub_id: str, message: str, backend: str,
                   max_score: float = 0.0, hidden: bool = True) -> GradingResult:
    """The result of an upload that could not be staged: 0 out of ``max_score`` (the points
    of the test set it would have run), with outcome ``intake`` and the reason."""
    return GradingResult(
        assignment=assignment, submission=sub_id, backend=backend, resources=ResourceUse(),
        tests=(TestResult(name="submission", score=0.0, max_score=max_score,
                          outcome=Outcome.INTAKE, output=message),),
        output=f"Your submission could not be graded: {message}",
        test_set="full" if hidden else "public")


def default_jobs(count: int) -> int:
    """Workers for a batch. One grader already keeps two processes busy (the trusted side and
    the student runner take turns, and the next runner is prefetched), so a worker needs about
    two CPUs; each also pays a fork-server start (~2 s, importing torch), worth it only for a
    large batch. On a 2-CPU machine this is always 1 (measured: two workers there grade 2.4x
    slower per submission each, and lose overall)."""
    return max(1, min((os.cpu_count() or 1) // 2, count // 16))


def grade_uploads(assignment: Assignment, uploads: Sequence[Path], *, backend: str = "process",
                  hidden: bool = True, sandbox: Sandbox | None = None, jobs: int = 1,
                  on_result: Callable[[GradingResult], None] | None = None,
                  identity_of: Callable[[Path], SubmissionIdentity] | None = None
                  ) -> list[GradingResult]:
    """Grade uploads (folders, zips, .py files, notebooks) of one assignment, in order.

    ``identity_of(upload)`` says whose each upload is and when it was received; every result
    (intake failures included) carries it, with a run id of its own.

    ``jobs`` > 1 grades in that many worker processes (see :mod:`autograder.harness.worker`);
    ``jobs`` = 0 picks :func:`default_jobs`. A given ``sandbox`` implies one in-process worker.
    """
    jobs = default_jobs(len(uploads)) if jobs == 0 else max(1, jobs)
    in_process = sandbox is not None or jobs == 1 or len(uploads) < 2
    own = in_process and sandbox is None
    if own:  # started first: its fork server's imports overlap intake, pytest and collection
        sandbox = start_sandbox(backend, preload_for(assignment))
    try:
        return _grade(assignment, uploads, backend=backend, hidden=hidden, sandbox=sandbox,
                      jobs=jobs, in_process=in_process, on_result=on_result,
                      identity_of=identity_of)
    finally:
        if own and sandbox is not None:
            sandbox.close()


def preload_for(assignment: Assignment) -> tuple[str, ...]:
    """What the fork server preloads for an assignment's runners: the heavy libraries its
    reference modules and support files import (torch only for a torch assignment)."""
    return runner_preload([*assignment.reference_files().values(),
                           *assignment.support_files()])


def _grade(assignment: Assignment, uploads: Sequence[Path], *, backend: str, hidden: bool,
           sandbox: Sandbox | None, jobs: int, in_process: bool,
           on_result: Callable[[GradingResult], None] | None,
           identity_of: Callable[[Path], SubmissionIdentity] | None) -> list[GradingResult]:
    spec = spec_for(assignment, hidden=hidden)
    results: dict[str, GradingResult] = {}
    order: list[str] = []
    with tempfile.TemporaryDirectory(prefix="autograder-intake-") as tmp:
        os.chmod(tmp, 0o700)
        prepared: list[PreparedSubmission] = []
        refused: dict[str, str] = {}  # sub_id -> why intake refused it
        seen: set[str] = set()
        identities: dict[str, SubmissionIdentity] = {}
        for index, upload in enumerate(uploads):
            sub_id = submission_id(Path(upload))
            if sub_id in seen:
                sub_id = f"{sub_id}-{index + 1}"
            seen.add(sub_id)
            order.append(sub_id)
            identity = identity_of(Path(upload)) if identity_of else SubmissionIdentity()
            identities[sub_id] = identity
            try:
                staged = stage(Path(upload), Path(tmp) / f"s{index}", assignment.config.modules,
                               assignment.support_files(), sub_id=sub_id)
            except IntakeError as e:  # this upload's own failure: the batch goes on
                refused[sub_id] = str(e)
            else:
                staged.identity = identity
                prepared.append(staged)
        # An unreadable upload scores 0 out of the assignment's points (never 0/0): the declared
        # total when the full test set runs, else what the graded ones of the batch were out of.
        declared = assignment.config.points if hidden else None

        def refuse(max_score: float) -> None:
            for sub_id, message in refused.items():
                results[sub_id] = replace(
                    intake_failure(assignment.name, sub_id, message,
                                   sandbox.name if sandbox else backend, max_score, hidden),
                    identity=identities[sub_id], run_id=uuid.uuid4().hex)
                if on_result:
                    on_result(results[sub_id])

        if declared is not None:
            refuse(declared)
        if in_process or len(prepared) < 2:
            if sandbox is None:  # workers were planned, but intake left one submission
                with make_sandbox(backend, preload_for(assignment)) as one:
                    results.update(run_session(spec, prepared, one, on_result))
            else:
                results.update(run_session(spec, prepared, sandbox, on_result))
        else:
            from autograder.harness.worker import run_workers
            results.update(run_workers(spec, prepared, backend, jobs, on_result))
    if declared is None:
        refuse(max((results[p.id].max_score for p in prepared), default=0.0))
    return [results[s] for s in order]
