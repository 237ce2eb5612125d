"""The commands TAs and students script against, run as a user would run them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO, as_root

AUTOGRADER = [sys.executable, "-m", "autograder.cli"]
needs_root = pytest.mark.skipif(not as_root(), reason="grading uses the full process sandbox")


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*AUTOGRADER, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def declared_points(course: Path, name: str = "softmax") -> float:
    """The assignment's total as its assignment.toml declares it (verify holds the tests to it)."""
    from autograder.config import load_assignment

    return load_assignment(course / "assignments" / name / "assignment.toml").points


def public_test_count(release: Path) -> int:
    """How many public tests a release holds (by collecting them, as `check` runs them)."""
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                          "-p", "no:cacheprovider", "--disable-plugin-autoload",
                          str(release / "tests")], capture_output=True, text=True,
                         cwd=release).stdout
    return sum("::" in line for line in out.splitlines())


@pytest.fixture
def course(tmp_path):
    """A copy of the softmax assignment in a fresh course directory."""
    root = tmp_path / "course"
    for part in ("assignments", "solutions", "release"):
        shutil.copytree(REPO / part / "softmax", root / part / "softmax",
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "course.toml", root / "course.toml") if (REPO / "course.toml").exists() \
        else (root / "course.toml").write_text('name = "t"\n')
    return root


def test_release_is_byte_identical_when_rebuilt(course):
    first = {p.relative_to(course): p.read_bytes() for p in (course / "release").rglob("*")
             if p.is_file()}
    shutil.rmtree(course / "release")
    result = run("release", "softmax", cwd=course)
    assert result.returncode == 0, result.stderr
    second = {p.relative_to(course): p.read_bytes() for p in (course / "release").rglob("*")
              if p.is_file()}
    assert first == second


def test_release_of_unknown_assignment_says_which_exist(course):
    result = run("release", "nope", cwd=course)
    assert result.returncode != 0
    assert "no assignment 'nope'" in result.stderr and "softmax" in result.stderr


@needs_root
def test_grade_writes_gradescope_results_for_each_form(course, tmp_path):
    samples = REPO / "solutions/softmax/samples"
    zipped = tmp_path / "zipped.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.write(samples / "correct.py", "folder/softmax.py")
    out = tmp_path / "out"
    result = run("grade", "softmax", str(samples / "correct.py"), str(samples / "buggy.py"),
                 str(samples / "notebook.ipynb"), str(zipped), "--output", str(out),
                 "--format", "json", cwd=course)
    assert result.returncode == 0, result.stderr
    printed = {r["submission"]: r for r in json.loads(result.stdout)}
    assert set(printed) == {"correct", "buggy", "notebook", "zipped"}
    for name, r in printed.items():
        stored = json.loads((out / name / "results.json").read_text())
        assert stored["score"] == r["score"]
        assert {"score", "max_score", "tests", "backend", "resources"} <= set(stored)
        for t in stored["tests"]:
            assert {"name", "score", "max_score", "status", "output", "visibility"} <= set(t)
    total = declared_points(course)
    assert printed["correct"]["score"] == printed["correct"]["max_score"] == total
    assert printed["notebook"]["score"] == printed["zipped"]["score"] == total
    assert 0 < printed["buggy"]["score"] < total
    assert printed["correct"]["backend"] == "process"


@needs_root
def test_grade_table_shows_scores(course):
    samples = REPO / "solutions/softmax/samples"
    result = run("grade", "softmax", str(samples / "correct.py"), cwd=course)
    assert result.returncode == 0, result.stderr
    total = declared_points(course)
    assert f"{total:g} / {total:g}" in result.stdout and "correct" in result.stdout


@needs_root
def test_check_in_a_release_copy(course, tmp_path):
    mine = tmp_path / "my-softmax"
    shutil.copytree(course / "release" / "softmax", mine)
    tests = public_test_count(mine)
    stub = run("check", cwd=mine)
    assert stub.returncode == 1
    assert "not implemented" in stub.stdout and f"0 of {tests} public tests pass" in stub.stdout
    shutil.copy(REPO / "solutions/softmax/samples/buggy.py", mine / "softmax.py")
    buggy = run("check", cwd=mine)
    assert buggy.returncode == 1 and "relative error" in buggy.stdout
    shutil.copy(REPO / "solutions/softmax/samples/correct.py", mine / "softmax.py")
    good = run("check", cwd=mine)
    assert good.returncode == 0, good.stdout
    assert f"{tests} of {tests} public tests pass" in good.stdout


def test_check_outside_a_release_says_where_to_run_it(tmp_path):
    result = run("check", cwd=tmp_path)
    assert result.returncode != 0 and "assignment.toml" in result.stderr


@needs_root
def test_verify_reports_an_uncaught_mutant_and_a_stale_release(course):
    (course / "solutions/softmax/mutants/harmless.py").write_text(
        (course / "solutions/softmax/softmax.py").read_text())  # identical to the reference
    (course / "release/softmax/README.md").write_text("edited by hand\n")
    result = run("verify", "softmax", cwd=course)
    assert result.returncode == 1
    assert f"harmless keeps all {declared_points(course):g} points" in result.stdout
    assert "FAIL release is up to date" in result.stdout
    assert "ok   every test passes on the reference" in result.stdout


@needs_root
def test_demo_grades_the_samples(tmp_path):
    result = subprocess.run([*AUTOGRADER, "demo", "--output", str(tmp_path / "out")],
                            cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    scores = {p.parent.name: json.loads(p.read_text())
              for p in (tmp_path / "out").glob("*/results.json")}
    assert scores["correct"]["score"] == scores["correct"]["max_score"]
    assert scores["untouched_stub"]["score"] == 0
    assert scores["malicious"]["score"] == 0
    assert 0 < scores["buggy"]["score"] < scores["buggy"]["max_score"]


@needs_root
def test_check_gives_the_student_process_the_support_files(make_course, tmp_path):
    root = make_course({
        "assignments/toy/helpers.py": "def make_input():\n    return [1.0, 2.0]\n",
        "solutions/toy/toy.py": "def total(xs):\n    # BEGIN SOLUTION\n    return sum(xs)\n"
                                "    # END SOLUTION\n",
        "assignments/toy/tests/test_public.py":
            "def test_total(student, submission):\n"
            "    data = submission.module('helpers').make_input()\n"
            "    assert student.total(data) == 3.0\n",
    })
    toml = root / "assignments/toy/assignment.toml"
    toml.write_text(toml.read_text().replace('modules = ["toy"]',
                                             'modules = ["toy"]\nsupport_files = ["helpers.py"]'))
    assert run("release", "toy", cwd=root).returncode == 0
    mine = tmp_path / "my copy"
    shutil.copytree(root / "release/toy", mine)
    (mine / "toy.py").write_text("def total(xs):\n    return sum(xs)\n")
    result = run("check", cwd=mine)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 of 1 public tests pass" in result.stdout


# --- what a command loads before it starts the student side (issue 17) --------------------
def test_the_command_line_loads_no_service_gradebook_or_pytest_before_a_command_runs():
    code = ("import sys, json, autograder.cli, autograder.harness.grader; "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('pytest', '_pytest', 'gradebook', 'fastapi', 'celery', 'sqlalchemy', 'torch') "
            "or m.startswith(('autograder.service', 'autograder.similarity', "
            "'autograder.harness.plugin')))))")
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                         check=True, cwd=REPO).stdout
    assert json.loads(out) == []


def test_the_fork_server_preloads_torch_only_for_a_torch_assignment():
    from autograder.course import Course
    from autograder.harness.grader import preload_for
    from autograder.harness.session import runner_preload

    course = Course(REPO)
    assert preload_for(course.assignment("softmax")) == ("numpy",)
    assert "torch" in preload_for(course.assignment("training"))
    assert runner_preload((REPO / "release/softmax").glob("*.py")) == ("numpy",)
    assert "torch" in runner_preload((REPO / "release/training").glob("*.py"))


def test_every_command_is_listed_and_each_lazy_one_loads(tmp_path):
    result = run("--help", cwd=tmp_path)
    assert result.returncode == 0
    from autograder.cli import LAZY_COMMANDS
    for name in ("check", "grade", "verify", *LAZY_COMMANDS):
        assert f"  {name} " in result.stdout, name
    assert run("serve", "--help", cwd=tmp_path).returncode == 0
