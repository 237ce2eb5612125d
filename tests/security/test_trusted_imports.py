"""Attack: files that shadow modules, planted where a trusted process might import them.

A TA grades from the folder that holds the uploads (`autograder grade toy *.py -j 2`), so the
working directory and the uploads hold whatever students named their files: ``json.py``,
``numpy.py``, ``pytest.py``, ``sitecustomize.py``, ``conftest.py``, a ``.pth``. Had any trusted
process (the CLI, a grading worker) imported one, it would forge every score. Each planted file
here, if imported on the trusted side, leaves a marker file and forges; the test proves no
marker appears and every score is the honest one, with several workers and on both backends.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import write
from tests.support.services import need

REFERENCE = '''
def double(x):
    # BEGIN SOLUTION
    return 2 * x
    # END SOLUTION
'''

TESTS = '''
import pytest

@pytest.mark.points(2)
def test_double(student):
    assert student.double(4) == 8, "double(4) should be 8"

@pytest.mark.points(1)
def test_double_zero(student):
    assert student.double(0) == 0
'''

# Each shadow, when imported on the trusted side, writes MARKER/<name> and tries to make every
# test pass. In the sandbox it is only student code (and earns nothing extra).
SHADOW = '''
import os, pathlib
pathlib.Path({marker!r}, {name!r}).write_text("imported by pid %d" % os.getpid())
def double(x):
    return 2 * x + 1
'''

SHADOW_NAMES = ["json", "numpy", "pytest", "sitecustomize", "conftest", "msgpack", "autograder"]


def _plant(folder: Path, marker: Path) -> list[Path]:
    planted = []
    for name in SHADOW_NAMES:
        planted.append(write(folder / f"{name}.py", SHADOW.format(marker=str(marker), name=name)))
    # A .pth runs its `import` lines when the folder is a site directory.
    write(folder / "evil.pth", f"import os; open({str(marker / 'pth')!r}, 'w').write('pth')\n")
    # A package directory named like a library, for good measure.
    write(folder / "rich" / "__init__.py", SHADOW.format(marker=str(marker), name="rich"))
    return planted


@pytest.mark.parametrize("backend", ["process", "docker"])
@pytest.mark.parametrize("uploads_inside_course", [False, True], ids=["outside", "inside"])
def test_shadowing_modules_in_the_working_directory_are_never_imported(tmp_path, backend,
                                                                       uploads_inside_course):
    if backend == "docker":
        from autograder.sandbox.docker import docker_status
        status = docker_status()
        need("docker", status is None, status or "")
    root = tmp_path / "course"
    write(root / "course.toml", 'name = "shadows"\n')
    write(root / "assignments/toy/assignment.toml",
          'name = "toy"\nmodules = ["toy"]\n[resources]\ntest_time_limit_s = 5\n'
          'time_limit_s = 60\nmemory_mb = 512\n')
    write(root / "assignments/toy/tests/test_public.py", TESTS)
    write(root / "solutions/toy/toy.py", REFERENCE)
    marker = tmp_path / "marker"
    marker.mkdir()
    uploads_dir = (root / "uploads") if uploads_inside_course else (tmp_path / "uploads")
    uploads_dir.mkdir()
    shadows = _plant(uploads_dir, marker)
    alice = write(uploads_dir / "alice.py", "def double(x):\n    return 2 * x\n")
    carol = write(uploads_dir / "carol.py", "def double(x):\n    return x + 3\n")
    out = tmp_path / "graded"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    autograder = str(Path(sys.executable).with_name("autograder"))
    proc = subprocess.run(
        [autograder, "grade", "toy", alice.name, carol.name, *(p.name for p in shadows),
         "-j", "2", "--backend", backend, "--course", str(root), "--output", str(out),
         "--format", "json"],
        cwd=uploads_dir, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in marker.iterdir()) == [], \
        f"a trusted process imported a planted file: {[p.read_text() for p in marker.iterdir()]}"
    scores = {r["submission"]: r["score"] for r in json.loads(proc.stdout)}
    assert scores["alice"] == 3, scores       # honest and correct
    assert scores["carol"] == 0, scores       # honest and wrong (4 + 3 != 8, 0 + 3 != 0)
    for name in SHADOW_NAMES:                 # as student code, each is simply wrong
        assert scores[name] == 0, (name, scores)
