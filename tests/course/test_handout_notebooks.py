"""A student may write their solution into the handout notebook and submit the notebook: then
its code cells, run top to bottom, are the module the tests import. This grades every
assignment's own handout, as released, filled in the way its title cell tells a student to (the
reference functions in the cell marked for them, every exercise cell solved), through intake and
the real sandbox, and expects full marks.

It failed before the handouts guarded their `from <module> import ...` line: once the notebook
is the module, that line imports the module from itself, half-initialised, and every test got 0.
"""

from __future__ import annotations

import json
import re

import pytest

from autograder.course import Course
from autograder.harness.grader import grade_uploads
from tests.conftest import REPO, as_root

COURSE = Course(REPO)
#: What a student is handed: each assignment, or each variant of an exam with variants.
HANDOUTS = {a.label: a for name in COURSE.assignment_names()
            for a in (COURSE.assignment(name).variants() or [COURSE.assignment(name)])}
FUNCTIONS_CELL = "your-functions"   # the handout cell where notebook-only students write code
SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


def _cells_by_id(notebook: dict) -> dict[str, dict]:
    return {cell["id"]: cell for cell in notebook["cells"] if "id" in cell}


def _solved(source: list[str] | str) -> str:
    """A solution cell of the handout's source notebook without its nbgrader markers."""
    text = "".join(source)
    return "".join(line for line in text.splitlines(keepends=True)
                   if line.strip() not in SOLUTION_MARKERS)


def filled_handout(name: str) -> dict:
    """The released handout of ``name`` filled in by a student who works in the notebook."""
    assignment = HANDOUTS[name]
    handout = assignment.config.handout
    released = json.loads((assignment.release_dir / handout).read_text())
    source = _cells_by_id(json.loads((assignment.public_dir / handout).read_text()))
    cells = _cells_by_id(released)
    assert FUNCTIONS_CELL in cells, (
        f"{name}: the handout has no cell with id {FUNCTIONS_CELL!r} where a student who works "
        f"in the notebook writes the functions")
    for cell_id, cell in cells.items():
        if cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
            cell["source"] = _solved(source[cell_id]["source"])
    (module,) = assignment.config.modules
    cells[FUNCTIONS_CELL]["source"] = assignment.reference_files()[module].read_text()
    return released


@pytest.mark.skipif(not as_root(), reason="grades through the full process sandbox")
@pytest.mark.parametrize("name", sorted(HANDOUTS))
def test_filled_in_handout_notebook_gets_full_marks(name, sandbox, tmp_path):
    assignment = HANDOUTS[name]
    upload = tmp_path / assignment.config.handout
    upload.write_text(json.dumps(filled_handout(name)))
    (result,) = grade_uploads(assignment, [upload], sandbox=sandbox)
    failed = [f"{t.name}: {t.outcome}: {(t.output or '').splitlines()[:1]}"
              for t in result.tests if t.status != "passed"]
    assert not failed, f"{name}: the filled-in handout notebook lost points:\n" + "\n".join(
        failed[:10]) + f"\n{result.output[:2000]}"
    assert result.score >= assignment.config.points


def test_every_handout_guards_its_import_of_the_module():
    """The cheap half of the proof, without a sandbox: the handout's import of the student's
    module runs only in Jupyter (``__name__ == "__main__"``), never when the notebook is the
    module."""
    for name, assignment in sorted(HANDOUTS.items()):
        (module,) = assignment.config.modules
        notebook = json.loads((assignment.release_dir / assignment.config.handout).read_text())
        for cell in notebook["cells"]:
            if cell["cell_type"] != "code":
                continue
            lines = "".join(cell["source"]).splitlines()
            for i, line in enumerate(lines):
                if re.match(rf"\s*(from {module} import|import {module}\b(?!\.))", line):
                    assert line.startswith("    ") and any(
                        "__name__" in previous for previous in lines[:i]), (
                        f"{name}: the handout imports {module} unguarded: {line.strip()!r}")
