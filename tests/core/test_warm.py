"""The warm grader: tests collected once, one job after another, the same verdicts as a batch."""

from __future__ import annotations

import pytest

from autograder.course import Course
from autograder.errors import PlatformError
from autograder.harness.grader import spec_for
from autograder.harness.session import run_session
from autograder.harness.warm import WarmGrader
from autograder.results import Outcome, SubmissionIdentity
from autograder.submissions import stage
from tests.conftest import write

REFERENCE = '''
def double(x):
    # BEGIN SOLUTION
    return 2 * x
    # END SOLUTION
'''

TESTS = '''
import pytest

@pytest.mark.points(2)
def test_double(student):
    assert student.double(4) == 8, "double(4) should be 8"

@pytest.mark.points(1)
def test_state_does_not_leak_between_submissions(student, submission):
    # A module-level counter lives in this submission's own runner only.
    assert student.calls() == 0

def test_handles_stay_remote(reference, student):
    assert reference.double(3) == 6
'''

SOURCES = {
    "good": "CALLS = 0\ndef double(x):\n    global CALLS\n    CALLS += 1\n    return 2 * x\n"
            "def calls():\n    return CALLS - 1\n",
    "wrong": "def double(x):\n    return x + 3\ndef calls():\n    return 0\n",
    "crash": "import os\ndef double(x):\n    os._exit(3)\ndef calls():\n    return 0\n",
    "stub": "def double(x):\n    raise NotImplementedError\ndef calls():\n    return 0\n",
}


@pytest.fixture
def toy(make_course):
    root = make_course({"solutions/toy/toy.py": REFERENCE,
                        "assignments/toy/tests/test_public.py": TESTS})
    return Course.find(root).assignment("toy")


def _staged(assignment, tmp_path, name, source):
    upload = write(tmp_path / "uploads" / f"{name}.py", source)
    return stage(upload, tmp_path / "staged" / name, assignment.config.modules,
                 assignment.support_files(), sub_id=name)


def _verdicts(result):
    return [(t.name, t.outcome, t.score) for t in result.tests]


def test_warm_jobs_match_a_batch_and_collect_once(toy, tmp_path, sandbox):
    spec = spec_for(toy)
    staged = {n: _staged(toy, tmp_path, n, s) for n, s in SOURCES.items()}
    batch = run_session(spec, list(staged.values()), sandbox)
    with WarmGrader(spec, sandbox=sandbox) as warm:
        # Twice round, in another order: each job sees only its own submission.
        for name in [*SOURCES, *reversed(SOURCES)]:
            who = SubmissionIdentity(student=name, attempt=1, received_at="2026-10-01T10:00:00+00:00")
            result = warm.grade(staged[name], who, run_id=f"run-{name}")
            assert result.submission == name and result.identity == who
            assert result.run_id == f"run-{name}" and result.test_set == "full"
            assert _verdicts(result) == _verdicts(batch[name]), name
        assert warm.sessions_started == 1
    assert batch["good"].score == 4 and batch["wrong"].score == 2
    crash = {t.name: t.outcome for t in batch["crash"].tests}
    assert crash["test_public.py::test_double"] is Outcome.CRASH


def test_tests_that_cannot_be_collected_are_a_platform_fault(make_course, tmp_path, sandbox):
    root = make_course({"solutions/toy/toy.py": REFERENCE,
                        "assignments/toy/tests/test_public.py": "def test_x(student:\n"})
    toy = Course.find(root).assignment("toy")
    with WarmGrader(spec_for(toy), sandbox=sandbox) as warm:
        with pytest.raises(PlatformError, match="could not be collected"):
            warm.grade(_staged(toy, tmp_path, "good", SOURCES["good"]))
