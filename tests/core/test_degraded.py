"""Where the machine does not allow a protection, grading still works and says so, clearly."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO, as_root

SETPRIV = shutil.which("setpriv")


@pytest.mark.skipif(not as_root() or SETPRIV is None,
                    reason="needs root and setpriv to drop CAP_SYS_ADMIN")
def test_without_namespaces_grading_works_and_reports_what_is_missing(tmp_path):
    # Root without CAP_SYS_ADMIN, as inside an unprivileged container: unshare fails.
    sample = REPO / "solutions/softmax/samples/correct.py"
    result = subprocess.run(
        [SETPRIV, "--inh-caps=-sys_admin", "--bounding-set=-sys_admin", sys.executable, "-m",
         "autograder.cli", "grade", "softmax", str(sample), "--output", str(tmp_path / "out"),
         "--course", str(REPO)],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "COLUMNS": "400"})  # no wrapping inside the phrases checked
    assert result.returncode == 0, result.stderr
    assert "Sandbox protections not available" in result.stdout
    assert "unshare failed" in result.stdout and "file permissions" in result.stdout
    from autograder.course import Course
    points = Course.find(REPO).assignment("softmax").config.points
    assert f"{points:g} / {points:g}" in result.stdout  # the correct sample: full marks
    stored = (tmp_path / "out" / "correct" / "results.json").read_text()
    assert "unshare failed" in stored  # in the result too, not only on the terminal
