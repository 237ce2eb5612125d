"""What grading loads: a student's `check` and every grading worker pay for each import, so the
grading path imports no database layer, no notebook schema validator and no plotting."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ["sqlalchemy", "alembic", "nbformat", "jsonschema", "pandas", "matplotlib", "sklearn"]


@pytest.mark.parametrize("module", ["autograder.harness.grader", "autograder.harness.warm",
                                    "autograder.harness.worker", "autograder.submissions",
                                    "autograder.cli"])
def test_the_grading_path_loads_no_database_notebook_or_plotting_library(module):
    code = (f"import sys, json, {module}; "
            f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert json.loads(out) == []


def test_the_gradebook_does_not_import_the_grader_and_grading_does_not_import_the_gradebook():
    code = ("import sys, json, autograder.harness.grader, autograder.harness.worker; "
            "print(json.dumps([m for m in sys.modules if m == 'gradebook.store' "
            "or m.startswith('gradebook.') and m != 'gradebook.errors']))")
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert json.loads(out) == []
