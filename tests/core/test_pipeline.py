"""The chain of records: an upload's identity travels into its result and into the gradebook;
the verdict decides who is charged; a dying grading worker costs only what it held."""

from __future__ import annotations

import json
import os
import time

import pytest
from click.testing import CliRunner

from autograder.cli import main
from autograder.course import Course
from autograder.harness.grader import grade_uploads
from autograder.harness.verdict import verdict
from autograder.results import GradingResult, Outcome
from autograder.sandbox.base import SandboxError
from tests.conftest import write

REFERENCE = '''
def double(x):
    # BEGIN SOLUTION
    return 2 * x
    # END SOLUTION
'''

TESTS = '''
import os
import pytest

@pytest.mark.points(3)
def test_double(student):
    assert student.double(4) == 8, "double(4) should be 8"

@pytest.mark.points(1)
def test_double_zero(student):
    assert student.double(0) == 0
'''

HIDDEN = '''
import pytest

@pytest.mark.points(2)
def test_double_negative(student, submission):
    assert student.double(-3) == -6
'''


@pytest.fixture
def course(make_course):
    root = make_course({"solutions/toy/toy.py": REFERENCE,
                        "assignments/toy/tests/test_public.py": TESTS,
                        "solutions/toy/tests/test_hidden.py": HIDDEN})
    write(root / "assignments/toy/assignment.toml",
          'name = "toy"\nmodules = ["toy"]\ndue = 2026-10-01T23:59:00\n'
          '[resources]\ntest_time_limit_s = 5\ntime_limit_s = 60\nmemory_mb = 512\n')
    return root


def _uploads(tmp_path, **sources: str):
    folder = tmp_path / "uploads"
    folder.mkdir(exist_ok=True)
    paths = []
    for student, text in sources.items():
        path = folder / f"{student}.py"
        path.write_text(text)
        paths.append(path)
    return paths


def test_results_carry_identity_run_id_and_test_set(course, tmp_path, sandbox):
    [alice] = _uploads(tmp_path, alice="def double(x):\n    return 2 * x\n")
    received = "2026-10-01T23:58:59+00:00"
    from autograder.results import SubmissionIdentity
    [full] = grade_uploads(Course.find(course).assignment("toy"), [alice], sandbox=sandbox,
                           identity_of=lambda p: SubmissionIdentity(p.stem, 0, received))
    [public] = grade_uploads(Course.find(course).assignment("toy"), [alice], sandbox=sandbox,
                             hidden=False)
    assert full.identity.student == "alice" and full.identity.received_at == received
    assert full.test_set == "full" and public.test_set == "public"
    assert full.run_id and public.run_id and full.run_id != public.run_id
    again = GradingResult.from_json(json.loads(json.dumps(full.to_json())))
    # identity survives results.json
    assert (again.identity, again.run_id, again.test_set) == (full.identity, full.run_id, 'full')


def test_grade_record_puts_the_batch_in_the_gradebook_with_receipt_times(course, tmp_path):
    alice, bob = _uploads(tmp_path, alice="def double(x):\n    return 2 * x\n",
                          bob="def double(x):\n    return x + 2\n")
    carol = tmp_path / "uploads" / "carol.zip"
    carol.write_bytes(b"PK\x03\x04 not really a zip")
    on_time = time.mktime((2026, 10, 1, 20, 0, 0, 0, 0, -1))
    os.utime(alice, (on_time, on_time))
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("submission,student,submitted_at\nbob.py,bob,2026-10-03T10:00:00\n")
    roster = tmp_path / "roster.csv"
    roster.write_text("id,name,email\nalice,Alice,a@x.org\nbob,Bob,b@x.org\ncarol,C,c@x.org\n")
    db = f"sqlite:///{tmp_path / 'gb.sqlite'}"
    cli = CliRunner()
    r = cli.invoke(main, ["gradebook", "--course", str(course), "--db", db, "roster", "import",
                          str(roster)])
    assert r.exit_code == 0, r.output
    r = cli.invoke(main, ["grade", "toy", str(alice), str(bob), str(carol), "--course",
                          str(course), "--record", "--manifest", str(manifest), "--db", db,
                          "--output", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    assert "recorded bob: attempt 1, received 2026-10-03 10:00:00" in r.output
    written = GradingResult.read(tmp_path / "out" / "alice" / "results.json")
    assert written.identity.student == "alice"
    assert written.identity.received_at.startswith(
        time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(on_time))[:10])
    r = cli.invoke(main, ["gradebook", "--course", str(course), "--db", db, "explain", "bob"])
    assert r.exit_code == 0, r.output
    assert "received 2026-10-03 10:00:00" in r.output
    assert "2 late days" in r.output or "2 late day" in r.output
    r = cli.invoke(main, ["gradebook", "--course", str(course), "--db", db, "explain", "carol"])
    # unreadable: 0 out of the assignment's points (3 + 1 + 2), not 0/0
    assert "submission 1 (0 / 6)" in r.output


def test_grade_record_refuses_unknown_students_before_grading(course, tmp_path):
    [dave] = _uploads(tmp_path, dave="def double(x):\n    return 2 * x\n")
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["grade", "toy", str(dave), "--course", str(course), "--record",
                                  "--db", f"sqlite:///{tmp_path / 'gb.sqlite'}", "--output",
                                  str(out)])
    assert r.exit_code == 1 and "not in the roster: dave" in r.output
    assert "Traceback" not in r.output and not out.exists()


def test_grade_record_refuses_a_public_only_run(course, tmp_path):
    [alice] = _uploads(tmp_path, alice="def double(x):\n    return 2 * x\n")
    r = CliRunner().invoke(main, ["grade", "toy", str(alice), "--course", str(course),
                                  "--record", "--public-only"])
    assert r.exit_code == 1 and "never counts as a grade" in r.output


# -- the verdict -------------------------------------------------------------------------------
def test_verdict_blames_the_platform_for_its_own_faults():
    fault = verdict(SandboxError("the fork server did not start"), time_limit=5,
                    student_values_seen=False)
    assert fault.outcome is Outcome.GRADER_ERROR and "not of your code" in fault.message
    assert not fault.outcome.charged_to_student
    own_bug = verdict(TypeError("unsupported operand"), time_limit=5, student_values_seen=False)
    assert own_bug.outcome is Outcome.GRADER_ERROR
    choked = verdict(TypeError("cannot unpack non-iterable NoneType object"), time_limit=5,
                     student_values_seen=True)
    assert choked.outcome is Outcome.FAILED and "could not be checked" in choked.message


def test_verdict_of_checks_and_passes():
    assert verdict(None, time_limit=5, student_values_seen=True).outcome is Outcome.PASSED
    failed = verdict(AssertionError(""), time_limit=5, student_values_seen=True,
                     failing_statement="assert out.shape == (2, 3)")
    assert failed.outcome is Outcome.FAILED and "out.shape == (2, 3)" in failed.message


def test_a_test_whose_own_code_raises_is_a_grader_error_not_the_students(make_course, tmp_path,
                                                                         sandbox):
    root = make_course({"solutions/toy/toy.py": REFERENCE,
                        "assignments/toy/tests/test_public.py": '''
import pytest

@pytest.mark.points(2)
def test_broken_before_any_call(student):
    expected = {"a": 1} + 1   # the test author's mistake
    assert student.double(1) == expected

@pytest.mark.points(1)
def test_fine(student):
    assert student.double(1) == 2
'''})
    [alice] = _uploads(tmp_path, alice="def double(x):\n    return 2 * x\n")
    [result] = grade_uploads(Course.find(root).assignment("toy"), [alice], sandbox=sandbox)
    broken = next(t for t in result.tests if "broken" in t.name)
    assert broken.outcome is Outcome.GRADER_ERROR and "not of your code" in broken.output
    assert [t.name for t in result.grader_errors] == [broken.name]


# -- failure stays local ----------------------------------------------------------------------
def test_a_dying_worker_costs_only_the_submission_that_killed_it(make_course, tmp_path):
    root = make_course({"solutions/toy/toy.py": REFERENCE,
                        "assignments/toy/tests/test_public.py": '''
import os
import pytest

@pytest.mark.points(1)
def test_double(student, submission):
    if submission.id == "doomed":
        os.kill(os.getpid(), 9)   # the trusted worker dies (a broken test, an OOM kill)
    assert student.double(2) == 4
'''})
    uploads = _uploads(tmp_path, a1="def double(x):\n    return 2 * x\n",
                       doomed="def double(x):\n    return 2 * x\n",
                       a2="def double(x):\n    return 2 * x\n",
                       a3="def double(x):\n    return 3 * x\n")
    results = grade_uploads(Course.find(root).assignment("toy"), uploads, jobs=2)
    by_id = {r.submission: r for r in results}
    assert set(by_id) == {"a1", "doomed", "a2", "a3"}
    assert by_id["a1"].score == 1 and by_id["a2"].score == 1 and by_id["a3"].score == 0
    doomed = by_id["doomed"]
    assert doomed.tests[0].outcome is Outcome.GRADER_ERROR
    assert "not of your code" in doomed.tests[0].output


def test_output_cut_during_a_hidden_test_is_noted_on_that_test_only(make_course, tmp_path,
                                                                    sandbox):
    """The output cap tripped by a hidden test's input must not leak through an always-visible
    note: the note carries the visibility of the test that caused it."""
    root = make_course({"solutions/toy/toy.py": REFERENCE,
                        "assignments/toy/tests/test_public.py": '''
import pytest

@pytest.mark.points(1)
def test_public(student):
    assert student.double(1) == 2
''',
                        "solutions/toy/tests/test_hidden.py": '''
import pytest

@pytest.mark.points(1)
def test_hidden_secret_input(student):
    assert student.double(-77) == -154
'''}, resources="test_time_limit_s = 5\ntime_limit_s = 60\nmemory_mb = 512\nmax_output_kb = 1")
    [up] = _uploads(tmp_path, chatty="def double(x):\n    if x < 0:\n        print('x' * 5000)\n"
                                     "    return 2 * x\n")
    [result] = grade_uploads(Course.find(root).assignment("toy"), [up], sandbox=sandbox)
    hidden = next(t for t in result.tests if "hidden" in t.name)
    public = next(t for t in result.tests if "public" in t.name)
    assert hidden.visibility == "hidden" and "longer than the limit" in hidden.output
    assert "longer than the limit" not in public.output
    assert "longer than the limit" not in result.output and "truncated" not in result.output
