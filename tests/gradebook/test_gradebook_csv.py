"""Roster and scores CSV files: every problem named by line, with the fix."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gradebook.csvfiles import parse_roster, parse_scores
from gradebook.errors import RosterError, ScoresError

NY = ZoneInfo("America/New_York")


def write(tmp_path: Path, text: str, name: str = "f.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(exc_info) -> str:
    return str(exc_info.value)


def test_a_good_roster_with_aliases_bom_and_blank_lines(tmp_path):
    f = tmp_path / "r.csv"
    f.write_bytes("\ufeffStudent ID,Name,E-mail,Section\ns1,Ada,ada@uni.edu,A\n\n s2 ,Bob,bob@uni.edu,\n"
                  .encode())
    rows = parse_roster(f)
    assert [(r.line, r.student_id, r.email, r.section) for r in rows] == [
        (2, "s1", "ada@uni.edu", "A"), (4, "s2", "bob@uni.edu", "")]


def test_missing_columns_name_the_header_and_what_is_needed(tmp_path):
    with pytest.raises(RosterError) as e:
        parse_roster(write(tmp_path, "id,name,section\ns1,Ada,A\n"))
    assert "line 1: missing column email; the header reads 'id,name,section'" in problems(e)
    assert "needs id, name, email (optional: section)" in problems(e)


def test_duplicates_and_bad_emails_are_all_reported_with_lines(tmp_path):
    text = ("id,name,email\n"
            "s1,Ada,ada@uni.edu\n"
            "s1,Ada Again,ada2@uni.edu\n"
            "s2,Bob,ADA@uni.edu\n"
            "s3,Cy,cy at uni.edu\n"
            ",Dee,dee@uni.edu\n"
            "s5,,eve@uni.edu\n")
    with pytest.raises(RosterError) as e:
        parse_roster(write(tmp_path, text))
    msg = problems(e)
    assert "5 problems, nothing was imported" in msg
    assert "line 3: duplicate id 's1' (also on line 2); keep one row per student" in msg
    assert "line 4: e-mail 'ADA@uni.edu' is also on line 2" in msg
    assert "line 5: e-mail 'cy at uni.edu' is not an e-mail address; write it as name@example.edu" in msg
    assert "line 6: empty id" in msg
    assert "line 7: empty name for s5" in msg


def test_empty_and_missing_files(tmp_path):
    with pytest.raises(RosterError, match="the file is empty"):
        parse_roster(write(tmp_path, ""))
    with pytest.raises(RosterError, match="header but no rows"):
        parse_roster(write(tmp_path, "id,name,email\n"))
    with pytest.raises(RosterError, match="file not found"):
        parse_roster(tmp_path / "nope.csv")
    bad = tmp_path / "latin1.csv"
    bad.write_bytes("id,name,email\ns1,Jos\xe9,j@uni.edu\n".encode("latin-1"))
    with pytest.raises(RosterError, match="save the file as CSV UTF-8"):
        parse_roster(bad)


def test_scores_parse_times_in_the_course_zone(tmp_path):
    rows = parse_scores(write(tmp_path, "student,assignment,score,max_score,submitted_at\n"
                                        "s1,midterm,80,100,2026-10-20T11:00\n"
                                        "s2,midterm,70.5,100,2026-10-20T15:00Z\n"
                                        "s3,midterm,0,100,\n"), NY)
    assert rows[0].submitted_at == dt.datetime(2026, 10, 20, 11, 0, tzinfo=NY)
    assert rows[1].submitted_at == dt.datetime(2026, 10, 20, 15, 0, tzinfo=dt.timezone.utc)
    assert rows[2].submitted_at is None and rows[1].score == 70.5


def test_scores_problems_are_all_reported(tmp_path):
    text = ("student,assignment,score,max_score,submitted_at\n"
            "s1,midterm,eighty,100,\n"
            "s2,midterm,120,100,\n"
            "s3,midterm,5,0,\n"
            "s4,midterm,5,10,yesterday\n"
            "s5,midterm,5,10,\n"
            "s5,midterm,6,10,\n"
            ",midterm,1,10,\n")
    with pytest.raises(ScoresError) as e:
        parse_scores(write(tmp_path, text), NY)
    msg = problems(e)
    assert "line 2: score 'eighty' is not a number" in msg
    assert "line 3: score 120 is outside 0..max_score 100" in msg
    assert "line 4: max_score 0 must be more than 0" in msg
    assert "line 5: submitted_at 'yesterday' is not a time; write ISO 8601" in msg
    assert "line 7: a second score for s5 on midterm (first on line 6)" in msg
    assert "line 8: empty student" in msg


def test_scores_missing_columns(tmp_path):
    with pytest.raises(ScoresError, match="missing columns score, max_score"):
        parse_scores(write(tmp_path, "student,assignment,points_earned\ns1,hw1,3\n"), NY)
