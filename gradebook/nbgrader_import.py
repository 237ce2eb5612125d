"""Bringing a course over from nbgrader: its ``gradebook.db`` becomes students, assessments,
extensions and manual scores (timed, so our late policy applies to them, not nbgrader's
``late_submission_penalty``). The nbgrader file is only read."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import sqlalchemy as sa

from gradebook.csvfiles import RosterRow, ScoreRow
from gradebook.errors import GradebookError
from gradebook.store import Gradebook

UTC = dt.timezone.utc


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    # nbgrader stores naive UTC times.
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def import_nbgrader(gb: Gradebook, path: Path) -> str:
    """Import nbgrader's gradebook at ``path``; returns a one-paragraph report. Assessments that
    already exist in our gradebook keep our config; new ones are recorded as homeworks."""
    from nbgrader import api as nbapi
    from sqlalchemy.orm import Session

    path = Path(path)
    # Read-only, and through nbgrader's own table classes (its score columns are computed in SQL),
    # not nbgrader's Gradebook class, which would run its migrations on the file.
    engine = sa.create_engine(f"sqlite:///file:{path.resolve()}?mode=ro&uri=true")
    try:
        names = set(sa.inspect(engine).get_table_names())
        if not {"assignment", "student", "submitted_assignment"} <= names:
            raise GradebookError(f"{path} is not nbgrader's gradebook.db (no assignment/student/"
                                 f"submitted_assignment tables)")
        with Session(engine) as nb:
            students = [RosterRow(0, s.id, " ".join(p for p in (s.first_name, s.last_name) if p)
                                  or s.id, s.email or "", "")
                        for s in nb.scalars(sa.select(nbapi.Student))]
            assignments, scores, extensions = {}, [], []
            for a in nb.scalars(sa.select(nbapi.Assignment)):
                max_score = float(a.max_score or 0)
                assignments[a.name] = dict(title=a.name, kind="homework", category="",
                                           due=_utc(a.duedate), points=max_score or None,
                                           source="nbgrader")
                for sub in a.submissions:
                    scores.append(ScoreRow(0, sub.student.id, a.name, float(sub.score or 0),
                                           float(sub.max_score or max_score), _utc(sub.timestamp)))
                    if sub.extension and sub.extension > dt.timedelta(0) and a.duedate:
                        extensions.append((sub.student.id, a.name,
                                           _utc(a.duedate) + sub.extension))
    finally:
        engine.dispose()

    known = {s.student_id for s in gb.students()}
    new_students = [s for s in students if s.student_id not in known]
    existing = set(gb.assignment_names())
    scores = [s for s in scores if s.max_score > 0]
    with gb.transaction():  # all of it or none of it
        if new_students:
            gb.import_roster(new_students)
        report = gb._sync({k: v for k, v in assignments.items() if k not in existing},
                          keep_others=True)
        counts = gb.import_scores(scores, f"nbgrader:{path.name}") if scores else {"added": 0}
        for student, assignment, due in extensions:
            gb.grant_extension(student, assignment, due=due,
                               reason=f"nbgrader extension ({path.name})", granted_by="nbgrader")
    return (f"{path}: {len(new_students)} students added ({len(students) - len(new_students)} "
            f"already here), {len(report.added)} assessments added, {counts.get('added', 0)} "
            f"scores added ({counts.get('replaced', 0)} replaced), {len(extensions)} extensions")
