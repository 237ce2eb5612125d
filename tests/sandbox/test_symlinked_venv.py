"""The platform installed in a virtualenv reached through a symlink (a home folder that is a
link, as on many shared machines): a student's module that imports a numpy submodule loaded on
use (``numpy.ma``) still gets full marks. The sandbox binds libraries at their real paths; the
fork server must import them by those paths too, or the student is charged with an error."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def test_a_symlinked_virtualenv_grades_a_module_importing_numpy_ma(tmp_path):
    from autograder.authoring.release import build_release
    from autograder.course import Course
    from autograder.demo import build_demo_course

    if sys.prefix == sys.base_prefix:
        pytest.skip("runs only from a virtualenv (the README's set-up makes one)")
    link = tmp_path / "venv-link"
    link.symlink_to(sys.prefix, target_is_directory=True)
    root = build_demo_course(tmp_path / "course")
    build_release(Course(root).assignment("softmax"))
    correct = (root / "solutions/softmax/samples/correct.py").read_text()
    assert "import numpy as np\n" in correct
    upload = tmp_path / "uploads" / "uses_ma.py"
    upload.parent.mkdir()
    upload.write_text(correct.replace("import numpy as np\n",
                                      "import numpy as np\nimport numpy.ma\n", 1))
    done = subprocess.run(
        [str(link / "bin" / "python"), "-m", "autograder.cli", "grade", "softmax", str(upload),
         "--course", str(root), "--backend", "process", "--output", str(tmp_path / "graded")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads((tmp_path / "graded" / "uses_ma" / "results.json").read_text())
    wrong = [(t["name"], t.get("output", "")[:300]) for t in result["tests"]
             if t.get("outcome") != "passed"]
    assert not wrong, wrong
