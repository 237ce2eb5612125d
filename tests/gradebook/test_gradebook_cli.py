"""The commands TAs script against: exports read back with pandas, explain, record, stats, imports."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from autograder.cli import main
from gradebook.export import CANVAS_FIXED, FINAL_COLUMN, POINTS_POSSIBLE
from autograder.results import GradingResult
from autograder.results import TestResult as Check

UTC = dt.timezone.utc
AS_OF = "2026-12-31T00:00"


def at(text: str) -> dt.datetime:
    from zoneinfo import ZoneInfo
    return dt.datetime.fromisoformat(text).replace(tzinfo=ZoneInfo("America/New_York"))


def result(assignment: str, scores: list[float], submission: str = "s1", content: str = "") -> GradingResult:
    tests = tuple(Check(f"test_{i}", s, 5.0, "passed" if s == 5.0 else "failed")
                  for i, s in enumerate(scores))
    return GradingResult(assignment=assignment, submission=submission, tests=tests,
                         backend="process", content_hash=content)


def cli(db_url: str, course_dir: Path, *args: str, ok: bool = True):
    res = CliRunner().invoke(main, ["gradebook", "--db", db_url, "--course", str(course_dir), *args])
    if ok:
        assert res.exit_code == 0, res.output + repr(res.exception)
    return res


@pytest.fixture
def filled(gb):
    """s1: hw1 on time 10/10, hw2 two days late 8/10; s2: hw1 one day late 6/10; midterm scores."""
    for student, name, when, scores, run in [
        ("s1", "hw1", "2026-09-18T20:00", [5, 5], "r1"),
        ("s1", "hw2", "2026-10-04T20:00", [5, 3], "r2"),
        ("s2", "hw1", "2026-09-19T20:00", [5, 1], "r3"),
    ]:
        sub = gb.record_submission(student, name, f"hash-{run}", at(when))
        gb.record_result(sub.id, result(name, scores, student), run)
    from gradebook.csvfiles import parse_scores
    rows = parse_scores("student,assignment,score,max_score\ns1,midterm,90,100\ns2,midterm,60,100\n",
                        gb.config.zone)
    gb.import_scores(rows, "paper.csv")
    return gb


def test_csv_export_round_trips_the_policy_numbers(filled, db_url, course_dir, tmp_path):
    out = tmp_path / "grades.csv"
    cli(db_url, course_dir, "export", "--format", "csv", "--output", str(out), "--as-of", AS_OF)
    frame = pd.read_csv(out, dtype={"student_id": str}).set_index("student_id")
    grades = {g.student_id: g for g in filled.grades(at(AS_OF))}
    assert list(frame.index) == ["s1", "s2", "s3"]
    for sid, g in grades.items():
        row = frame.loc[sid]
        for a in g.assessments:
            assert row[a.name] == pytest.approx(a.points, abs=1e-4)
            assert row[f"{a.name} late days"] == a.late_days
        assert row["slack days used"] == g.slack_used and row["slack days left"] == g.slack_left
        assert row[FINAL_COLUMN] == pytest.approx(g.final, abs=1e-4)
        assert row["letter"] == g.letter
    assert frame.loc["s1", "hw2 late days"] == 2 and frame.loc["s1", "slack days left"] == 6
    assert frame.loc["s1", "midterm"] == 90
    assert frame.loc["s1", "project"] == 0  # due 2026-12-10, nothing submitted
    early = tmp_path / "early.csv"
    cli(db_url, course_dir, "export", "--output", str(early), "--as-of", "2026-11-01T00:00")
    before = pd.read_csv(early, dtype={"student_id": str}).set_index("student_id")
    assert pd.isna(before.loc["s1", "project"]) and pd.isna(before.loc["s1", "project late days"])


def test_xlsx_export_matches_the_csv(filled, db_url, course_dir, tmp_path):
    cli(db_url, course_dir, "export", "--format", "csv", "--output", str(tmp_path / "g.csv"),
        "--as-of", AS_OF)
    cli(db_url, course_dir, "export", "--format", "xlsx", "--output", str(tmp_path / "g.xlsx"),
        "--as-of", AS_OF)
    from_csv = pd.read_csv(tmp_path / "g.csv", dtype={"student_id": str}, keep_default_na=False)
    from_xlsx = pd.read_excel(tmp_path / "g.xlsx", sheet_name="Gradebook", dtype={"student_id": str},
                              keep_default_na=False)
    pd.testing.assert_frame_equal(from_csv, from_xlsx, check_dtype=False)
    sheets = pd.read_excel(tmp_path / "g.xlsx", sheet_name=None)
    assert set(sheets) == {"Gradebook", "Assessments", "Categories"}
    assert list(sheets["Categories"]["weight"]) == [35, 20, 30, 10, 5]


def test_canvas_export_has_canvas_columns_and_points_possible(filled, db_url, course_dir, tmp_path):
    out = tmp_path / "canvas.csv"
    cli(db_url, course_dir, "export", "--format", "canvas", "--output", str(out), "--as-of", AS_OF)
    frame = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(frame.columns[:5]) == CANVAS_FIXED
    assert list(frame.columns[5:]) == [s.name for s in filled.specs()]
    assert frame.iloc[0]["Student"] == POINTS_POSSIBLE and float(frame.iloc[0]["hw1"]) == 10
    s1 = frame[frame["SIS User ID"] == "s1"].iloc[0]
    assert (s1["Student"], s1["SIS Login ID"], s1["Section"]) == ("Ada Lovelace", "ada@uni.edu", "A")
    assert float(s1["hw2"]) == 8 and float(s1["midterm"]) == 90


def test_dropped_students_leave_the_export_unless_asked(filled, db_url, course_dir, tmp_path):
    cli(db_url, course_dir, "roster", "drop", "s3")
    out = tmp_path / "g.csv"
    cli(db_url, course_dir, "export", "--output", str(out), "--as-of", AS_OF)
    assert list(pd.read_csv(out, dtype=str)["student_id"]) == ["s1", "s2"]
    cli(db_url, course_dir, "export", "--output", str(out), "--as-of", AS_OF, "--include-dropped")
    assert list(pd.read_csv(out, dtype=str)["student_id"]) == ["s1", "s2", "s3"]


def test_explain_prints_the_derivation(filled, db_url, course_dir):
    out = cli(db_url, course_dir, "explain", "s1", "--as-of", AS_OF).output
    for needle in ("hw2 (homework; category homeworks (kind homework); out of 10 points)",
                   "-> 2 late days", "hw2: 2 days late, 8 left -> covered, 6 left",
                   "midterm (exam; category midterm (from its config)",
                   "manual score (paper.csv) (90 / 100)", "final: (", "best allocation"):
        assert needle in out, needle
    bad = cli(db_url, course_dir, "explain", "zz", ok=False)
    assert bad.exit_code == 1 and "not in the roster" in bad.output


def test_roster_import_command_reports_and_fails_cleanly(gb, db_url, course_dir, tmp_path):
    f = tmp_path / "r.csv"
    f.write_text("id,name,email\ns1,Ada Lovelace,ada@uni.edu\ns4,Dee,dee@uni.edu\n")
    out = cli(db_url, course_dir, "roster", "import", str(f)).output
    assert "1 added" in out and "not in r.csv: s2, s3" in out
    f.write_text("id,name\ns9,Zed\n")
    bad = cli(db_url, course_dir, "roster", "import", str(f), ok=False)
    assert bad.exit_code == 1 and "missing column email" in bad.output and "Traceback" not in bad.output


def test_record_results_directory_is_idempotent(gb, db_url, course_dir, tmp_path):
    graded = tmp_path / "graded"
    result("hw1", [5, 0], "s1", content="c1").write(graded / "s1" / "results.json")
    result("hw1", [5, 5], "s2", content="c2").write(graded / "s2" / "results.json")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("submission,student,submitted_at\ns1,s1,2026-09-18T22:00\n"
                        "s2,s2,2026-09-20T10:00\n")
    out = cli(db_url, course_dir, "record", str(graded), "--manifest", str(manifest)).output
    assert "recorded 2 results" in out
    cli(db_url, course_dir, "record", str(graded), "--manifest", str(manifest))
    subs = gb.submissions()
    assert len(subs) == 2 and all(len(gb.runs(s.id)) == 1 for s in subs)
    g = {x.student_id: x for x in gb.grades(at(AS_OF))}
    assert g["s1"].assessment("hw1").points == 5 and g["s2"].assessment("hw1").late_days == 2
    # Without a time the command refuses before writing anything.
    result("hw2", [5], "s3", content="c3").write(tmp_path / "more" / "s3" / "results.json")
    bad = cli(db_url, course_dir, "record", str(tmp_path / "more"), ok=False)
    assert "no submission time" in bad.output and len(gb.submissions()) == 2
    cli(db_url, course_dir, "record", str(tmp_path / "more" / "s3"), "--submitted-at",
        "2026-10-01T12:00")
    assert len(gb.submissions("s3")) == 1


def test_stats_writes_histograms_and_pass_rates(filled, db_url, course_dir, tmp_path):
    out_dir = tmp_path / "stats"
    out = cli(db_url, course_dir, "stats", "--output-dir", str(out_dir), "--as-of", AS_OF).output
    assert "tests with the lowest pass rates" in out
    pngs = sorted(p.name for p in out_dir.glob("*.png"))
    assert "assessment-hw1.png" in pngs and "final-grade.png" in pngs
    assert (out_dir / "assessment-hw1.png").read_bytes()[:4] == b"\x89PNG"
    rates = pd.read_csv(out_dir / "pass_rates.csv")
    assert list(rates["pass rate %"]) == sorted(rates["pass rate %"])  # lowest first
    by_test = rates.set_index(["assignment", "test"])["pass rate %"]
    assert by_test[("hw2", "test_1")] == 0 and by_test[("hw1", "test_1")] == 50
    assert by_test[("hw1", "test_0")] == 100
    dist = pd.read_csv(out_dir / "distributions.csv").set_index("assessment")
    assert dist.loc["hw1", "submitted"] == 2 and dist.loc["hw1", "students"] == 3


def test_scores_and_extension_commands(gb, db_url, course_dir, tmp_path):
    f = tmp_path / "project.csv"
    f.write_text("student,assignment,score,max_score,submitted_at\ns1,project,45,50,2026-12-11T10:00\n")
    assert "1 added" in cli(db_url, course_dir, "scores", "import", str(f)).output
    out = cli(db_url, course_dir, "extend", "s1", "project", "--days", "1").output
    assert "due 2026-12-11 23:59 EST" in out
    explained = cli(db_url, course_dir, "explain", "s1", "--as-of", AS_OF).output
    assert "extended to 2026-12-11 23:59 EST" in explained
    bad = cli(db_url, course_dir, "extend", "s1", "project", ok=False)
    assert "either a new due time or a number of days" in bad.output


@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")  # nbgrader's own API, building the file
def test_nbgrader_import(gb, db_url, course_dir, tmp_path, monkeypatch):
    from nbgrader.api import Gradebook as NbGradebook

    # nbgrader's Gradebook runs the `alembic` command: make the venv's one findable.
    venv_bin = str(Path(os.sys.executable).parent)
    monkeypatch.setenv("PATH", venv_bin + os.pathsep + os.environ.get("PATH", ""))
    path = tmp_path / "gradebook.db"
    nb = NbGradebook(f"sqlite:///{path}")
    nb.add_assignment("ps1", duedate=dt.datetime(2026, 9, 12, 3, 59))  # naive UTC, as nbgrader keeps it
    nb.add_notebook("p1", "ps1")
    nb.add_grade_cell("c1", "p1", "ps1", max_score=10, cell_type="code")
    nb.add_student("s1", first_name="Ada", last_name="Lovelace", email="ada@uni.edu")
    nb.add_student("n7", first_name="Nia", last_name="Nb")
    nb.add_submission("ps1", "s1", timestamp=dt.datetime(2026, 9, 13, 5, 0))
    nb.add_submission("ps1", "n7", timestamp=dt.datetime(2026, 9, 11, 5, 0))
    for student, score in (("s1", 7), ("n7", 9)):
        nb.find_grade("c1", "p1", "ps1", student).manual_score = score
    nb.db.commit()
    nb.close()
    before = path.read_bytes()
    out = cli(db_url, course_dir, "import-nbgrader", str(path)).output
    assert "1 students added" in out and "2 scores added" in out
    assert path.read_bytes() == before  # only read
    g = {x.student_id: x for x in gb.grades(at(AS_OF))}
    assert g["s1"].assessment("ps1").raw_points == 7 and g["s1"].assessment("ps1").late_days == 2
    assert g["n7"].assessment("ps1").points == 9
