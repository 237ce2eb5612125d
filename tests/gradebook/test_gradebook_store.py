"""The records, on SQLite and PostgreSQL: migrations, idempotent recording, all-or-nothing imports."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from autograder.config import load_course
from gradebook.csvfiles import parse_roster, parse_scores
from gradebook.errors import (GradebookError, NotAGradebook, ResultConflict, RosterError,
                              ScoresError, UnknownAssignment, UnknownStudent)
from autograder.results import GradingResult
from autograder.results import TestResult as Check
from gradebook.store import Gradebook, content_hash, database_url


UTC = dt.timezone.utc
AS_OF = dt.datetime(2026, 12, 31, tzinfo=UTC)


def result(assignment: str = "hw1", passed: int = 2, total: int = 2, content: str = "") -> GradingResult:
    tests = tuple(Check(f"test_{i}", 5.0 if i < passed else 0.0, 5.0,
                             "passed" if i < passed else "failed") for i in range(total))
    return GradingResult(assignment=assignment, submission="s1", tests=tests, backend="process",
                         content_hash=content)


def at(text: str) -> dt.datetime:
    from zoneinfo import ZoneInfo
    return dt.datetime.fromisoformat(text).replace(tzinfo=ZoneInfo("America/New_York"))


def test_open_creates_the_schema_and_reopening_is_a_no_op(db_url, course_dir):
    cfg = load_course(course_dir)
    with Gradebook.open(db_url, cfg) as gb:
        first = gb.course_id
    with Gradebook.open(db_url, cfg) as gb:
        assert gb.course_id == first
        tables = set(sa.inspect(gb.engine).get_table_names())
        with gb.engine.connect() as conn:
            version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    assert {"students", "submissions", "grading_runs", "extensions", "manual_scores", "staff"} <= tables
    # The newest migration shipped: every revision file in gradebook/migrations/versions.
    newest = max(p.name.split("_")[0] for p in
                 (Path(__file__).parents[2] / "gradebook/migrations/versions").glob("0*.py"))
    assert version == newest


def test_sync_reads_assignment_toml_and_course_toml_assessments(gb, course_dir):
    assert gb.assignment_names() == ["hw1", "hw2", "hw3", "midterm", "project", "quiz1"]
    hw1 = next(s for s in gb.specs() if s.name == "hw1")
    assert hw1.due == dt.datetime(2026, 9, 19, 3, 59, tzinfo=UTC)  # 23:59 EDT
    # Removing an assignment keeps its records but stops grading it.
    import shutil
    shutil.rmtree(course_dir / "assignments" / "hw3")
    report = gb.sync_assignments(course_dir)
    assert report.removed == ["hw3"] and "hw3" not in gb.assignment_names()


def test_recording_the_same_run_twice_leaves_one_result(gb):
    sub = gb.record_submission("s1", "hw1", {"hw1.py": b"print(1)"}, at("2026-09-18T20:00"))
    gb.record_result(sub.id, result(), "run-1")
    gb.record_result(sub.id, result(), "run-1")
    assert len(gb.runs(sub.id)) == 1
    with pytest.raises(ResultConflict, match="a regrade needs a new run id"):
        gb.record_result(sub.id, result(passed=1), "run-1")
    gb.record_result(sub.id, result(passed=1), "run-2")  # a regrade: the newest run counts
    assert [r.score for r in gb.runs(sub.id)] == [10, 5]
    assert gb.grades(AS_OF, only="s1")[0].assessment("hw1").points == 5


def test_two_graders_recording_the_same_run_at_once_leave_one_result(gb):
    sub = gb.record_submission("s1", "hw1", "hash-abc", at("2026-09-18T20:00"))
    errors = []

    def grader():
        try:
            gb.record_result(sub.id, result(), "run-shared")
        except Exception as e:  # pragma: no cover - the assertion below reports it
            errors.append(e)

    threads = [threading.Thread(target=grader) for _ in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors and len(gb.runs(sub.id)) == 1


def test_submissions_get_attempt_numbers_and_the_same_one_again_is_not_new(gb):
    files = {"hw1.py": b"x = 1\n"}
    first = gb.record_submission("s1", "hw1", files, at("2026-09-18T20:00"))
    again = gb.record_submission("s1", "hw1", files, at("2026-09-18T20:00"))
    second = gb.record_submission("s1", "hw1", {"hw1.py": b"x = 2\n"}, at("2026-09-18T21:00"))
    assert (first.id, first.attempt) == (again.id, 1) and second.attempt == 2
    assert first.content_hash == content_hash(files)
    stored = gb.submissions("s1")
    assert [s.attempt for s in stored] == [1, 2]


def test_a_result_for_other_files_or_another_assignment_is_refused(gb):
    sub = gb.record_submission("s1", "hw1", "hash-abc", at("2026-09-18T20:00"))
    with pytest.raises(GradebookError, match="it graded other files"):
        gb.record_result(sub.id, result(content="hash-xyz"), "run-1")
    with pytest.raises(GradebookError, match="is for 'hw2'"):
        gb.record_result(sub.id, result(assignment="hw2"), "run-1")
    assert gb.runs(sub.id) == []


def test_unknown_student_or_assignment_says_what_to_do(gb):
    with pytest.raises(UnknownStudent, match="roster import"):
        gb.record_submission("nobody", "hw1", "h", at("2026-09-18T20:00"))
    with pytest.raises(UnknownAssignment, match="known: hw1, hw2"):
        gb.record_submission("s1", "hw9", "h", at("2026-09-18T20:00"))
    with pytest.raises(ValueError, match="no time zone"):
        gb.record_submission("s1", "hw1", "h", dt.datetime(2026, 9, 18))


def test_a_bad_roster_changes_nothing(gb, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,name,email\ns1,Ada Renamed,ada@uni.edu\ns4,Dee,dee@uni\n")
    with pytest.raises(RosterError, match="line 3: e-mail 'dee@uni'"):
        gb.import_roster(parse_roster(bad))
    assert {s.student_id: s.name for s in gb.students()}["s1"] == "Ada Lovelace"
    # An e-mail that belongs to another stored student fails the whole file too.
    clash = tmp_path / "clash.csv"
    clash.write_text("id,name,email\ns5,Eve,eve@uni.edu\ns6,Fay,bob@uni.edu\n")
    with pytest.raises(UnknownStudent, match="belongs to student 's2'"):
        gb.import_roster(parse_roster(clash))
    assert [s.student_id for s in gb.students()] == ["s1", "s2", "s3"]


def test_roster_reimport_updates_reports_missing_and_drops_only_when_asked(gb, tmp_path):
    f = tmp_path / "r.csv"
    f.write_text("id,name,email,section\ns1,Ada Lovelace,ada@uni.edu,B\ns2,Bob Stone,bob@uni.edu,B\n")
    report = gb.import_roster(parse_roster(f))
    assert report.updated == ["s1"] and report.unchanged == ["s2"] and report.not_in_file == ["s3"]
    assert {s.student_id: s.status for s in gb.students()}["s3"] == "active"
    report = gb.import_roster(parse_roster(f), drop_missing=True)
    assert report.dropped == ["s3"]
    f.write_text("id,name,email\ns3,Cy Young,cy@uni.edu\n")
    assert gb.import_roster(parse_roster(f)).reactivated == ["s3"]


def test_a_dropped_student_keeps_records_but_leaves_the_grades(gb):
    sub = gb.record_submission("s3", "hw1", "h", at("2026-09-18T20:00"))
    gb.record_result(sub.id, result(), "run-s3")
    gb.set_student_status("s3", "dropped")
    assert [g.student_id for g in gb.grades(AS_OF)] == ["s1", "s2"]
    assert [g.student_id for g in gb.grades(AS_OF, include_dropped=True)] == ["s1", "s2", "s3"]
    dropped = gb.grades(AS_OF, only="s3")[0]
    assert dropped.status == "dropped" and dropped.assessment("hw1").points == 10
    assert "[dropped]" in dropped.lines[0]


def test_extension_by_days_keeps_the_wall_clock_time(gb):
    new_due = gb.grant_extension("s1", "hw3", days=2, reason="flu", granted_by="ta@uni.edu")
    # hw3 is due 2026-10-30 23:59 EDT; two days later is after the DST change: 23:59 EST.
    assert new_due.astimezone(UTC) == dt.datetime(2026, 11, 2, 4, 59, tzinfo=UTC)
    sub = gb.record_submission("s1", "hw3", "h", at("2026-11-01T23:00"))
    gb.record_result(sub.id, result("hw3"), "run-x")
    g = gb.grades(AS_OF, only="s1")[0]
    assert g.assessment("hw3").late_days == 0 and g.slack_used == 0
    gb.grant_extension("s1", "hw3", due=at("2026-10-31T23:59"))  # replaces the first one
    # 24 h 1 min after 2026-10-31 23:59 EDT (the clocks went back): 2 started 24-hour days.
    assert gb.grades(AS_OF, only="s1")[0].assessment("hw3").late_days == 2


def test_scores_import_is_all_or_nothing_and_replaces_on_reimport(gb, tmp_path, course_dir):
    zone = gb.config.zone
    f = tmp_path / "scores.csv"
    f.write_text("student,assignment,score,max_score,submitted_at\n"
                 "s1,midterm,80,100,\ns2,midterm,90,100,\ns9,midterm,50,100,\ns1,projct,40,50,\n")
    with pytest.raises(ScoresError) as info:
        gb.import_scores(parse_scores(f, zone), str(f))
    message = str(info.value)
    assert "line 4: student 's9' is not in the roster" in message
    assert "line 5: no assessment 'projct'" in message
    assert gb.grades(AS_OF, only="s1")[0].assessment("midterm").points == 0
    f.write_text("student,assignment,score,max_score,submitted_at\n"
                 "s1,midterm,80,100,\ns1,project,40,50,2026-12-12T10:00\n")
    assert gb.import_scores(parse_scores(f, zone), str(f)) == {"added": 2, "replaced": 0, "unchanged": 0}
    g = gb.grades(AS_OF, only="s1")[0]
    assert g.assessment("midterm").points == 80
    project = g.assessment("project")
    assert project.late_days == 2 and project.slack_days == 2  # a timed record is late like a submission
    f.write_text("student,assignment,score,max_score\ns1,midterm,85,100\n")
    assert gb.import_scores(parse_scores(f, zone), str(f))["replaced"] == 1
    assert gb.grades(AS_OF, only="s1")[0].assessment("midterm").points == 85


def test_staff_roles(gb):
    gb.add_staff("ta@uni.edu", "ta", "Tess")
    gb.add_staff("ta@uni.edu", "instructor")
    assert [(s.email, s.role, s.name) for s in gb.staff()] == [("ta@uni.edu", "instructor", "Tess")]
    with pytest.raises(GradebookError, match="use one of instructor, ta, grader"):
        gb.add_staff("x@uni.edu", "boss")


def test_times_come_back_aware_in_utc(gb):
    sub = gb.record_submission("s1", "hw1", "h", at("2026-09-18T20:00"))
    stored = gb.submissions("s1")[0]
    assert stored.submitted_at == dt.datetime(2026, 9, 19, 0, 0, tzinfo=UTC) == sub.submitted_at


def test_an_nbgrader_database_is_not_taken_for_ours(tmp_path):
    path = tmp_path / "gradebook.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE grade (id INTEGER)"))
        conn.execute(sa.text("CREATE TABLE submitted_assignment (id INTEGER)"))
    with pytest.raises(NotAGradebook, match="import-nbgrader"):
        Gradebook.open(f"sqlite:///{path}")


def test_database_url_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv("AUTOGRADER_DB", raising=False)
    assert database_url(tmp_path) == f"sqlite:///{tmp_path.resolve() / 'gradebook.sqlite'}"
    monkeypatch.setenv("AUTOGRADER_DB", "postgresql+psycopg://u@h/db")
    assert database_url(tmp_path) == "postgresql+psycopg://u@h/db"
    assert database_url(tmp_path, "sqlite:///x.db") == "sqlite:///x.db"


def test_the_models_match_the_migrations(db_url, course_dir):
    """A model changed without a new migration in gradebook/migrations/versions fails here."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from gradebook.models import Base
    # The grading service's tables (LTI's included) share the gradebook's metadata and migrations.
    import autograder.service.lti.models  # noqa: F401
    import autograder.service.models  # noqa: F401

    with Gradebook.open(db_url, load_course(course_dir)) as gb, gb.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_the_migrations_downgrade_and_upgrade_again(db_url, course_dir):
    from alembic import command
    from alembic.config import Config

    from gradebook.store import MIGRATIONS, upgrade

    with Gradebook.open(db_url, load_course(course_dir)) as gb:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with gb._write_engine.begin() as conn:  # transactional DDL on SQLite too
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "base")
        assert "students" not in sa.inspect(gb.engine).get_table_names()
        upgrade(gb._write_engine)
        assert "students" in sa.inspect(gb.engine).get_table_names()


def test_chosen_submission_counts_under_the_chosen_policy(db_url, course_dir):
    (course_dir / "course.toml").write_text((course_dir / "course.toml").read_text()
                                            + '\n[grading]\nscore_policy = "chosen"\n')
    from gradebook.csvfiles import parse_roster

    with Gradebook.open(db_url, load_course(course_dir)) as gb:
        gb.sync_assignments(course_dir)
        roster = course_dir / "r.csv"
        roster.write_text("id,name,email\ns1,Ada,ada@uni.edu\n")
        gb.import_roster(parse_roster(roster))
        for n, (score, when) in enumerate([(2, "2026-09-17T10:00"), (1, "2026-09-18T10:00")]):
            sub = gb.record_submission("s1", "hw1", f"h{n}", at(when))
            gb.record_result(sub.id, result(passed=score), f"run-{n}")
        assert gb.grades(AS_OF)[0].assessment("hw1").points == 5  # none chosen: the last
        gb.choose_submission(gb.submission_id("s1", "hw1", 1))
        assert gb.grades(AS_OF)[0].assessment("hw1").points == 10
        gb.choose_submission(gb.submission_id("s1", "hw1", 2))
        assert [s.chosen for s in gb.submissions("s1")] == [False, True]


def test_concurrent_submissions_get_distinct_attempt_numbers(gb):
    attempts, errors = [], []

    def submit(i: int) -> None:
        try:
            sub = gb.record_submission("s2", "hw2", {"hw2.py": f"v{i}".encode()},
                                       at("2026-10-01T10:00") + dt.timedelta(minutes=i))
            attempts.append(sub.attempt)
        except Exception as e:  # pragma: no cover - reported by the assertion
            errors.append(e)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors and sorted(attempts) == list(range(1, 9))


def test_a_crash_in_the_middle_of_an_import_stores_nothing_of_it(gb):
    from gradebook.csvfiles import RosterRow

    class Exploding:
        line, student_id, name, email = 3, "s8", "Hal", "hal@uni.edu"

        @property
        def section(self) -> str:  # read only while writing, after the first row was added
            raise RuntimeError("simulated crash")

    rows = [RosterRow(2, "s7", "Gus", "gus@uni.edu", "A"), Exploding()]
    with pytest.raises(RuntimeError, match="simulated crash"):
        gb.import_roster(rows)
    assert [s.student_id for s in gb.students()] == ["s1", "s2", "s3"]


def test_processes_opening_a_new_database_at_once_all_succeed(db_url, course_dir):
    import subprocess
    import sys

    script = ("import sys; from autograder.config import load_course; "
              "from gradebook.store import Gradebook; "
              "gb = Gradebook.open(sys.argv[1], load_course(sys.argv[2])); print(gb.course_id)")
    root = Path(__file__).resolve().parents[2]
    procs = [subprocess.Popen([sys.executable, "-c", script, db_url, str(course_dir)], cwd=root,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err for _, err in outs]
    assert len({out.strip() for out, _ in outs}) == 1


def test_a_submission_not_graded_yet_is_listed_but_not_counted(gb):
    first = gb.record_submission("s1", "hw1", "h1", at("2026-09-17T10:00"))
    gb.record_result(first.id, result(), "run-1")
    gb.record_submission("s1", "hw1", "h2", at("2026-09-18T10:00"))  # the grader has not run yet
    g = gb.grades(AS_OF, only="s1")[0]
    assert g.assessment("hw1").points == 10
    assert any("submission 2 received 2026-09-18 10:00:00 EDT: not graded yet" in line for line in g.lines)


def test_an_in_memory_gradebook_works(course_dir):
    from gradebook.csvfiles import parse_roster

    with Gradebook.open("sqlite://", load_course(course_dir)) as book:
        book.sync_assignments(course_dir)
        roster = course_dir / "r.csv"
        roster.write_text("id,name,email\ns1,Ada,ada@uni.edu\n")
        book.import_roster(parse_roster(roster))
        sub = book.record_submission("s1", "hw1", "h", at("2026-09-18T10:00"))
        book.record_result(sub.id, result(), "r")
        assert book.grades(AS_OF)[0].assessment("hw1").points == 10


def test_content_hash_matches_the_graders(tmp_path):
    from autograder.submissions import content_hash as graders_hash
    from gradebook.store import read_files

    (tmp_path / "sub" / "a-b").mkdir(parents=True)
    (tmp_path / "sub" / "a").mkdir()
    (tmp_path / "sub" / "a-b" / "x.py").write_bytes(b"x = 1\n")
    (tmp_path / "sub" / "a" / "b.py").write_bytes(b"y = 2\n")
    (tmp_path / "sub" / "softmax.py").write_bytes(b"def f(): pass\n")
    assert content_hash(read_files(tmp_path / "sub")) == graders_hash(tmp_path / "sub")


def test_extra_credit_is_kept_above_the_maximum(gb):
    """A results.json with an extra-credit test (max_score 0, Gradescope's convention) scores
    above its maximum; the gradebook keeps it rather than capping it."""
    tests = (Check("test_regular", 10.0, 10.0, "passed"),
             Check("test_bonus", 2.0, 0.0, "passed", extra_credit=True))
    bonus = GradingResult(assignment="hw1", submission="s1", tests=tests, backend="process")
    sub = gb.record_submission("s1", "hw1", "hash-bonus", at("2026-09-18T20:00"))
    gb.record_result(sub.id, bonus, "run-bonus")
    grade = gb.grades(AS_OF, only="s1")[0].assessment("hw1")
    assert grade.max_points == 10 and grade.points == 12
