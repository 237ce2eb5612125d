"""Recording what ``autograder grade --output DIR`` wrote: one ``DIR/<submission>/results.json``
per submission (:meth:`GradingResult.read`).

Who submitted and when is not in results.json, so it comes from the caller: one student and time
for everything (``--student``, ``--submitted-at``), or a manifest CSV with columns submission,
student, submitted_at. Without a student, the submission's name is taken as the student id.
Each file's run id is derived from its bytes, so recording the same directory twice changes
nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd

from gradebook.csvfiles import parse_time
from gradebook.errors import GradebookError, InvalidFile
from autograder.results import GradingResult
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
    max_score: float


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
            found.append(Found(p, result, "results-" + hashlib.sha256(raw).hexdigest()[:40]))
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
    """Record every found result as a submission and its grading run. Everything is checked
    (a time for each, known students and assignments) before the first write."""
    if student and len(found) > 1:
        raise GradebookError(f"--student names one student but {len(found)} results were found; "
                             f"use a manifest CSV (submission, student, submitted_at) instead")
    plan, problems = [], []
    known_students = {s.student_id for s in gb.students()}
    known_assignments = set(gb.assignment_names())
    for f in found:
        sub = f.result.submission
        who, when = (manifest or {}).get(sub, (student or sub, submitted_at))
        if when is None:
            problems.append(f"{f.path}: no submission time for {sub!r}; pass --submitted-at or "
                            f"list it in a --manifest CSV")
        if who not in known_students:
            problems.append(f"{f.path}: student {who!r} is not in the roster")
        if f.result.assignment not in known_assignments:
            problems.append(f"{f.path}: assignment {f.result.assignment!r} is not in the "
                            f"gradebook; run `autograder gradebook sync`")
        plan.append((f, who, when))
    if problems:
        raise GradebookError("nothing was recorded:\n" + "\n".join(f"  {p}" for p in problems))
    done = []
    for f, who, when in plan:
        digest = f.result.content_hash or f"unhashed-{f.run_id}"
        sub = gb.record_submission(who, f.result.assignment, digest, when)
        gb.record_result(sub.id, f.result, f.run_id)
        done.append(Recorded(f.path, who, f.result.assignment, sub.id, sub.attempt,
                             f.result.score, f.result.max_score))
    return done
