"""What a student reads from `autograder check`: every test's own name and points in full at any
terminal width, a module that does not import reported once with the line to fix, the bonus
points a failed extra-credit test would have given, and `-k` to run some tests."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from autograder.report import print_check
from autograder.results import GradingResult, Outcome, ResourceUse
from autograder.results import TestResult as OneTest  # not collected as a test class
from tests.conftest import as_root

AUTOGRADER = [sys.executable, "-m", "autograder.cli"]
needs_root = pytest.mark.skipif(not as_root(), reason="check uses the full process sandbox")

LONG = "test_vectorized_zero_inputs_loss_is_log_c_plus_the_regularisation_term"
IMPORT_FAILED = ("Your module could not be imported (importing softmax.py): SyntaxError: "
                 "invalid syntax (softmax.py, line 4)\n"
                 '  File "/submission/softmax.py", line 4\n    return x +\n'
                 "               ^\nSyntaxError: invalid syntax")


def _result(*tests: OneTest) -> GradingResult:
    return GradingResult(assignment="softmax", submission="your work", tests=tests,
                         backend="process", resources=ResourceUse(), test_set="public")


def _printed(result: GradingResult, width: int) -> str:
    out = io.StringIO()
    print_check(Console(file=out, width=width, color_system=None), result)
    return out.getvalue()


@pytest.mark.parametrize("width", [80, 120])
def test_each_test_shows_its_own_name_and_points_in_full(width):
    result = _result(
        OneTest(f"test_softmax_public.py::{LONG}", 0, 2, Outcome.FAILED, "loss is wrong"),
        OneTest("test_softmax_public.py::test_edge[two_classes]", 1, 1, Outcome.PASSED))
    text = _printed(result, width)
    assert LONG in text and "test_edge[two_classes]" in text
    assert "test_softmax_public.py" not in text  # the test's own name, not its file
    assert "…" not in text and "0 / 2" in text and "1 / 1" in text
    assert "loss is wrong" in text


def test_the_same_name_in_two_files_keeps_the_files_apart():
    result = _result(OneTest("test_a.py::test_shapes", 1, 1, Outcome.PASSED),
                     OneTest("test_b.py::test_shapes", 0, 1, Outcome.FAILED, "no"))
    text = _printed(result, 80)
    assert "test_a.py::test_shapes" in text and "test_b.py::test_shapes" in text


def test_a_failed_extra_credit_test_says_how_many_bonus_points_exist():
    result = _result(OneTest("t.py::test_bonus", 0, 0, Outcome.FAILED, "not yet",
                                extra_credit=True, extra_points=3),
                     OneTest("t.py::test_other_bonus", 2, 0, Outcome.PASSED,
                                extra_credit=True, extra_points=2))
    text = _printed(result, 80)
    assert "0 / +3 extra" in text and "+2 extra" in text


def test_a_module_that_does_not_import_is_reported_once_with_the_line_to_fix():
    tests = [OneTest(f"t.py::test_{i}", 0, 1, Outcome.ERROR, IMPORT_FAILED)
             for i in range(9)]
    text = _printed(_result(*tests), 80)
    assert text.count("SyntaxError: invalid syntax") == 1
    assert text.count("return x +") == 1
    assert "Fix softmax.py, line 4" in text
    for i in range(9):
        assert f"test_{i}" in text


# --- the command itself, as a student runs it ---------------------------------------------
TOY_TESTS = f'''
import pytest


@pytest.mark.points(2)
def {LONG}(student):
    assert student.total([1.0, 2.0]) == 3.0


@pytest.mark.points(1)
def test_total_of_nothing_is_zero(student):
    assert student.total([]) == 0


@pytest.mark.points(3, extra_credit=True)
def test_bonus_mean(student):
    assert student.mean([1.0, 3.0]) == 2.0
'''


@pytest.fixture
def toy_release(make_course, tmp_path) -> Path:
    """A student's copy of a released toy assignment with a long test name and a bonus test."""
    root = make_course({
        "solutions/toy/toy.py": "def total(xs):\n    # BEGIN SOLUTION\n    return sum(xs)\n"
                                "    # END SOLUTION\n\n\ndef mean(xs):\n    # BEGIN SOLUTION\n"
                                "    return sum(xs) / len(xs)\n    # END SOLUTION\n",
        "assignments/toy/tests/test_toy_public.py": TOY_TESTS,
    })
    assert subprocess.run([*AUTOGRADER, "release", "toy"], cwd=root).returncode == 0
    mine = tmp_path / "my toy"
    shutil.copytree(root / "release/toy", mine)
    return mine


def check(cwd: Path, *args: str, columns: int = 80) -> subprocess.CompletedProcess:
    return subprocess.run([*AUTOGRADER, "check", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "COLUMNS": str(columns)})


@needs_root
@pytest.mark.parametrize("columns", [80, 120])
def test_check_prints_full_names_points_and_the_bonus_at_any_width(toy_release, columns):
    (toy_release / "toy.py").write_text("def total(xs):\n    return sum(xs)\n\n\n"
                                        "def mean(xs):\n    raise NotImplementedError\n")
    result = check(toy_release, columns=columns)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert LONG in out and "test_total_of_nothing_is_zero" in out and "test_bonus_mean" in out
    assert "…" not in out and "test_toy_public.py" not in out
    assert "2 / 2" in out and "1 / 1" in out and "0 / +3 extra" in out
    assert "2 of 3 public tests pass (3 of 3 points, +0 of +3 extra)" in " ".join(out.split())


@needs_root
def test_check_prints_an_import_failure_once_with_its_line(toy_release):
    (toy_release / "toy.py").write_text("def total(xs):\n    return sum(xs)\n\ndef mean(xs:\n")
    result = check(toy_release)
    assert result.returncode == 1
    out = result.stdout
    assert out.count("SyntaxError") == 1, out
    assert "Fix toy.py, line 4" in out
    assert "Traceback" not in result.stderr


@needs_root
def test_check_k_runs_only_the_tests_it_names(toy_release):
    (toy_release / "toy.py").write_text("def total(xs):\n    return sum(xs)\n\n\n"
                                        "def mean(xs):\n    return sum(xs) / len(xs)\n")
    some = check(toy_release, "-k", "total_of_nothing or bonus")
    assert some.returncode == 0, some.stdout + some.stderr
    assert "test_total_of_nothing_is_zero" in some.stdout and "test_bonus_mean" in some.stdout
    assert LONG not in some.stdout
    assert "2 of 2 public tests selected by -k" in some.stdout
    none = check(toy_release, "-k", "no_such_test")
    assert none.returncode == 1 and "Traceback" not in none.stderr
    assert "no test matches -k 'no_such_test'" in none.stderr and LONG in none.stderr
