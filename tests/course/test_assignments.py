"""Every assignment in this course repository is sound: `autograder verify` passes on it.

This is the proof the course content stands on: the reference passes every test, the stub
fails every test, every mutant (a common mistake) loses points, and the committed release is
current and leaks nothing. A new assignment is covered as soon as its folder exists.
"""

from __future__ import annotations

import pytest

from autograder.authoring.verify import verify
from autograder.course import Course
from tests.conftest import REPO, as_root

COURSE = Course(REPO)


@pytest.mark.skipif(not as_root(), reason="verify grades through the full process sandbox")
@pytest.mark.parametrize("name", COURSE.assignment_names())
def test_assignment_is_sound(name, sandbox):
    report = verify(COURSE.assignment(name), sandbox)
    problems = [f"{c.name}: {'; '.join(c.details[:5])}" for c in report.checks if not c.ok]
    assert report.ok, "\n".join(problems)
    assert report.mutants, f"{name} has no mutants"


def test_the_course_has_assignments():
    assert "softmax" in COURSE.assignment_names()
