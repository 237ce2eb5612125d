"""The repository's own softmax assignment releases cleanly (once its content exists)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from autograder.authoring.release import build_release, find_release_leaks, release_differences
from autograder.course import Course

REPO = Path(__file__).resolve().parents[2]


def test_softmax_release_builds_without_leaks(tmp_path):
    public = REPO / "assignments" / "softmax"
    reference = REPO / "solutions" / "softmax" / "softmax.py"
    if not public.is_dir() and not reference.is_file():
        pytest.skip("the softmax course content is not in this repository yet")
    # From here on the content exists, so any failure to release it is a real failure.
    assignment = Course(REPO).assignment("softmax")
    out = tmp_path / "softmax"
    written = build_release(assignment, out)
    names = {p.relative_to(out).as_posix() for p in written}
    assert {"README.md", "assignment.toml", "softmax.py"} <= names
    assert any(n.startswith("tests/test_") for n in names)
    stub = (out / "softmax.py").read_text()
    ast.parse(stub)
    assert "raise NotImplementedError(" in stub
    assert find_release_leaks(assignment, out) == []
    assert build_release(assignment, tmp_path / "again") and all(
        (tmp_path / "again" / n).read_bytes() == (out / n).read_bytes() for n in names)
    if assignment.release_dir.is_dir():  # the committed release must be up to date
        assert release_differences(assignment) == []
        assert find_release_leaks(assignment) == []
