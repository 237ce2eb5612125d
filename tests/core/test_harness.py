"""The trusted harness end to end: real submissions, real runners, verdicts on the trusted side."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from autograder.course import Course
from autograder.harness.grader import grade_uploads
from autograder.results import GradingResult
from tests.conftest import write

REFERENCE = '''
import numpy as np

def scale(x, k):
    """x * k"""
    # BEGIN SOLUTION
    return x * k
    # END SOLUTION

def forward(x):
    # BEGIN SOLUTION
    return x * 2, (x, lambda g: g * 2)
    # END SOLUTION

def backward(dout, cache):
    # BEGIN SOLUTION
    x, fn = cache
    return fn(dout)
    # END SOLUTION

def check_mode(mode):
    # BEGIN SOLUTION
    if mode not in ("train", "test"):
        raise ValueError(f"invalid mode {mode!r}")
    return mode
    # END SOLUTION

def update(params):
    # BEGIN SOLUTION
    params["count"] = params.get("count", 0) + 1
    return None
    # END SOLUTION
'''

PUBLIC_TESTS = '''
import numpy as np
import pytest
from autograder.checks import assert_close

@pytest.mark.points(2)
def test_scale(student):
    assert_close(student.scale(np.arange(3.0), 3), np.arange(3.0) * 3, name="scale")

def test_forward_backward_with_a_cache_that_stays_remote(student):
    out, cache = student.forward(np.ones(2))
    assert_close(out, np.full(2, 2.0), name="out")
    assert_close(student.backward(np.ones(2), cache), np.full(2, 2.0), name="dx")

def test_invalid_mode_raises_value_error(student):
    with pytest.raises(ValueError):
        student.check_mode("bogus")

def test_result_kept_in_the_student_process(student):
    kept = student.forward.call_keeping_result(np.ones(2))
    assert "tuple" in repr(kept)  # a handle to the (out, cache) tuple, not the data
    dx = student.backward(np.ones(2), kept[1])
    assert_close(dx, np.full(2, 2.0), name="dx")

def test_state_written_back(student):
    _, args, _ = student.update.call_returning_args({"count": 4})
    assert args[0]["count"] == 5, "update must increment params['count'] in place"
'''

HIDDEN_TESTS = '''
import numpy as np
import pytest
from autograder.checks import assert_close

@pytest.mark.points(3)
@pytest.mark.visibility("after_due_date")
def test_scale_matches_reference(student, reference, rng):
    x = rng.normal(size=5)
    assert_close(student.scale(x, -2), reference.scale(x, -2), name="scale")

@pytest.mark.time_limit(1)
def test_fast(student):
    student.scale(np.ones(1), 1)

def test_rng_is_the_same_for_everyone(student, rng):
    x = rng.normal(size=3)
    assert abs(float(x[0]) - FIRST) < 1e-12
'''


@pytest.fixture
def toy(make_course, tmp_path):
    root = make_course({
        "solutions/toy/toy.py": REFERENCE,
        "assignments/toy/tests/test_public.py": PUBLIC_TESTS,
    })
    return Course(root).assignment("toy")


def _grade(assignment, sandbox, tmp_path, sources: dict[str, str]):
    paths = [write(tmp_path / "uploads" / f"{name}.py", src) for name, src in sources.items()]
    return {r.submission: r for r in grade_uploads(assignment, paths, sandbox=sandbox)}


def test_reference_gets_full_marks_and_stub_none(toy, sandbox, tmp_path):
    ref = (toy.solution_dir / "toy.py").read_text()
    results = _grade(toy, sandbox, tmp_path, {
        "ref": ref,
        "stub": "def scale(*args, **kwargs):\n    raise NotImplementedError\n"
                "forward = backward = check_mode = update = scale\n",
    })
    assert results["ref"].score == results["ref"].max_score == 6
    assert all(t.status == "passed" for t in results["ref"].tests)
    assert results["stub"].score == 0
    assert {t.outcome for t in results["stub"].tests} == {"not_implemented"}


def test_partial_credit_and_messages_point_at_the_mistake(toy, sandbox, tmp_path):
    ref = (toy.solution_dir / "toy.py").read_text()
    wrong_scale = ref.replace("return x * k", "return x + k")
    results = _grade(toy, sandbox, tmp_path, {"wrong": wrong_scale})
    r = results["wrong"]
    by_name = {t.name.split("::")[1]: t for t in r.tests}
    assert by_name["test_scale"].outcome == "failed"
    assert "scale:" in by_name["test_scale"].output
    assert "max relative error" in by_name["test_scale"].output
    assert r.score == 4  # the other four one-point tests pass


def test_student_exception_is_reported_with_its_traceback(toy, sandbox, tmp_path):
    ref = (toy.solution_dir / "toy.py").read_text()
    broken = ref.replace("return x * k", "return x[10] * k")
    t = next(t for t in _grade(toy, sandbox, tmp_path, {"b": broken})["b"].tests
             if t.name.endswith("test_scale"))
    assert t.outcome == "error"
    assert "IndexError" in t.output and "toy.py" in t.output and "return x[10] * k" in t.output


def test_printing_never_costs_points_and_is_shown(toy, sandbox, tmp_path):
    ref = (toy.solution_dir / "toy.py").read_text()
    noisy = ref.replace("    return x * k",
                        "    import sys, warnings\n    print('debugging scale')\n"
                        "    print('to stderr', file=sys.stderr)\n"
                        "    warnings.warn('careful')\n    return x * k")
    r = _grade(toy, sandbox, tmp_path, {"noisy": noisy})["noisy"]
    assert r.score == r.max_score
    t = next(t for t in r.tests if t.name.endswith("test_scale"))
    assert "debugging scale" in t.output and "to stderr" in t.output and "careful" in t.output


def test_hidden_tests_visibility_points_time_limit_and_rng(make_course, sandbox, tmp_path):
    import numpy as np
    import hashlib
    key = "test_hidden.py::test_rng_is_the_same_for_everyone"
    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
    first = float(np.random.default_rng(seed).normal(size=3)[0])
    root = make_course({
        "solutions/toy/toy.py": REFERENCE,
        "assignments/toy/tests/test_public.py": PUBLIC_TESTS,
        "solutions/toy/tests/test_hidden.py": HIDDEN_TESTS.replace("FIRST", repr(first)),
    })
    toy = Course(root).assignment("toy")
    ref = (toy.solution_dir / "toy.py").read_text()
    slow = ref.replace("    return x * k", "    import time\n    time.sleep(3)\n    return x * k")
    results = _grade(toy, sandbox, tmp_path, {"ref": ref, "slow": slow})
    tests = {t.name: t for t in results["ref"].tests}
    assert results["ref"].score == results["ref"].max_score == 11
    hidden = tests["test_hidden.py::test_scale_matches_reference"]
    assert (hidden.visibility, hidden.suite, hidden.max_score) == ("after_due_date", "hidden", 3)
    assert tests["test_hidden.py::test_fast"].visibility == "hidden"
    assert tests["test_public.py::test_scale"].visibility == "visible"
    slow_fast = {t.name: t for t in results["slow"].tests}["test_hidden.py::test_fast"]
    assert slow_fast.outcome == "timeout" and "1 s" in slow_fast.output


def test_a_crash_loses_only_the_tests_that_needed_the_process(toy, sandbox, tmp_path):
    ref = (toy.solution_dir / "toy.py").read_text()
    crashing = ref.replace("    return x * 2, (x, lambda g: g * 2)",
                           "    import os\n    os._exit(3)")
    r = _grade(toy, sandbox, tmp_path, {"crash": crashing})["crash"]
    by_name = {t.name.split("::")[1]: t for t in r.tests}
    crashed = by_name["test_forward_backward_with_a_cache_that_stays_remote"]
    assert crashed.outcome == "crash" and "status 3" in crashed.output
    assert by_name["test_invalid_mode_raises_value_error"].status == "passed"
    assert by_name["test_state_written_back"].status == "passed"
    assert r.resources.runner_starts == 3  # the first, and one after each of two crashes


def test_intake_problems_are_stated(toy, sandbox, tmp_path):
    bad_zip = tmp_path / "bad.zip"
    bad_zip.write_bytes(b"not a zip at all")
    wrong_name = write(tmp_path / "mine" / "other.py", "x = 1\n")
    results = grade_uploads(toy, [bad_zip, wrong_name.parent], sandbox=sandbox)
    assert "not a valid zip" in results[0].output and results[0].score == 0
    assert "no toy.py" in results[1].output and results[1].score == 0


def test_notebook_submission_is_graded_from_its_code_cells(toy, sandbox, tmp_path):
    import nbformat
    ref = (toy.solution_dir / "toy.py").read_text()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# my work"),
                nbformat.v4.new_code_cell("%matplotlib inline\nimport numpy as np"),
                nbformat.v4.new_code_cell(ref)]
    path = tmp_path / "alice.ipynb"
    nbformat.write(nb, str(path))
    r = grade_uploads(toy, [path], sandbox=sandbox)[0]
    assert r.score == r.max_score, [t.output for t in r.tests]
    assert "code cells of alice.ipynb" in r.output


def test_a_worker_pool_gives_the_same_results(toy, tmp_path):
    ref = (toy.solution_dir / "toy.py").read_text()
    sources = {"ref": ref, "wrong": ref.replace("return x * k", "return x + k"),
               "crash": ref.replace("    return x * 2, (x, lambda g: g * 2)",
                                    "    import os\n    os._exit(3)"),
               "stub": "def scale(*args, **kwargs):\n    raise NotImplementedError\n"}
    paths = [write(tmp_path / "uploads" / f"{name}.py", src) for name, src in sources.items()]
    seen = []
    pooled = grade_uploads(toy, paths, jobs=2, on_result=lambda r: seen.append(r.submission))
    single = grade_uploads(toy, paths, jobs=1)
    assert [r.submission for r in pooled] == list(sources)  # in upload order
    assert sorted(seen) == sorted(sources)
    for a, b in zip(pooled, single):
        assert a.score == b.score
        assert [(t.name, t.outcome) for t in a.tests] == [(t.name, t.outcome) for t in b.tests]


MESSAGE_TESTS = '''
import pytest

def test_expects_value_error(student):
    with pytest.raises(ValueError):
        student.check_mode("bogus")

def test_bare_assert(student):
    out = student.update.call_returning_args({"count": 4})[1][0]
    assert out["count"] == 5

def test_assert_with_message(student):
    out = student.update.call_returning_args({"count": 4})[1][0]
    assert out["count"] == 5, "update must add one to params['count']"
'''


def test_failure_messages_read_as_feedback_not_pytest_internals(make_course, sandbox, tmp_path):
    root = make_course({"solutions/toy/toy.py": REFERENCE,
                        "assignments/toy/tests/test_messages.py": MESSAGE_TESTS})
    toy = Course(root).assignment("toy")
    ref = (toy.solution_dir / "toy.py").read_text()
    lazy = ref.replace('''    if mode not in ("train", "test"):
        raise ValueError(f"invalid mode {mode!r}")
''', "").replace('params["count"] = params.get("count", 0) + 1', "pass")
    upload = write(tmp_path / "uploads" / "lazy.py", lazy)
    # In a process of its own, as in production: the pytest running this suite rewrites the
    # asserts of every test_*.py it sees imported, the course's tests included.
    done = subprocess.run([sys.executable, "-m", "autograder.cli", "grade", "toy", str(upload),
                           "--format", "json", "--course", str(root)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    graded = GradingResult.from_json(json.loads(done.stdout)[0])
    tests = {t.name.split("::")[1]: t for t in graded.tests}
    assert tests["test_expects_value_error"].output == (
        "Expected your code to raise ValueError, but it returned normally.")
    assert tests["test_bare_assert"].output == 'This check failed: assert out["count"] == 5'
    assert tests["test_assert_with_message"].output == "update must add one to params['count']"


EXTRA_CREDIT_TESTS = '''
import numpy as np
import pytest

@pytest.mark.points(3)
def test_regular(student):
    assert float(student.scale(np.ones(1), 2)[0]) == 2.0

@pytest.mark.points(2, extra_credit=True)
def test_bonus(student):
    assert student.check_mode("train") == "train"
'''


def test_extra_credit_adds_on_top_of_the_total(make_course, sandbox, tmp_path):
    root = make_course({"solutions/toy/toy.py": REFERENCE,
                        "assignments/toy/tests/test_extra.py": EXTRA_CREDIT_TESTS})
    toy = Course(root).assignment("toy")
    ref = (toy.solution_dir / "toy.py").read_text()
    no_bonus = ref.replace('''    if mode not in ("train", "test"):''', '''    raise NotImplementedError
    if mode not in ("train", "test"):''')
    results = _grade(toy, sandbox, tmp_path, {"all": ref, "no_bonus": no_bonus})
    full, partial = results["all"], results["no_bonus"]
    assert (full.score, full.max_score) == (5, 3)      # above the maximum
    assert (partial.score, partial.max_score) == (3, 3)  # the whole regular total without it
    bonus = next(t for t in full.tests if t.name.endswith("test_bonus"))
    assert bonus.extra_credit and (bonus.score, bonus.max_score) == (2, 0)
    assert bonus.to_json()["max_score"] == 0  # Gradescope's shape for extra credit
