"""Tables out of the gradebook: CSV, Canvas's gradebook import, Excel. pandas does the tables;
the numbers are the policy's (:func:`gradebook.policy.grade_student`), never recomputed here."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Sequence

import pandas as pd

from autograder.config import CourseConfig
from gradebook.errors import GradebookError
from gradebook.policy import AssessmentSpec, StudentGrade

FORMATS = ("csv", "canvas", "xlsx")
#: The overall grade's column, apart from the category columns (a category may be called "final").
FINAL_COLUMN = "final grade %"
LETTER_COLUMN = "letter"
CANVAS_FIXED = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
POINTS_POSSIBLE = "    Points Possible"


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def category_column(category: str) -> str:
    """The column of a category's percentage: ``final category %`` beside ``final grade %``."""
    return f"{category} category %"


def _unique(columns: list[str]) -> list[str]:
    """Refuse two columns of the same name: a reader would get one and lose the other."""
    clash = sorted(name for name, n in Counter(columns).items() if n > 1)
    if clash:
        raise GradebookError(f"the export would have two columns named {', '.join(map(repr, clash))}; "
                             f"rename the assessment or category that makes the clash in "
                             f"course.toml or its assignment.toml")
    return columns


def gradebook_frame(grades: Sequence[StudentGrade], specs: Sequence[AssessmentSpec],
                    course: CourseConfig, people: dict[str, dict[str, str]]) -> pd.DataFrame:
    """One row per student: each assessment's points after penalties and its late days, slack
    days used and left, each category's percentage, the final percentage and the letter.
    An assessment that does not count yet (not due) is empty."""
    rows = []
    for g in grades:
        who = people.get(g.student_id, {})
        row: dict[str, object] = {"student_id": g.student_id, "name": g.name,
                                  "email": who.get("email", ""), "section": who.get("section", ""),
                                  "status": g.status}
        for spec in specs:
            a = g.assessment(spec.name)
            row[spec.name] = _r(a.points) if a.counted else None
            row[f"{spec.name} late days"] = a.late_days if a.counted else None
        row["slack days used"] = g.slack_used
        row["slack days left"] = g.slack_left
        for cat in course.categories:
            row[category_column(cat)] = _r(g.categories.get(cat))
        row[FINAL_COLUMN] = _r(g.final)
        row[LETTER_COLUMN] = g.letter
        rows.append(row)
    columns = _unique(["student_id", "name", "email", "section", "status"]
                      + [c for s in specs for c in (s.name, f"{s.name} late days")]
                      + ["slack days used", "slack days left"]
                      + [category_column(c) for c in course.categories]
                      + [FINAL_COLUMN, LETTER_COLUMN])
    return pd.DataFrame(rows, columns=columns)


def canvas_frame(grades: Sequence[StudentGrade], specs: Sequence[AssessmentSpec],
                 people: dict[str, dict[str, str]]) -> pd.DataFrame:
    """Canvas's gradebook import: Student, ID, SIS User ID, SIS Login ID, Section, then one
    column per assignment (points after penalties), after a "Points Possible" row. ID (Canvas's
    own user id) is left empty: Canvas matches students by SIS User ID."""
    header = _unique(CANVAS_FIXED + [s.title or s.name for s in specs])
    rows = [[POINTS_POSSIBLE, "", "", "", ""] + [_r(s.max_points or 0.0) for s in specs]]
    for g in grades:
        who = people.get(g.student_id, {})
        row = [g.name or g.student_id, "", g.student_id, who.get("email", ""), who.get("section", "")]
        for spec in specs:
            a = g.assessment(spec.name)
            row.append(_r(a.points) if a.counted else None)
        rows.append(row)
    return pd.DataFrame(rows, columns=header)


def assessments_frame(specs: Sequence[AssessmentSpec], course: CourseConfig) -> pd.DataFrame:
    from gradebook.policy import fmt_time, resolve_category

    return pd.DataFrame([{"assessment": s.name, "title": s.title, "kind": s.kind,
                          "category": resolve_category(s, course.categories)[0],
                          "due": fmt_time(s.due, course.zone) if s.due else "",
                          "max points": s.max_points} for s in specs])


def write_export(fmt: str, output: Path, grades: Sequence[StudentGrade],
                 specs: Sequence[AssessmentSpec], course: CourseConfig,
                 people: dict[str, dict[str, str]]) -> Path:
    """Write ``grades`` as ``fmt`` (csv, canvas or xlsx) to ``output``, atomically."""
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}: use one of {', '.join(FORMATS)}")
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    if fmt == "canvas":
        canvas_frame(grades, specs, people).to_csv(tmp, index=False)
    elif fmt == "csv":
        gradebook_frame(grades, specs, course, people).to_csv(tmp, index=False)
    else:
        with pd.ExcelWriter(tmp, engine="openpyxl") as xl:
            gradebook_frame(grades, specs, course, people).to_excel(xl, sheet_name="Gradebook",
                                                                    index=False)
            assessments_frame(specs, course).to_excel(xl, sheet_name="Assessments", index=False)
            pd.DataFrame([{"category": n, "weight": c.weight, "aggregate": c.aggregate}
                          for n, c in course.categories.items()]).to_excel(
                xl, sheet_name="Categories", index=False)
    tmp.replace(output)
    return output
