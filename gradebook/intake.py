"""Recording what ``autograder grade --output DIR`` wrote: one ``DIR/<submission>/results.json``
per submission (:meth:`GradingResult.read`).

Each result carries its submission's identity (student, attempt, receipt time), its run id and
its test set, and those are what is recorded. Results written before they did fall back on the
caller: a manifest CSV (columns submission, student, submitted_at), or one student and time for
everything (``--student``, ``--submitted-at``), else the submission's name as the student id;
their run id is derived from the file's bytes. Recording the same folder twice changes nothing,
and a batch is recorded whole or not at all.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd

from autograder.results import GradingResult
from gradebook.csvfiles import parse_time
from gradebook.errors import GradebookError, InvalidFile
from gradebook.store import Gradebook


@dataclass(frozen=True)
class Found:
    path: Path
    result: GradingResult
    run_id: str


@dataclass(frozen=True)
class Recorded:
    path: Path
    student: str
    assignment: str
    submission_id: int
    attempt: int
    score: float
    max_points: float  # the assignment's points
    received_at: dt.datetime


def find_results(dirs: list[Path]) -> list[Found]:
    """Every results.json in ``dirs`` (a directory that holds one itself, or one level down)."""
    found = []
    for d in dirs:
        d = Path(d)
        if d.is_file() and d.name == "results.json":
            paths = [d]
        elif (d / "results.json").is_file():
            paths = [d / "results.json"]
        else:
            paths = sorted(d.glob("*/results.json"))
        if not paths:
            raise GradebookError(f"{d}: no results.json in it or in its subfolders; pass the "
                                 f"folder given to `autograder grade --output`")
        for p in paths:
            raw = p.read_bytes()
            try:
                result = GradingResult.read(p)
            except (ValueError, KeyError, TypeError) as e:
                raise GradebookError(f"{p}: not a results.json the grader writes ({e}); "
                                     f"re-run `autograder grade` for it") from None
            run_id = result.run_id or "results-" + hashlib.sha256(raw).hexdigest()[:40]
            found.append(Found(p, result, run_id))
    return found


def read_manifest(path: Path, zone: ZoneInfo) -> dict[str, tuple[str, dt.datetime]]:
    """submission -> (student, submitted_at) from a CSV with those three columns."""
    frame = pd.read_csv(path, dtype=str).fillna("")
    missing = {"submission", "student", "submitted_at"} - set(frame.columns)
    if missing:
        raise InvalidFile(str(path), [f"line 1: missing column(s) {', '.join(sorted(missing))}; "
                                      f"the manifest needs submission, student, submitted_at"])
    out, problems = {}, []
    for i, row in frame.iterrows():
        try:
            out[row["submission"]] = (row["student"] or row["submission"],
                                      parse_time(row["submitted_at"], zone))
        except ValueError:
            problems.append(f"line {i + 2}: submitted_at {row['submitted_at']!r} is not an "
                            f"ISO 8601 time such as 2026-09-18T23:59")
    if problems:
        raise InvalidFile(str(path), problems)
    return out


def record_results(gb: Gradebook, found: list[Found], *, student: str | None = None,
                   submitted_at: dt.datetime | None = None,
                   manifest: dict[str, tuple[str, dt.datetime]] | None = None) -> list[Recorded]:
    """Record every found result as a submission and its grading run, in one transaction.
    Everything that can be checked (the test set, a student and time for each, known students
    and assignments, a manifest that agrees with the result) is checked before the first write,
    and every problem is listed."""
    if student and len(found) > 1:
        raise GradebookError(f"--student names one student but {len(found)} results were found; "
                             f"use a manifest CSV (submission, student, submitted_at) instead")
    plan, problems = [], []
    known_students = {s.student_id for s in gb.students()}
    known_assignments = set(gb.assignment_names())
    for f in found:
        res = f.result
        listed = (manifest or {}).get(res.submission)
        who = res.identity.student or (listed[0] if listed else None) or student or res.submission
        when = listed[1] if listed else submitted_at
        if res.test_set != "full":
            problems.append(f"{f.path}: covers the public tests only (`autograder grade "
                            f"--public-only` or a student's check), so it is not a grade; "
                            f"grade it with the hidden tests and record that result")
        if res.identity.student and listed and listed[0] != res.identity.student:
            problems.append(f"{f.path}: the result is {res.identity.student!r}'s but the "
                            f"manifest says {listed[0]!r}; fix the manifest")
        if not res.identity.received_at and when is None:
            problems.append(f"{f.path}: no submission time for {res.submission!r}; pass "
                            f"--submitted-at or list it in a --manifest CSV")
        if who not in known_students:
            problems.append(f"{f.path}: student {who!r} is not in the roster")
        if res.assignment not in known_assignments:
            problems.append(f"{f.path}: assignment {res.assignment!r} is not in the "
                            f"gradebook; run `autograder gradebook sync`")
        plan.append((f, who, when))
    if problems:
        raise GradebookError("nothing was recorded:\n" + "\n".join(f"  {p}" for p in problems))
    done = []
    try:
        with gb.transaction():
            for f, who, when in plan:
                rec = gb.record_graded(f.result, None, student=who, received_at=when,
                                       run_id=f.run_id)
                done.append(Recorded(f.path, rec.student, rec.assignment, rec.submission_id,
                                     rec.attempt, rec.score, rec.max_points, rec.received_at))
    except GradebookError as e:
        kind = GradebookError if isinstance(e, InvalidFile) else type(e)
        raise kind(f"{f.path}: {e}; nothing was recorded") from None
    return done
