"""Reading the CSV files TAs bring: the roster and scores graded elsewhere.

Parsing is pure and checks the whole file before anything is written: a file with problems
raises :class:`~gradebook.errors.RosterError` / :class:`~gradebook.errors.ScoresError` listing
every bad line (numbered as a spreadsheet shows them, the header being line 1) and what to write
instead, so a TA fixes the file once and imports it again.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from gradebook.errors import RosterError, ScoresError

# A pragmatic check: one @, something before it, a dot in the domain, no spaces.
EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")

ROSTER_COLUMNS = {
    "id": ("id", "student_id", "student id", "sis user id", "sis_user_id"),
    "name": ("name", "student", "student name", "full name"),
    "email": ("email", "e-mail", "mail", "sis login id"),
    "section": ("section",),
}
SCORE_COLUMNS = {
    "student": ("student", "student_id", "student id", "id", "sid"),
    "assignment": ("assignment", "assessment"),
    "score": ("score", "points"),
    "max_score": ("max_score", "max score", "max points", "max_points", "out of"),
    "submitted_at": ("submitted_at", "submitted at", "submission time"),
}


@dataclass(frozen=True)
class RosterRow:
    line: int
    student_id: str
    name: str
    email: str
    section: str = ""


@dataclass(frozen=True)
class ScoreRow:
    line: int
    student: str
    assignment: str
    score: float
    max_score: float
    submitted_at: dt.datetime | None  # aware


def _read(source: str | Path, error: type, required: dict[str, tuple[str, ...]],
          optional: dict[str, tuple[str, ...]]) -> tuple[str, list[tuple[int, dict[str, str]]]]:
    """(display name, [(line number, {canonical column: value})]); raises ``error`` for a file
    that cannot be read or lacks a required column."""
    if isinstance(source, Path) or "\n" not in str(source):
        path = Path(source)
        name = str(path)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise error(name, [f"file not found: {path}"]) from None
        except UnicodeDecodeError as e:
            raise error(name, [f"not UTF-8 text (byte {e.start}); save the file as CSV UTF-8"]) from None
    else:
        name, text = "(csv)", str(source)
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise error(name, ["the file is empty; the first line must name the columns"]) from None
    normalised = [h.strip().lower() for h in header]
    index: dict[str, int] = {}
    problems = []
    for canonical, aliases in {**required, **optional}.items():
        hits = [i for i, h in enumerate(normalised) if h in aliases]
        if len(hits) > 1:
            problems.append(f"line 1: columns {', '.join(header[i] for i in hits)} all mean "
                            f"{canonical}; keep one")
        elif hits:
            index[canonical] = hits[0]
    missing = [c for c in required if c not in index]
    if missing:
        need = ", ".join(required) + (f" (optional: {', '.join(optional)})" if optional else "")
        problems.append(f"line 1: missing column{'s' if len(missing) > 1 else ''} "
                        f"{', '.join(missing)}; the header reads {','.join(header)!r}, the file "
                        f"needs {need}")
    if problems:
        raise error(name, problems)
    rows = []
    for line_no, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        rows.append((line_no, {c: (cells[i].strip() if i < len(cells) else "")
                               for c, i in index.items()}))
    return name, rows


def parse_roster(source: str | Path) -> list[RosterRow]:
    """The class list: columns id, name, email and optionally section (common aliases such as
    student_id and e-mail are understood)."""
    name, rows = _read(source, RosterError, {k: ROSTER_COLUMNS[k] for k in ("id", "name", "email")},
                       {"section": ROSTER_COLUMNS["section"]})
    problems: list[str] = []
    seen_ids: dict[str, int] = {}
    seen_emails: dict[str, int] = {}
    out = []
    for line, r in rows:
        sid, email = r["id"], r["email"]
        bad = False
        if not sid:
            problems.append(f"line {line}: empty id; every student needs an id")
            bad = True
        elif sid in seen_ids:
            problems.append(f"line {line}: duplicate id {sid!r} (also on line {seen_ids[sid]}); "
                            f"keep one row per student")
            bad = True
        else:
            seen_ids[sid] = line
        if not EMAIL.match(email):
            shown = repr(email) if email else "empty"
            problems.append(f"line {line}: e-mail {shown} is not an e-mail address; write it "
                            f"as name@example.edu")
            bad = True
        elif email.lower() in seen_emails:
            problems.append(f"line {line}: e-mail {email!r} is also on line "
                            f"{seen_emails[email.lower()]}; each student needs their own")
            bad = True
        else:
            seen_emails[email.lower()] = line
        if not r["name"]:
            problems.append(f"line {line}: empty name for {sid or 'this student'}; write the "
                            f"student's name")
            bad = True
        if not bad:
            out.append(RosterRow(line, sid, r["name"], email, r.get("section", "")))
    if problems:
        raise RosterError(name, problems)
    if not out:
        raise RosterError(name, ["no students: the file has a header but no rows"])
    return out


def parse_time(text: str, zone: ZoneInfo) -> dt.datetime:
    """ISO 8601 (``2026-09-18T23:59``, ``2026-09-18 23:59:00+02:00``, ``...Z``); a time without
    an offset is wall-clock time in the course time zone."""
    value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value.replace(tzinfo=zone) if value.tzinfo is None else value


def parse_scores(source: str | Path, zone: ZoneInfo) -> list[ScoreRow]:
    """Scores graded elsewhere: columns student, assignment, score, max_score and optionally
    submitted_at (ISO 8601; course time zone unless an offset is given)."""
    name, rows = _read(source, ScoresError,
                       {k: SCORE_COLUMNS[k] for k in ("student", "assignment", "score", "max_score")},
                       {"submitted_at": SCORE_COLUMNS["submitted_at"]})
    problems: list[str] = []
    seen: dict[tuple[str, str], int] = {}
    out = []
    for line, r in rows:
        bad = False
        nums: dict[str, float] = {}
        for col in ("score", "max_score"):
            try:
                nums[col] = float(r[col])
                if not math.isfinite(nums[col]):
                    raise ValueError
            except ValueError:
                shown = repr(r[col]) if r[col] else "empty"
                problems.append(f"line {line}: {col} {shown} is not a number; write e.g. 17.5")
                bad = True
        if not bad:
            if nums["max_score"] <= 0:
                problems.append(f"line {line}: max_score {nums['max_score']:g} must be more than 0")
                bad = True
            elif not 0 <= nums["score"] <= nums["max_score"]:
                problems.append(f"line {line}: score {nums['score']:g} is outside 0..max_score "
                                f"{nums['max_score']:g}; fix the score or the max_score")
                bad = True
        for col in ("student", "assignment"):
            if not r[col]:
                problems.append(f"line {line}: empty {col}")
                bad = True
        key = (r["student"], r["assignment"])
        if all(key) and key in seen:
            problems.append(f"line {line}: a second score for {key[0]} on {key[1]} (first on "
                            f"line {seen[key]}); keep one")
            bad = True
        seen.setdefault(key, line)
        submitted_at = None
        if r.get("submitted_at"):
            try:
                submitted_at = parse_time(r["submitted_at"], zone)
            except ValueError:
                problems.append(f"line {line}: submitted_at {r['submitted_at']!r} is not a time; "
                                f"write ISO 8601 such as 2026-09-18T23:59 (course time zone) or "
                                f"2026-09-18T23:59+02:00")
                bad = True
        if not bad:
            out.append(ScoreRow(line, r["student"], r["assignment"], nums["score"],
                                nums["max_score"], submitted_at))
    if problems:
        raise ScoresError(name, problems)
    if not out:
        raise ScoresError(name, ["no scores: the file has a header but no rows"])
    return out
