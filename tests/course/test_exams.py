"""Exams in the course: miniexam1 is there with two sound variants, and an exam's verify fails,
naming the variant, when one variant is unsound.

The full proof of miniexam1 (reference passes, stub fails, every mutant of both variants loses
points, no leaks, the release rebuilds byte for byte) runs in test_assignments.py with every
other assignment; these tests add what is particular to exams without grading it twice.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from autograder.authoring.leaks import find_release_leaks
from autograder.authoring.release import release_differences
from autograder.authoring.variants import verify_variants
from autograder.cli import main
from autograder.config import load_course
from autograder.course import Course
from tests.conftest import REPO, as_root, write

COURSE = Course(REPO)
needs_root = pytest.mark.skipif(not as_root(), reason="verify grades through the process sandbox")


def test_miniexam1_is_a_quiz_with_two_variants():
    exam = COURSE.assignment("miniexam1")
    cfg = exam.config
    assert cfg.kind == "quiz" and cfg.exam is not None
    assert cfg.due == cfg.exam.closes  # what the gradebook closes hard at
    assert "quiz" in load_course(REPO).slack.no_slack_kinds  # takes no slack days
    assert cfg.points == 20 and cfg.exam.duration_minutes == 30
    assert exam.variant_names() == ["leaky_relu", "dropout"]
    for variant in exam.variants():
        assert (variant.public_dir / "handout.ipynb").is_file()
        assert variant.public_test_files() and variant.hidden_test_files()
        assert len(variant.mutant_files()) >= 7, variant.label


def test_miniexam1_release_is_current_and_leaks_nothing():
    exam = COURSE.assignment("miniexam1")
    assert release_differences(exam) == []
    for variant in exam.variants():
        assert find_release_leaks(variant) == []
        assert sorted(p.name for p in variant.release_dir.iterdir()) == [
            "README.md", "assignment.toml", "handout.ipynb", "layer.py", "tests"]


# -- a toy exam: variant a is sound, variant b has an uncaught mutant and other points ---------

REFERENCE = '''\
"""Variant {v}."""


def double(x):
    """Twice x."""
    # BEGIN SOLUTION
    result_value = x * 2.0
    return result_value
    # END SOLUTION
'''

PUBLIC = '''\
import pytest


@pytest.mark.points({points})
def test_double_of_three(student):
    assert student.double(3.0) == 6.0
'''

CAUGHT = '''\
"""Adds instead of doubling."""


def double(x):
    return x + 2.0
'''

UNCAUGHT = '''\
"""Right at 3.0 only: the tests try no other value."""


def double(x):
    return 6.0 if x == 3.0 else 0.0
'''


@pytest.fixture
def toy_exam(tmp_path) -> Course:
    root = tmp_path / "course"
    write(root / "course.toml", 'name = "c"\n')
    write(root / "assignments/quiz9/assignment.toml", """\
        name = "quiz9"
        kind = "quiz"
        modules = ["toy"]
        [exam]
        opens = 2026-12-10T09:00:00
        closes = 2026-12-10T12:00:00
        duration_minutes = 30
        password = "secret-exam-password"
        [variants.a]
        [variants.b]
        [resources]
        test_time_limit_s = 5
        time_limit_s = 60
        memory_mb = 512
        """)
    for v, points, mutant in (("a", 2, CAUGHT), ("b", 3, UNCAUGHT)):
        write(root / f"assignments/quiz9/variants/{v}/tests/test_public.py",
              PUBLIC.format(points=points))
        write(root / f"solutions/quiz9/variants/{v}/toy.py", REFERENCE.format(v=v))
        write(root / f"solutions/quiz9/variants/{v}/mutants/mistake.py", mutant)
    res = CliRunner().invoke(main, ["release", "quiz9", "--course", str(root)])
    assert res.exit_code == 0, res.output
    return Course(root)


@needs_root
def test_an_exam_is_sound_only_when_every_variant_is(toy_exam, sandbox):
    report = verify_variants(toy_exam.assignment("quiz9"), sandbox)
    failed = {c.name: c.details for c in report.checks if not c.ok}
    assert not report.ok
    assert set(failed) == {"[b] every mutant loses points (1 mutants)",
                           "every variant is worth the same points"}, failed
    assert "mistake keeps all 3 points" in failed["[b] every mutant loses points (1 mutants)"][0]
    assert "a 2, b 3" in failed["every variant is worth the same points"][0]
    assert any(c.name.startswith("[a] every mutant loses points") and c.ok for c in report.checks)
    assert {row.mutant for row in report.mutants} >= {"a/mistake", "b/mistake"}
    assert {"a/reference", "b/reference", "a/stub", "b/stub"} <= set(report.results)


@needs_root
def test_verify_cli_acts_on_every_variant_or_the_one_named(toy_exam):
    """The CLI's verify goes through autograder.authoring.verify.verify, which hands an exam to
    verify_variants; --variant verifies one as the assignment it is."""
    course = ["--course", str(toy_exam.root)]
    res = CliRunner().invoke(main, ["verify", "quiz9", *course])
    assert res.exit_code == 1, res.output
    assert "[a] every test passes on the reference" in res.output
    assert "b/mistake" in res.output and "quiz9 is not ready" in res.output
    res = CliRunner().invoke(main, ["verify", "quiz9", "--variant", "a", *course])
    assert res.exit_code == 0, res.output
    assert "is sound" in res.output and "b/mistake" not in res.output


def test_a_password_in_a_released_file_is_found(toy_exam):
    from autograder.authoring.variants import _exam_checks

    exam = toy_exam.assignment("quiz9")
    checks = {c.name: c for c in _exam_checks(exam)}
    assert checks["release holds no exam password"].ok
    handout = exam.release_dir / "variants/a/tests/notes.txt"
    handout.write_text("the password is secret-exam-password\n")
    checks = {c.name: c for c in _exam_checks(exam)}
    assert not checks["release holds no exam password"].ok
    assert "notes.txt: holds the exam password" in checks["release holds no exam password"].details[0]
    # The stray file is also not what the sources build.
    assert not checks["release/quiz9/ holds exactly the current variants' releases"].ok


def test_release_of_one_variant_by_name(toy_exam):
    res = CliRunner().invoke(main, ["release", "quiz9", "--variant", "b",
                                    "--course", str(toy_exam.root)])
    assert res.exit_code == 0, res.output
    assert "toy.py" in res.output and "variants/a" not in res.output
    res = CliRunner().invoke(main, ["release", "quiz9", "--variant", "z",
                                    "--course", str(toy_exam.root)])
    assert res.exit_code != 0 and "no variant 'z' (known: a, b)" in res.output
    assert "Traceback" not in res.output
