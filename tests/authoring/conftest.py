"""A small fake course in tmp_path: one assignment with a reference, tests, mutants, handout."""

from __future__ import annotations

import textwrap
from pathlib import Path

import nbformat
import pytest

from autograder.course import Course

REFERENCE = '''\
"""Toy softmax module."""

import numpy as np


def softmax(x):
    """Row-wise softmax of a 2-D array."""
    # BEGIN SOLUTION
    shifted = x - x.max(axis=1, keepdims=True)
    exps = np.exp(shifted)
    return exps / exps.sum(axis=1, keepdims=True)
    # END SOLUTION


class Scaler:
    def scale(self, x):
        """Twice x."""
        ### BEGIN SOLUTION
        doubled_value = np.multiply(x, 2.0)
        return doubled_value
        ### END SOLUTION
'''

PUBLIC_TEST = '''\
import numpy as np


def test_rows_sum_to_one(student):
    out = student.softmax(np.zeros((2, 3)))
    assert np.allclose(out.sum(axis=1), 1.0)
'''

HIDDEN_TEST = '''\
import numpy as np


def test_secret_large_logits(student, reference):
    x = np.full((2, 3), 1000.0)
    assert np.allclose(student.softmax(x), reference.softmax(x))
'''

MUTANT = '''\
"""softmax without subtracting the row maximum: exp overflows on large logits."""

import numpy as np


def softmax(x):
    exps = np.exp(x)
    return exps / exps.sum(axis=1, keepdims=True)
'''


def write_handout(path: Path) -> None:
    """A notebook with a markdown cell, an nbgrader solution cell with outputs, a plain cell."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    intro = nbformat.v4.new_markdown_cell("# Softmax\nImplement `softmax`.", id="intro")
    solution = nbformat.v4.new_code_cell(
        "def notebook_helper(x):\n    ### BEGIN SOLUTION\n    centred = x - x.mean(axis=0, keepdims=True)\n"
        "    return centred\n    ### END SOLUTION", id="solution",
        metadata={"nbgrader": {"solution": True, "grade": False, "grade_id": "helper",
                               "locked": False, "schema_version": 3}})
    solution.execution_count = 3
    solution.outputs = [nbformat.v4.new_output("stream", name="stdout", text="secret output 42\n")]
    plain = nbformat.v4.new_code_cell("import numpy as np\nprint(np.arange(3))", id="plain")
    plain.execution_count = 4
    plain.outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "[0 1 2]"},
                                            execution_count=4)]
    nb.cells = [intro, solution, plain]
    nbformat.write(nb, str(path))


def build_fake_course(root: Path, name: str = "toy", handout: bool = True) -> Course:
    public = root / "assignments" / name
    solutions = root / "solutions" / name
    (public / "tests").mkdir(parents=True)
    (solutions / "tests").mkdir(parents=True)
    (solutions / "mutants").mkdir()
    (root / "course.toml").write_text('name = "fake"\n')
    (public / "assignment.toml").write_text(textwrap.dedent(f'''\
        name = "{name}"
        title = "Toy softmax"
        modules = ["toy_softmax"]
        support_files = ["helpers.py"]
        due = 2026-09-18T23:59:00
        {'handout = "toy.ipynb"' if handout else ''}
        '''))
    (public / "helpers.py").write_text("def make_logits():\n    return [[1.0, 2.0]]\n")
    (public / "tests" / "test_public.py").write_text(PUBLIC_TEST)
    (public / "tests" / "conftest.py").write_text("# public fixtures\n")
    (solutions / "toy_softmax.py").write_text(REFERENCE)
    (solutions / "tests" / "test_hidden_softmax.py").write_text(HIDDEN_TEST)
    (solutions / "mutants" / "no_max_shift.py").write_text(MUTANT)
    if handout:
        write_handout(public / "toy.ipynb")
    return Course(root)


@pytest.fixture
def course(tmp_path: Path) -> Course:
    return build_fake_course(tmp_path / "course")


@pytest.fixture
def assignment(course: Course):
    return course.assignment("toy")
