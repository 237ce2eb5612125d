"""build_release: the student bundle, deterministic, cleaned of stale files, never outside."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from autograder.authoring.errors import AuthoringError
from autograder.authoring.release import (
    RELEASE_STEPS, build_release, plan_release, release_differences)
from autograder.config import ConfigError


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_release_holds_stubs_support_handout_tests_config_readme(assignment):
    written = build_release(assignment)
    out = assignment.release_dir
    assert written == sorted(written)
    assert [p.relative_to(out).as_posix() for p in written] == [
        "README.md", "assignment.toml", "helpers.py", "tests/conftest.py", "tests/test_public.py",
        "toy.ipynb", "toy_softmax.py"]
    stub = (out / "toy_softmax.py").read_text()
    assert 'raise NotImplementedError("softmax: replace this line' in stub
    assert 'raise NotImplementedError("Scaler.scale: replace this line' in stub
    assert "exps.sum" not in stub and '"""Row-wise softmax of a 2-D array."""' in stub
    public = assignment.public_dir
    assert (out / "assignment.toml").read_bytes() == (public / "assignment.toml").read_bytes()
    assert (out / "tests/test_public.py").read_bytes() == (public / "tests/test_public.py").read_bytes()
    assert (out / "helpers.py").read_bytes() == (public / "helpers.py").read_bytes()
    notebook = json.loads((out / "toy.ipynb").read_text())
    assert all(c.get("outputs", []) == [] for c in notebook["cells"])
    readme = (out / "README.md").read_text()
    for expected in ("# Toy softmax", "`toy_softmax.py`", "- `softmax`", "- `Scaler.scale`",
                     "autograder check", "toy.ipynb", "2026-09-18 23:59"):
        assert expected in readme


def test_rebuild_is_byte_identical_and_has_lf_only(assignment, tmp_path):
    build_release(assignment)
    first = tree(assignment.release_dir)
    other = tmp_path / "again"
    build_release(assignment, other)
    build_release(assignment)
    assert tree(assignment.release_dir) == first == tree(other)
    for name, content in first.items():
        assert b"\r" not in content, name


def test_stale_files_and_litter_are_removed(assignment):
    build_release(assignment)
    out = assignment.release_dir
    (out / "old_module.py").write_text("stale")
    (out / "tests" / "old").mkdir()
    (out / "tests" / "old" / "test_gone.py").write_text("stale")
    (out / "__pycache__").mkdir()
    (out / "__pycache__" / "toy_softmax.cpython-311.pyc").write_bytes(b"\0")
    (assignment.public_tests_dir / "test_public.py").unlink()
    written = build_release(assignment)
    names = set(tree(out))
    assert "old_module.py" not in names and "tests/old/test_gone.py" not in names
    assert "tests/test_public.py" not in names
    assert not (out / "__pycache__").exists() and not (out / "tests" / "old").exists()
    assert sorted(out / n for n in names) == written


def test_pycache_and_dotfiles_in_sources_are_not_copied(assignment):
    cache = assignment.public_tests_dir / "__pycache__"
    cache.mkdir()
    (cache / "test_public.cpython-311.pyc").write_bytes(b"\0")
    (assignment.public_tests_dir / "stray.pyc").write_bytes(b"\0")
    (assignment.public_tests_dir / ".pytest_cache").mkdir()
    (assignment.public_tests_dir / "data.npz").write_bytes(b"PK\x03\x04binary")
    build_release(assignment)
    names = set(tree(assignment.release_dir))
    assert not any("__pycache__" in n or n.endswith(".pyc") or "/." in n for n in names)
    assert "tests/data.npz" in names


def test_symlinks_in_out_dir_are_removed_not_followed(assignment, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    out = assignment.release_dir
    out.mkdir(parents=True)
    os.symlink(outside, out / "tests")  # a release subfolder that points elsewhere
    (outside / "keep.txt").write_text("untouched")
    build_release(assignment)
    assert not (out / "tests").is_symlink() and (out / "tests" / "test_public.py").is_file()
    assert sorted(p.name for p in outside.iterdir()) == ["keep.txt"]


def test_support_file_outside_assignment_is_refused(assignment):
    toml = assignment.public_dir / "assignment.toml"
    toml.write_text(toml.read_text().replace('["helpers.py"]', '["../../solutions/toy/toy_softmax.py"]'))
    with pytest.raises(AuthoringError, match="outside"):
        build_release(type(assignment)(assignment.course_root, assignment.name))


def test_missing_reference_and_support_file_say_what_to_do(assignment):
    (assignment.public_dir / "helpers.py").unlink()
    with pytest.raises(AuthoringError, match=r"helpers\.py: support file not found"):
        build_release(assignment)
    (assignment.solution_dir / "toy_softmax.py").unlink()
    with pytest.raises(AuthoringError, match=r"solutions/toy/toy_softmax\.py: reference module not found"):
        build_release(assignment)


def test_bad_marker_fails_before_anything_is_written(assignment):
    build_release(assignment)
    before = tree(assignment.release_dir)
    ref = assignment.solution_dir / "toy_softmax.py"
    ref.write_text(ref.read_text().replace("    # END SOLUTION\n", "", 1))
    with pytest.raises(ConfigError, match=r"solutions/toy/toy_softmax\.py:17: BEGIN SOLUTION inside the region opened at line 8"):
        build_release(assignment)
    assert tree(assignment.release_dir) == before


def test_two_sources_for_one_release_path_are_refused(assignment):
    (assignment.public_dir / "toy_softmax.py").write_text("# a support file named like the module\n")
    toml = assignment.public_dir / "assignment.toml"
    toml.write_text(toml.read_text().replace('["helpers.py"]', '["helpers.py", "toy_softmax.py"]'))
    with pytest.raises(AuthoringError, match="both be released as toy_softmax.py"):
        build_release(type(assignment)(assignment.course_root, assignment.name))


def test_out_dir_holding_course_sources_is_refused(assignment):
    with pytest.raises(AuthoringError, match="would delete course sources"):
        build_release(assignment, assignment.course_root)
    with pytest.raises(AuthoringError, match="would delete course sources"):
        build_release(assignment, assignment.course_root / "assignments")
    assert (assignment.public_dir / "assignment.toml").is_file()


def test_plan_is_a_readable_list_of_named_steps(assignment):
    assert [s.__name__ for s in RELEASE_STEPS] == [
        "stub_modules", "support_files", "handout_notebook", "public_tests",
        "assignment_config", "student_readme"]
    paths = [f.path for f in plan_release(assignment)]
    assert paths == sorted(paths)


def test_release_differences(assignment):
    assert release_differences(assignment) == [f"release/toy/: missing; run `autograder release toy` and commit the result"]
    build_release(assignment)
    assert release_differences(assignment) == []
    out = assignment.release_dir
    (out / "__pycache__").mkdir()
    (out / "__pycache__" / "x.pyc").write_bytes(b"\0")
    assert release_differences(assignment) == []  # ignored litter
    (out / "extra.py").write_text("x = 1\n")
    (out / "tests" / "conftest.py").unlink()
    stub = out / "toy_softmax.py"
    stub.write_text(stub.read_text().replace("import numpy as np", "import numpy"))
    diffs = release_differences(assignment)
    assert len(diffs) == 3
    assert diffs[0].startswith("release/toy/extra.py: extra")
    assert diffs[1].startswith("release/toy/tests/conftest.py: missing")
    assert diffs[2].startswith("release/toy/toy_softmax.py: differs from a fresh build (first difference at line 3)")
    assert all("autograder release toy" in d for d in diffs)


def test_each_step_alone(assignment):
    from autograder.authoring import release as r

    assert [f.path for f in r.stub_modules(assignment)] == ["toy_softmax.py"]
    assert [f.path for f in r.support_files(assignment)] == ["helpers.py"]
    assert [f.path for f in r.handout_notebook(assignment)] == ["toy.ipynb"]
    assert [f.path for f in r.public_tests(assignment)] == ["tests/conftest.py", "tests/test_public.py"]
    assert [f.path for f in r.assignment_config(assignment)] == ["assignment.toml"]
    (readme,) = r.student_readme(assignment)
    assert readme.path == "README.md" and readme.content.endswith(b"\n")


def test_assignment_without_handout_or_tests(tmp_path):
    from .conftest import build_fake_course

    course = build_fake_course(tmp_path / "c", name="bare", handout=False)
    assignment = course.assignment("bare")
    for path in sorted(assignment.public_tests_dir.iterdir()):
        path.unlink()
    assignment.public_tests_dir.rmdir()
    names = [p.name for p in build_release(assignment)]
    assert names == ["README.md", "assignment.toml", "helpers.py", "toy_softmax.py"]
