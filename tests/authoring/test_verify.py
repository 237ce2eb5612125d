"""`autograder verify` on a small course built to trip every check of the mutants: a broken
mutant, regular and extra-credit points counted apart, trivial mutants that a shape-only test
credits, and a test whose own use of a check is a grader error. Graded for real, through the
process sandbox."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from autograder.authoring.verify import VerifyReport, verify
from tests.conftest import as_root

from .conftest import build_fake_course

needs_root = pytest.mark.skipif(not as_root(), reason="verify grades through the process sandbox")

HIDDEN = '''\
import numpy as np
import pytest

from autograder.checks import assert_close, grad_check


def test_matches_reference_on_moderate_logits(student, reference, rng):
    x = rng.normal(size=(3, 4))
    assert_close(student.softmax(x), reference.softmax(x), name="softmax")


@pytest.mark.points(2, extra_credit=True)
def test_bonus_large_logits(student, reference):
    x = np.array([[1000.0, 999.0, 0.0]])
    assert_close(student.softmax(x), reference.softmax(x), name="softmax")


def test_shape_only(student):
    # Credits any output of the right shape: the trivial mutants must expose it.
    assert student.softmax(np.ones((2, 3))).shape == (2, 3)


def test_misuses_a_check(student):
    grad_check(lambda v: float(np.sum(v)), np.ones(2), np.ones(2), rtol=1e-3)
'''

LOSES_REGULAR_KEEPS_EXTRA = '''\
"""Only large logits are handled: small ones come back as ones, not probabilities."""

import numpy as np


def softmax(x):
    if np.max(x) < 100:
        return np.ones_like(x)
    shifted = x - x.max(axis=1, keepdims=True)
    exps = np.exp(shifted)
    return exps / exps.sum(axis=1, keepdims=True)
'''

BROKEN = '''\
"""A syntax error: this mutant tests nothing."""

def softmax(x)
    return x
'''


@pytest.fixture(scope="module")
def report(tmp_path_factory, sandbox) -> VerifyReport:
    course = build_fake_course(tmp_path_factory.mktemp("verify") / "course", handout=False)
    solutions = course.root / "solutions" / "toy"
    (solutions / "tests" / "test_hidden_softmax.py").write_text(HIDDEN)
    (solutions / "mutants" / "small_logits_are_ones.py").write_text(LOSES_REGULAR_KEEPS_EXTRA)
    (solutions / "mutants" / "syntax_error.py").write_text(BROKEN)
    return verify(course.assignment("toy"), sandbox)


def check(report: VerifyReport, prefix: str):
    found = [c for c in report.checks if c.name.startswith(prefix)]
    assert len(found) == 1, [c.name for c in report.checks]
    return found[0]


@needs_root
def test_a_mutant_with_a_syntax_error_is_broken_not_caught(report):
    row = next(r for r in report.mutants if r.mutant == "syntax_error")
    assert row.broken.startswith("syntax_error.py:3: syntax error") and not row.caught
    splices = check(report, "every mutant file splices into the reference")
    assert not splices.ok and splices.details == [f"syntax_error: BROKEN: {row.broken}"]
    assert not report.ok


@needs_root
def test_regular_and_extra_credit_points_are_counted_apart(report):
    rows = {r.mutant: r for r in report.mutants}
    # Loses regular points, keeps the bonus: caught, though its total may look like full marks.
    small = rows["small_logits_are_ones"]
    assert (small.regular, small.regular_max, small.extra, small.extra_max) == (1.0, 4.0, 2.0, 2.0)
    assert small.caught
    # Loses only the bonus (exp overflows on large logits): caught too.
    no_shift = rows["no_max_shift"]
    assert (no_shift.regular, no_shift.extra) == (no_shift.reference_regular, 0.0)
    assert no_shift.caught
    assert "test_hidden_softmax.py::test_bonus_large_logits" in no_shift.caught_by
    assert check(report, "every mutant loses points").ok


@needs_root
def test_trivial_mutants_are_added_and_the_tests_that_credit_them_named(report):
    rows = {r.mutant: r for r in report.mutants if r.trivial}
    assert set(rows) == {"trivial:zeros", "trivial:constant"}
    for row in rows.values():
        assert row.credited_by == ["test_hidden_softmax.py::test_shape_only"]
        assert row.regular == 1.0 and not row.caught
    trivial = check(report, "trivial mutants")
    assert not trivial.ok
    assert any("trivial:zeros earns 1 of" in d and "test_shape_only" in d for d in trivial.details)


@needs_root
def test_a_grader_error_on_any_submission_fails_verify_with_the_test_and_message(report):
    errors = check(report, "no test ends in a grader error")
    assert not errors.ok
    assert any(d.startswith("test_hidden_softmax.py::test_misuses_a_check (on reference): ")
               and "grad_check() was called wrongly by the test" in d for d in errors.details)
    # It is never charged as the student's failure: the outcome says so.
    ref = report.results["reference"]
    misuse = next(t for t in ref.tests if t.name.endswith("test_misuses_a_check"))
    assert misuse.outcome == "grader_error"


@needs_root
def test_the_cli_table_shows_broken_rows_and_both_columns(tmp_path):
    course = build_fake_course(tmp_path / "course", handout=False)
    solutions = course.root / "solutions" / "toy"
    (solutions / "tests" / "test_hidden_softmax.py").write_text(textwrap.dedent('''\
        import numpy as np
        import pytest
        from autograder.checks import assert_close

        @pytest.mark.points(2, extra_credit=True)
        def test_bonus_large_logits(student, reference):
            x = np.array([[1000.0, 999.0, 0.0]])
            assert_close(student.softmax(x), reference.softmax(x), name="softmax")
        '''))
    (solutions / "mutants" / "syntax_error.py").write_text(BROKEN)
    result = subprocess.run([sys.executable, "-m", "autograder.cli", "verify", "toy"],
                            cwd=course.root, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 1, result.stderr
    out = result.stdout
    assert "regular" in out and "extra" in out
    assert "BROKEN" in out and "syntax_error.py:3: syntax error" in out
    assert "+0/2" in out  # no_max_shift loses the bonus only
    assert "FAIL every mutant file splices into the reference" in out
