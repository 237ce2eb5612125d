"""Shared fixtures: one warm process sandbox for the whole run, and tiny course trees."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def sandbox():
    from autograder.sandbox.process import ProcessSandbox

    with ProcessSandbox() as sb:
        yield sb


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


@pytest.fixture
def make_course(tmp_path):
    """Build a course with one assignment from a dict of relative path -> source."""

    def build(files: dict[str, str], name: str = "toy", modules: str = '["toy"]',
              resources: str = "test_time_limit_s = 5\ntime_limit_s = 60\nmemory_mb = 512") -> Path:
        root = tmp_path / "course"
        write(root / "course.toml", 'name = "test course"\n')
        write(root / "assignments" / name / "assignment.toml",
              f'name = "{name}"\nmodules = {modules}\n[resources]\n{resources}\n')
        for rel, text in files.items():
            write(root / rel, text)
        return root

    return build


def as_root() -> bool:
    return os.geteuid() == 0
