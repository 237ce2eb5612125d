"""Fixtures: a course directory, and a gradebook on SQLite and on PostgreSQL (a fresh schema per
test, dropped afterwards, so tests never see each other's rows)."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from autograder.config import load_course
from gradebook.store import Gradebook
from tests.support.services import empty_database

UTC = dt.timezone.utc

COURSE_TOML = """
name = "dl101"
timezone = "America/New_York"

[slack]
days = 8
penalty_per_late_submission = 0.10
grace_minutes = 15
max_late_days = 7

[assessments.midterm]
kind = "exam"
category = "midterm"
due = 2026-10-20T12:00:00
points = 100

[assessments.project]
kind = "project"
due = 2026-12-10T23:59:00
points = 50
"""

ASSIGNMENT_TOML = """
name = "{name}"
kind = "{kind}"
due = {due}
points = {points}
modules = ["{name}"]
"""

# name, kind, due (course time), points
ASSIGNMENTS = [
    ("hw1", "homework", "2026-09-18T23:59:00", 10),
    ("hw2", "homework", "2026-10-02T23:59:00", 10),
    ("hw3", "homework", "2026-10-30T23:59:00", 10),  # the night before DST ends (Nov 1)
    ("quiz1", "quiz", "2026-09-25T10:00:00", 5),
]


def write_course(root: Path, course_toml: str = COURSE_TOML,
                 assignments: list[tuple[str, str, str, float]] = ASSIGNMENTS) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "course.toml").write_text(textwrap.dedent(course_toml))
    for name, kind, due, points in assignments:
        d = root / "assignments" / name
        d.mkdir(parents=True, exist_ok=True)
        (d / "assignment.toml").write_text(
            ASSIGNMENT_TOML.format(name=name, kind=kind, due=due, points=points))
    return root


@pytest.fixture
def course_dir(tmp_path: Path) -> Path:
    return write_course(tmp_path / "course")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path):
    """A URL to an empty database: an SQLite file, or a fresh PostgreSQL schema."""
    with empty_database(request.param, tmp_path, "gradebook") as url:
        yield url


@pytest.fixture
def gb(db_url: str, course_dir: Path):
    """An open gradebook of the test course, assignments synced, roster of three students."""
    from gradebook.csvfiles import parse_roster

    book = Gradebook.open(db_url, load_course(course_dir))
    book.sync_assignments(course_dir)
    roster = course_dir / "roster.csv"
    roster.write_text("id,name,email,section\n"
                      "s1,Ada Lovelace,ada@uni.edu,A\n"
                      "s2,Bob Stone,bob@uni.edu,B\n"
                      "s3,Cy Young,cy@uni.edu,A\n")
    book.import_roster(parse_roster(roster))
    yield book
    book.close()
