"""What the TA pages show, as plain data (the routes in :mod:`autograder.service.staff_pages`
render it; the staff JSON API returns it): the filterable submission list, one submission with
every test, its files highlighted and diffed against the release stub, regrades and what they
changed, regrade requests, and the queue's and workers' health.

Student text stays text here: the templates escape it (autoescape), and the code view is
rendered by pygments, which escapes what it highlights.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from markupsafe import Markup, escape

from autograder.errors import UserError
from autograder.service import queue
from autograder.service.models import (PRIORITY_REGRADE, PRIORITY_SUBMISSION, GradingJob,
                                       JobState, Regrade, RegradeMessage, RegradeRequest,
                                       TERMINAL_STATES, WorkerHeartbeat)
from autograder.service.storage import stage_uploads
from autograder.submissions import IntakeError
from autograder.text import neutralise
from gradebook import models as gm
from gradebook.policy import late_days

UTC = dt.timezone.utc
#: A worker silent this long is a warning, then critical, on the operations page.
HEARTBEAT_WARNING_S = 30.0
HEARTBEAT_CRITICAL_S = 120.0
PHASES = ("queued", "preparing", "running", "recording")
#: The most rows one submissions page lists (newest first); filters narrow it.
MAX_ROWS = 500
#: The most bytes of one file shown with highlighting (larger files are cut, and say so).
MAX_SHOWN_BYTES = 200_000
DEFAULT_REGRADE_REQUEST_DAYS = 7.0


def _now() -> dt.datetime:
    return dt.datetime.now(UTC)


# --- the submission list -------------------------------------------------------------------------

@dataclass(frozen=True)
class SubmissionFilter:
    """The submission list's filters (each optional)."""

    assignment: str = ""
    student: str = ""       # a student id, or part of one
    state: str = ""         # a JobState value, or "recorded" (graded outside the service)
    score_min: float | None = None
    score_max: float | None = None
    late: str = ""          # "" | "late" | "on_time"

    def as_query(self) -> dict[str, str]:
        """The filter as query parameters (for links that keep it)."""
        out = {"assignment": self.assignment, "student": self.student, "state": self.state,
               "score_min": "" if self.score_min is None else f"{self.score_min:g}",
               "score_max": "" if self.score_max is None else f"{self.score_max:g}",
               "late": self.late}
        return {k: v for k, v in out.items() if v}


def parse_number(raw: object, what: str) -> float | None:
    """A number from a form field ('' is none); a clear message otherwise."""
    if raw is None or not str(raw).strip():
        return None
    try:
        value = float(str(raw).strip())
    except ValueError:
        raise UserError(f"{what}: {str(raw)[:40]!r} is not a number; write e.g. 7.5") from None
    if not math.isfinite(value):
        raise UserError(f"{what}: give a finite number")
    return value


def submission_rows(db: Any, f: SubmissionFilter, limit: int = MAX_ROWS) -> list[dict[str, Any]]:
    """Submissions matching ``f``, newest first: student, assignment, attempt, receipt, state,
    score, late days (judged on receipt, with the student's extension), regrade state."""
    config = db.gb.config
    latest_run = (sa.select(sa.func.max(gm.GradingRun.id).label("run"),
                            gm.GradingRun.submission_id)
                  .group_by(gm.GradingRun.submission_id).subquery())
    first_job = (sa.select(sa.func.min(GradingJob.id).label("job"), GradingJob.submission_id)
                 .where(GradingJob.priority == PRIORITY_SUBMISSION)
                 .group_by(GradingJob.submission_id).subquery())
    q = (sa.select(gm.Submission, gm.Student.student_id, gm.Student.name, gm.Assignment.name,
                   gm.Assignment.due, gm.GradingRun.score, gm.GradingRun.max_score,
                   GradingJob.state, gm.Extension.due)
         .join(gm.Student, gm.Student.id == gm.Submission.student_pk)
         .join(gm.Assignment, gm.Assignment.id == gm.Submission.assignment_pk)
         .outerjoin(latest_run, latest_run.c.submission_id == gm.Submission.id)
         .outerjoin(gm.GradingRun, gm.GradingRun.id == latest_run.c.run)
         .outerjoin(first_job, first_job.c.submission_id == gm.Submission.id)
         .outerjoin(GradingJob, GradingJob.id == first_job.c.job)
         .outerjoin(gm.Extension, sa.and_(gm.Extension.student_pk == gm.Submission.student_pk,
                                          gm.Extension.assignment_pk == gm.Submission.assignment_pk))
         .where(gm.Student.course_id == db.course_id)
         .order_by(gm.Submission.submitted_at.desc(), gm.Submission.id.desc()))
    if f.assignment:
        q = q.where(gm.Assignment.name == f.assignment)
    if f.student:
        needle = f.student.strip().lower()
        q = q.where(sa.or_(sa.func.lower(gm.Student.student_id).contains(needle, autoescape=True),
                           sa.func.lower(gm.Student.name).contains(needle, autoescape=True)))
    if f.state == "recorded":
        q = q.where(GradingJob.id.is_(None))
    elif f.state:
        q = q.where(GradingJob.state == f.state)
    if f.score_min is not None:
        q = q.where(gm.GradingRun.score >= f.score_min)
    if f.score_max is not None:
        q = q.where(gm.GradingRun.score <= f.score_max)
    with db.read() as s:
        rows = s.execute(q).all()
        pending = set(s.scalars(sa.select(GradingJob.submission_id).where(
            GradingJob.priority == PRIORITY_REGRADE,
            GradingJob.state.in_([JobState.QUEUED, JobState.RUNNING]))))
    out = []
    grace = dt.timedelta(minutes=config.slack.grace_minutes)
    for sub, sid, name, asg, due, score, max_score, state, ext_due in rows:
        effective_due = ext_due or due
        days = 0
        if effective_due is not None:
            days = late_days(sub.submitted_at, effective_due, zone=config.zone, grace=grace,
                             clock=config.slack.late_day_clock).days
        if f.late == "late" and days == 0 or f.late == "on_time" and days > 0:
            continue
        out.append({"id": sub.id, "student": sid, "student_name": name, "assignment": asg,
                    "attempt": sub.attempt, "received_at": sub.submitted_at,
                    "state": state or ("graded" if score is not None else "recorded"),
                    "score": score, "max_score": max_score, "late_days": days,
                    "extension": ext_due is not None, "regrading": sub.id in pending})
        if len(out) >= limit:
            break
    return out


# --- one submission ------------------------------------------------------------------------------

def submission_detail(ctx: Any, submission_id: int) -> dict[str, Any]:
    """One submission for staff: identity, state, the newest result with every test (hidden
    ones included, with their output), the runs so far, and the jobs that graded it."""
    db = ctx.db
    with db.read() as s:
        row = s.execute(sa.select(gm.Submission, gm.Student, gm.Assignment)
                        .join(gm.Student, gm.Student.id == gm.Submission.student_pk)
                        .join(gm.Assignment, gm.Assignment.id == gm.Submission.assignment_pk)
                        .where(gm.Submission.id == submission_id,
                               gm.Student.course_id == db.course_id)).first()
        if row is None:
            raise LookupError(f"no submission {submission_id} in this course")
        sub, student, asg = row
        runs = list(s.scalars(sa.select(gm.GradingRun)
                              .where(gm.GradingRun.submission_id == sub.id)
                              .order_by(gm.GradingRun.id)))
        jobs = list(s.scalars(sa.select(GradingJob).where(GradingJob.submission_id == sub.id)
                              .order_by(GradingJob.id)))
        overrides = {o.test_name: o for o in s.scalars(sa.select(gm.TestOverride).where(
            gm.TestOverride.student_pk == student.id, gm.TestOverride.assignment_pk == asg.id))}
        ext = s.scalar(sa.select(gm.Extension).where(gm.Extension.student_pk == student.id,
                                                     gm.Extension.assignment_pk == asg.id))
    latest = runs[-1] if runs else None
    result = dict(latest.result) if latest else {}
    tests = []
    for t in result.get("tests", []):
        o = overrides.get(str(t.get("name", "")))
        tests.append({"name": str(t.get("name", "")), "score": t.get("score", 0.0),
                      "max_score": t.get("max_score", 0.0), "outcome": t.get("outcome", ""),
                      "visibility": t.get("visibility", "visible"),
                      "suite": t.get("suite", ""), "duration_s": t.get("duration_s", 0.0),
                      "output": neutralise(str(t.get("output", ""))),
                      "override": None if o is None else {"score": o.score, "comment": o.comment,
                                                          "by": o.set_by, "at": o.set_at}})
    first = next((j for j in jobs if j.priority == PRIORITY_SUBMISSION), None)
    config = db.gb.config
    due = ext.due if ext else asg.due
    days = 0
    if due is not None:
        days = late_days(sub.submitted_at, due, zone=config.zone,
                         grace=dt.timedelta(minutes=config.slack.grace_minutes),
                         clock=config.slack.late_day_clock).days
    return {
        "id": sub.id, "student": student.student_id, "student_name": student.name,
        "assignment": asg.name, "attempt": sub.attempt, "received_at": sub.submitted_at,
        "due": due, "extension": ext is not None, "late_days": days,
        "state": first.state if first else ("graded" if latest else "recorded"),
        "score": latest.score if latest else None,
        "max_score": latest.max_score if latest else None,
        "output": neutralise(str(result.get("output", ""))), "tests": tests,
        "runs": [{"run_id": r.run_id, "score": r.score, "max_score": r.max_score,
                  "recorded_at": r.recorded_at, "backend": r.backend} for r in runs],
        "jobs": [{"id": j.id, "state": j.state, "regrade": j.priority == PRIORITY_REGRADE,
                  "enqueued_at": j.enqueued_at, "finished_at": j.finished_at,
                  "attempts": j.attempts, "error": j.error, "message": j.message}
                 for j in jobs],
        "uploads": list(first.uploads) if first else [],
    }


def student_files(ctx: Any, detail: dict[str, Any]) -> list[dict[str, Any]]:
    """The submission's module files as the grader staged them (a .zip or a notebook unpacked
    the same way), each with its text: ``[{"name", "text", "cut"}]``."""
    uploads = detail["uploads"]
    if not uploads:
        return []
    asg = ctx.assignment(detail["assignment"])
    pairs = [(u["name"], ctx.store.get(u["sha256"])) for u in uploads]
    with tempfile.TemporaryDirectory(prefix="ag-staff-") as tmp:
        try:
            prepared = stage_uploads(pairs, Path(tmp) / "staged", asg.config.modules)
        except IntakeError as e:
            return [{"name": "(could not be read)", "text": str(e), "cut": False}]
        files = []
        for path in sorted(prepared.files.rglob("*.py")):
            data = path.read_bytes()
            files.append({"name": path.relative_to(prepared.files).as_posix(),
                          "text": data[:MAX_SHOWN_BYTES].decode("utf-8", "replace"),
                          "cut": len(data) > MAX_SHOWN_BYTES})
    return files


def highlight(name: str, text: str) -> Markup:
    """``text`` as HTML with syntax highlighting and line numbers (pygments escapes every
    character of the source, so a ``<script>`` in a student's file is shown, never run)."""
    from pygments import highlight as _highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer, TextLexer

    lexer = PythonLexer() if name.endswith(".py") else TextLexer()
    formatter = HtmlFormatter(linenos="table", cssclass="highlight", wrapcode=True)
    return Markup(_highlight(text, lexer, formatter))


def highlight_css() -> str:
    """The pygments stylesheet for :func:`highlight` (a light theme)."""
    from pygments.formatters import HtmlFormatter

    return HtmlFormatter(style="default").get_style_defs(".highlight")


def stub_diff(ctx: Any, assignment: str, name: str, text: str, *,
              side_by_side: bool = True) -> Markup | None:
    """The student's file against the release stub of the same name (None: no such stub).
    Side by side (difflib's HTML table, which escapes both sides) or unified (escaped here)."""
    stub_path = ctx.assignment(assignment).release_dir / name
    if not stub_path.is_file():
        return None
    stub = stub_path.read_text("utf-8", "replace").splitlines()
    mine = text.splitlines()
    if side_by_side:
        table = difflib.HtmlDiff(tabsize=4).make_table(
            stub, mine, fromdesc=f"release stub {name}", todesc=f"submitted {name}",
            context=True, numlines=3)
        return Markup(table)
    lines = []
    for line in difflib.unified_diff(stub, mine, f"release/{name}", f"submitted/{name}",
                                     lineterm=""):
        kind = ("add" if line.startswith("+") and not line.startswith("+++") else
                "del" if line.startswith("-") and not line.startswith("---") else
                "hunk" if line.startswith("@@") else "")
        lines.append(Markup('<span class="{}">{}</span>').format(kind, line) if kind
                     else escape(line) + Markup("\n"))
    return Markup('<pre class="udiff">') + Markup("").join(lines) + Markup("</pre>")


# --- regrades ------------------------------------------------------------------------------------

def request_regrades(db: Any, submission_ids: list[int], *, by: str, reason: str) -> str:
    """Grade ``submission_ids`` again in the low-priority lane (after every queued student
    submission), keeping each one's scores before; returns the batch id. Submissions the
    service never received (graded by the batch CLI) are skipped; already queued regrades too."""
    batch = secrets.token_hex(8)
    for sid in submission_ids:
        with db.read() as s:
            busy = s.scalar(sa.select(GradingJob.id).where(
                GradingJob.submission_id == sid, GradingJob.priority == PRIORITY_REGRADE,
                GradingJob.state.in_([JobState.QUEUED, JobState.RUNNING])).limit(1))
            last = s.scalar(sa.select(GradingJob).where(GradingJob.submission_id == sid)
                            .order_by(GradingJob.id.desc()).limit(1))
            run = s.scalar(sa.select(gm.GradingRun).where(gm.GradingRun.submission_id == sid)
                           .order_by(gm.GradingRun.id.desc()).limit(1))
        if busy is not None or last is None:
            continue
        job_id = queue.enqueue_regrade(db, sid, lane=last.lane)
        old_tests = {str(t.get("name")): t.get("score", 0.0)
                     for t in (run.result.get("tests", []) if run else [])}
        with db.write() as s:
            s.add(Regrade(submission_id=sid, job_id=job_id, batch=batch, requested_by=by,
                          requested_at=_now(), reason=reason,
                          old_run_id=run.run_id if run else None,
                          old_score=run.score if run else None,
                          old_max_score=run.max_score if run else None, old_tests=old_tests))
    return batch


def regrade_changes(db: Any, *, batch: str | None = None,
                    submission_id: int | None = None) -> list[dict[str, Any]]:
    """Each regrade (of a batch, or of a submission) with its job's state and, once graded,
    what changed: old score -> new score, and per test."""
    q = (sa.select(Regrade, GradingJob, gm.GradingRun, gm.Student.student_id,
                   gm.Assignment.name, gm.Submission.attempt)
         .join(GradingJob, GradingJob.id == Regrade.job_id)
         .join(gm.Submission, gm.Submission.id == Regrade.submission_id)
         .join(gm.Student, gm.Student.id == gm.Submission.student_pk)
         .join(gm.Assignment, gm.Assignment.id == gm.Submission.assignment_pk)
         .outerjoin(gm.GradingRun, gm.GradingRun.run_id == GradingJob.run_id)
         .where(gm.Student.course_id == db.course_id)
         .order_by(Regrade.id.desc()))
    if batch is not None:
        q = q.where(Regrade.batch == batch)
    if submission_id is not None:
        q = q.where(Regrade.submission_id == submission_id)
    with db.read() as s:
        rows = s.execute(q).all()
    out = []
    for rg, job, run, student, asg, attempt in rows:
        tests = []
        if run is not None:
            for t in run.result.get("tests", []):
                name = str(t.get("name", ""))
                old = rg.old_tests.get(name)
                new = t.get("score", 0.0)
                tests.append({"name": name, "old": old, "new": new,
                              "max_score": t.get("max_score", 0.0),
                              "changed": old is None or abs(float(old) - float(new)) > 1e-9})
            for name, old in rg.old_tests.items():
                if name not in {t["name"] for t in tests}:
                    tests.append({"name": name, "old": old, "new": None, "max_score": None,
                                  "changed": True})
        out.append({"id": rg.id, "batch": rg.batch, "submission_id": rg.submission_id,
                    "student": student, "assignment": asg, "attempt": attempt,
                    "requested_by": rg.requested_by, "requested_at": rg.requested_at,
                    "reason": rg.reason, "state": job.state, "final": job.state in TERMINAL_STATES,
                    "old_score": rg.old_score, "old_max_score": rg.old_max_score,
                    "new_score": run.score if run else None,
                    "new_max_score": run.max_score if run else None,
                    "tests": tests, "changed_tests": [t for t in tests if t["changed"]]})
    return out


# --- regrade requests ----------------------------------------------------------------------------

def regrade_request_days(config: Any) -> float:
    """The course's window for regrade requests, in days after the attempt was graded:
    ``[service] regrade_request_days`` in course.toml (default 7; 0 turns requests off)."""
    section = getattr(config, "service", None) or {}
    raw = section.get("regrade_request_days", DEFAULT_REGRADE_REQUEST_DAYS) \
        if isinstance(section, dict) else DEFAULT_REGRADE_REQUEST_DAYS
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not 0 <= raw <= 365:
        raise UserError(f"course.toml [service] regrade_request_days = {raw!r}: give a number "
                        f"of days from 0 (no requests) to 365")
    return float(raw)


def request_window(db: Any, submission_id: int) -> tuple[dt.datetime | None, dt.datetime | None]:
    """When the attempt was graded and until when a regrade request may be opened."""
    with db.read() as s:
        graded = s.scalar(sa.select(sa.func.min(gm.GradingRun.recorded_at))
                          .where(gm.GradingRun.submission_id == submission_id))
    if graded is None:
        return None, None
    return graded, graded + dt.timedelta(days=regrade_request_days(db.gb.config))


def open_regrade_request(db: Any, *, submission_id: int, student_pk: int, login: str,
                         test_name: str, body: str, visible_tests: set[str]) -> int:
    """A student's question about test ``test_name`` of their attempt (one open request per
    test and attempt), within the course's window. ``visible_tests``: the tests the student
    may see now (they can only ask about those)."""
    body = body.strip()
    if not body:
        raise UserError("say what you would like staff to look at (the message is empty)")
    if len(body) > 4000:
        raise UserError("keep the message under 4000 characters")
    if test_name not in visible_tests:
        raise UserError("choose one of the tests shown on this page")
    graded, until = request_window(db, submission_id)
    if graded is None or until is None:
        raise UserError("this attempt has no result yet; ask once it is graded")
    if _now() > until:
        raise UserError(f"regrade requests for this attempt closed on "
                        f"{until.astimezone(db.gb.config.zone):%a %d %b %Y, %H:%M} "
                        f"({regrade_request_days(db.gb.config):g} days after grading)")
    with db.write() as s:
        existing = s.scalar(sa.select(RegradeRequest).where(
            RegradeRequest.submission_id == submission_id,
            RegradeRequest.test_name == test_name, RegradeRequest.state == "open"))
        if existing is not None:
            raise UserError("you already asked about this test of this attempt; staff will "
                            "answer there")
        req = RegradeRequest(submission_id=submission_id, student_pk=student_pk,
                             test_name=test_name, state="open", created_at=_now())
        s.add(req)
        s.flush()
        s.add(RegradeMessage(request_id=req.id, author=login, author_role="student",
                             body=body, at=_now()))
        return req.id


def reply_regrade_request(db: Any, request_id: int, *, author: str, role: str, body: str,
                          resolve: bool) -> None:
    """Add a message to a request's thread (staff, or its student while it is open); staff
    may resolve it at the same time. A resolution is kept in the audit log."""
    body = body.strip()
    if not body and not resolve:
        raise UserError("write an answer (the message is empty)")
    if len(body) > 4000:
        raise UserError("keep the message under 4000 characters")
    with db.write() as s:
        req = s.get(RegradeRequest, request_id)
        if req is None:
            raise LookupError(f"no regrade request {request_id}")
        if role == "student" and req.state != "open":
            raise UserError("this request is resolved; open a new one about another test")
        if body:
            s.add(RegradeMessage(request_id=req.id, author=author, author_role=role, body=body,
                                 at=_now()))
        if resolve and req.state == "open":
            req.state, req.resolved_at, req.resolved_by = "resolved", _now(), author
            row = s.execute(sa.select(gm.Student.student_id, gm.Assignment.name)
                            .join(gm.Submission, gm.Submission.student_pk == gm.Student.id)
                            .join(gm.Assignment, gm.Assignment.id == gm.Submission.assignment_pk)
                            .where(gm.Submission.id == req.submission_id)).one()
            s.add(gm.AuditEntry(course_id=db.course_id, at=_now(), actor=author,
                                action="regrade request resolved", student=row[0],
                                assignment=row[1], detail=f"test {req.test_name}",
                                reason=body))


def regrade_requests(db: Any, *, state: str | None = None, submission_id: int | None = None,
                     student_pk: int | None = None) -> list[dict[str, Any]]:
    """Regrade requests with their threads, open ones first, oldest first."""
    q = (sa.select(RegradeRequest, gm.Student.student_id, gm.Assignment.name,
                   gm.Submission.attempt)
         .join(gm.Submission, gm.Submission.id == RegradeRequest.submission_id)
         .join(gm.Student, gm.Student.id == RegradeRequest.student_pk)
         .join(gm.Assignment, gm.Assignment.id == gm.Submission.assignment_pk)
         .where(gm.Student.course_id == db.course_id)
         .order_by(sa.case((RegradeRequest.state == "open", 0), else_=1),
                   RegradeRequest.created_at))
    if state:
        q = q.where(RegradeRequest.state == state)
    if submission_id is not None:
        q = q.where(RegradeRequest.submission_id == submission_id)
    if student_pk is not None:
        q = q.where(RegradeRequest.student_pk == student_pk)
    with db.read() as s:
        rows = s.execute(q).all()
        ids = [r[0].id for r in rows]
        messages: dict[int, list[RegradeMessage]] = {}
        if ids:
            for m in s.scalars(sa.select(RegradeMessage)
                               .where(RegradeMessage.request_id.in_(ids))
                               .order_by(RegradeMessage.id)):
                messages.setdefault(m.request_id, []).append(m)
    return [{"id": req.id, "submission_id": req.submission_id, "student": student,
             "assignment": asg, "attempt": attempt, "test_name": req.test_name,
             "state": req.state, "created_at": req.created_at, "resolved_at": req.resolved_at,
             "resolved_by": req.resolved_by,
             "messages": [{"author": m.author, "role": m.author_role, "body": m.body, "at": m.at}
                          for m in messages.get(req.id, [])]}
            for req, student, asg, attempt in rows]


# --- operations ----------------------------------------------------------------------------------

def percentile(values: list[float], p: float) -> float | None:
    """The ``p``-th percentile (nearest rank) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def heartbeat_level(age_s: float | None) -> str:
    """ok, warning (silent over 30 s) or critical (over 120 s, or never heard from)."""
    if age_s is None or age_s > HEARTBEAT_CRITICAL_S:
        return "critical"
    return "warning" if age_s > HEARTBEAT_WARNING_S else "ok"


def operations(db: Any, now: dt.datetime | None = None) -> dict[str, Any]:
    """Queue depth per lane (students' and regrades apart), the oldest queued job, each worker
    with its last heartbeat and level, and p50/p95 of each phase over the last hour."""
    now = now or _now()
    hour_ago = now - dt.timedelta(hours=1)
    with db.read() as s:
        depth = s.execute(sa.select(GradingJob.lane, GradingJob.priority, sa.func.count())
                          .where(GradingJob.state == JobState.QUEUED)
                          .group_by(GradingJob.lane, GradingJob.priority)).all()
        running = dict(s.execute(sa.select(GradingJob.lane, sa.func.count())
                                 .where(GradingJob.state == JobState.RUNNING)
                                 .group_by(GradingJob.lane)).all())
        oldest = s.execute(sa.select(GradingJob, gm.Student.student_id, gm.Assignment.name)
                           .join(gm.Student, gm.Student.id == GradingJob.student_pk)
                           .join(gm.Assignment, gm.Assignment.id == GradingJob.assignment_pk)
                           .where(GradingJob.state == JobState.QUEUED)
                           .order_by(GradingJob.enqueued_at).limit(1)).first()
        workers = list(s.scalars(sa.select(WorkerHeartbeat).order_by(WorkerHeartbeat.name)))
        # A worker in a long job beats through its job's lease too.
        job_beats = dict(s.execute(sa.select(GradingJob.lease_owner,
                                             sa.func.max(GradingJob.heartbeat_at))
                                   .where(GradingJob.state == JobState.RUNNING)
                                   .group_by(GradingJob.lease_owner)).all())
        current = dict(s.execute(sa.select(GradingJob.lease_owner, GradingJob.id)
                                 .where(GradingJob.state == JobState.RUNNING)).all())
        done = s.execute(sa.select(GradingJob.enqueued_at, GradingJob.started_at,
                                   GradingJob.prepared_at, GradingJob.ran_at,
                                   GradingJob.finished_at)
                         .where(GradingJob.state == JobState.GRADED,
                                GradingJob.finished_at >= hour_ago)).all()
        system_errors = s.scalar(sa.select(sa.func.count(GradingJob.id)).where(
            GradingJob.state == JobState.SYSTEM_ERROR, GradingJob.finished_at >= hour_ago)) or 0
    lanes: dict[str, dict[str, int]] = {}
    for lane, priority, n in depth:
        entry = lanes.setdefault(lane, {"students": 0, "regrades": 0, "running": 0})
        entry["regrades" if priority >= PRIORITY_REGRADE else "students"] += n
    for lane, n in running.items():
        lanes.setdefault(lane, {"students": 0, "regrades": 0, "running": 0})["running"] = n
    for lane in ("cpu", "gpu"):
        lanes.setdefault(lane, {"students": 0, "regrades": 0, "running": 0})
    phases: dict[str, list[float]] = {p: [] for p in PHASES}
    for enq, started, prepared, ran, finished in done:
        spans = (("queued", enq, started), ("preparing", started, prepared),
                 ("running", prepared, ran), ("recording", ran, finished))
        for name, a, b in spans:
            if a is not None and b is not None:
                phases[name].append(max(0.0, (b - a).total_seconds()))
    worker_rows = []
    for w in workers:
        last = max([t for t in (w.heartbeat_at, job_beats.get(w.name)) if t is not None])
        age = (now - last).total_seconds()
        worker_rows.append({"name": w.name, "lanes": w.lanes, "started_at": w.started_at,
                            "heartbeat_at": last, "age_s": age, "level": heartbeat_level(age),
                            "jobs_done": w.jobs_done, "current_job": current.get(w.name)})
    return {
        "now": now,
        "lanes": [{"lane": k, **v} for k, v in sorted(lanes.items())],
        "oldest": None if oldest is None else {
            "job": oldest[0].id, "submission_id": oldest[0].submission_id,
            "student": oldest[1], "assignment": oldest[2], "lane": oldest[0].lane,
            "regrade": oldest[0].priority >= PRIORITY_REGRADE,
            "enqueued_at": oldest[0].enqueued_at,
            "age_s": (now - oldest[0].enqueued_at).total_seconds()},
        "workers": worker_rows,
        "phases": [{"phase": p, "count": len(v), "p50_s": percentile(v, 50),
                    "p95_s": percentile(v, 95)} for p, v in phases.items()],
        "graded_last_hour": len(done), "system_errors_last_hour": system_errors,
    }
