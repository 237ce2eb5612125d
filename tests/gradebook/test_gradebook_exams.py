"""Accommodations (once per student, every timed assessment) and per-exam overrides: stored,
replaced, revoked, audited, refused with a message when they make no sense, and applied where
they matter: the service's end time (``exam_allowance`` -> ``ends_at``) and the gradebook's due
time of the exam (a window extension moves it for that student)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from autograder.exams import ExamWindow, ends_at
from autograder.results import GradingResult
from autograder.results import TestResult as Check
from tests.gradebook.test_gradebook_cli import cli

ZONE = ZoneInfo("America/New_York")
QUIZ_DUE = dt.datetime(2026, 9, 25, 10, 0, tzinfo=ZONE)  # quiz1's due time (its closes)


def test_accommodation_gives_90_of_60_minutes(gb, db_url, course_dir):
    res = cli(db_url, course_dir, "accommodate", "s1", "--time-factor", "1.5", "--reason", "DSS letter")
    assert "x 1.5" in res.output
    allowance = gb.exam_allowance("s1", "quiz1")
    window = ExamWindow(QUIZ_DUE - dt.timedelta(hours=3), QUIZ_DUE, dt.timedelta(minutes=60))
    start = QUIZ_DUE - dt.timedelta(hours=2)
    assert ends_at(start, window, allowance) - start == dt.timedelta(minutes=90)
    # Another student has no allowance; the same exam is 60 minutes for them.
    assert ends_at(start, window, gb.exam_allowance("s2", "quiz1")) - start == dt.timedelta(minutes=60)


def test_accommodation_is_stored_once_and_replaced(gb, db_url, course_dir):
    cli(db_url, course_dir, "accommodate", "s1", "--time-factor", "1.5")
    cli(db_url, course_dir, "accommodate", "s1", "--time-factor", "2", "--extra-minutes", "10",
        "--by", "dss@uni.edu")
    allowance = gb.exam_allowance("s1", "quiz1")
    assert (allowance.time_factor, allowance.extra_minutes) == (2.0, 10.0)
    entries = gb.audit(student="s1")
    assert [e.action for e in entries] == ["accommodation set", "accommodation set"]
    assert entries[-1].detail == "time x1.5 -> time x2 +10 min"
    assert entries[-1].actor == "dss@uni.edu"
    cli(db_url, course_dir, "accommodate", "s1", "--revoke", "--reason", "withdrawn")
    assert gb.exam_allowance("s1", "quiz1").time_factor == 1.0
    assert gb.audit(student="s1")[-1].action == "accommodation revoked"


@pytest.mark.parametrize("args, says", [
    (["--time-factor", "0.5"], "from 1 to 10"),
    (["--extra-minutes", "-5"], "0 to 1440"),
    ([], "give --time-factor"),
    (["--revoke"], "no accommodation to revoke"),
])
def test_accommodation_mistakes_are_messages(gb, db_url, course_dir, args, says):
    res = cli(db_url, course_dir, "accommodate", "s1", *args, ok=False)
    assert res.exit_code != 0 and says in res.output
    assert "Traceback" not in res.output
    assert gb.audit(student="s1") == []


def test_unknown_student_is_a_message(gb, db_url, course_dir):
    res = cli(db_url, course_dir, "accommodate", "nobody", "--time-factor", "1.5", ok=False)
    assert res.exit_code != 0 and "not in the roster" in res.output


def test_exam_override_adds_to_the_accommodation(gb, db_url, course_dir):
    cli(db_url, course_dir, "accommodate", "s1", "--time-factor", "1.5", "--extra-minutes", "5")
    cli(db_url, course_dir, "exam-override", "s1", "quiz1", "--extra-minutes", "10",
        "--window-extension-minutes", "30", "--reason", "late start, fire alarm")
    allowance = gb.exam_allowance("s1", "quiz1")
    assert (allowance.time_factor, allowance.extra_minutes,
            allowance.window_extension_minutes) == (1.5, 15.0, 30.0)
    window = ExamWindow(QUIZ_DUE - dt.timedelta(hours=3), QUIZ_DUE, dt.timedelta(minutes=60))
    # Started 20 minutes before closes: 105 minutes of own time, clamped at closes + 30 min.
    start = QUIZ_DUE - dt.timedelta(minutes=20)
    assert ends_at(start, window, allowance) == QUIZ_DUE + dt.timedelta(minutes=30)
    entry = gb.audit(student="s1", assignment="quiz1")[-1]
    assert (entry.action, entry.detail, entry.reason) == (
        "exam override set", "none -> +10 min, window +30 min", "late start, fire alarm")
    cli(db_url, course_dir, "exam-override", "s1", "quiz1", "--revoke")
    assert gb.exam_allowance("s1", "quiz1").window_extension_minutes == 0
    assert gb.audit(student="s1", assignment="quiz1")[-1].action == "exam override revoked"


@pytest.mark.parametrize("args, says", [
    (["s1", "hw1", "--extra-minutes", "10"], "not a timed exam or quiz"),
    (["s1", "quiz1"], "give --extra-minutes or --window-extension-minutes"),
    (["s1", "quiz1", "--extra-minutes", "-1"], "0 to 10080"),
    (["s1", "nope", "--extra-minutes", "5"], "no assignment 'nope'"),
    (["s1", "quiz1", "--revoke"], "no override on quiz1"),
])
def test_exam_override_mistakes_are_messages(gb, db_url, course_dir, args, says):
    res = cli(db_url, course_dir, "exam-override", *args, ok=False)
    assert res.exit_code != 0 and says in res.output, res.output
    assert "Traceback" not in res.output


def _quiz_points(gb, student: str) -> tuple[str, float]:
    grade = next(g for g in gb.grades(as_of=QUIZ_DUE + dt.timedelta(days=30)) if g.student_id == student)
    quiz = next(a for a in grade.assessments if a.name == "quiz1")
    return quiz.status, quiz.points


def test_window_extension_moves_the_exams_due_time_for_that_student(gb):
    """A quiz closes hard at its due time (plus the 15-minute grace): work received 40 minutes
    after it counts only for the student whose window was extended by an hour."""
    result = GradingResult(assignment="quiz1", submission="x", backend="process",
                           tests=(Check("test_a", 5.0, 5.0, "passed"),))
    for student in ("s1", "s2"):
        sub = gb.record_submission(student, "quiz1", f"hash-{student}",
                                   QUIZ_DUE + dt.timedelta(minutes=40))
        gb.record_result(sub.id, result, f"run-{student}")
    gb.set_exam_override("s1", "quiz1", window_extension_minutes=60)
    assert _quiz_points(gb, "s1") == ("on_time", 5.0)
    status, points = _quiz_points(gb, "s2")
    assert status == "not_accepted" and points == 0.0
