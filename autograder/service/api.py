"""The JSON API under ``/api/v1`` (bearer token or session cookie). Every 4xx answer is
``{"detail": "..."}`` saying what to fix; nothing is stored unless the answer is ``202``.

* ``GET /api/v1/me``: id, name, slack days used and left.
* ``GET /api/v1/assignments``: the student's assignments.
* ``POST /api/v1/assignments/{name}/submissions`` (multipart, field ``files``, one or more):
  ``202 {"id", "state", "received_at"}`` once the files, the submission and its job are
  committed; ``413`` too large or too many files (counted while the body streams in, before
  anything is stored); ``429`` with ``Retry-After`` past the assignment's
  ``[service] max_submissions_per_hour``; ``422`` for an upload that cannot be graded.
* ``GET /api/v1/submissions/{id}``: state, queue position, and once graded the score and the
  tests the student may see (:mod:`autograder.service.feedback`).
* ``GET /api/v1/assignments/{name}/submissions``: the student's own attempts.

Timed exams add ``POST /api/v1/assignments/{name}/start``, ``GET .../attempt`` and
``POST .../finish`` (:mod:`autograder.service.exams`); their submissions are judged against the
student's own end time in :func:`_accept`, and their feedback is withheld per the exam's policy.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from autograder.config import AssignmentConfig, ConfigError
from autograder.course import Assignment, Course
from autograder.service import feedback, queue
from autograder.service.auth import CSRF_HEADER, Principal, authenticate, check_csrf
from autograder.service.database import ServiceDB
from autograder.service.models import GradingJob, JobState
from autograder.service.settings import Clock, Settings, SystemClock
from autograder.service.storage import UploadStore, stage_uploads
from autograder.submissions import IntakeError, IntakeLimits
from autograder.text import neutralise_name
from gradebook import models as gm
from gradebook.policy import as_course_time, evaluate_assessment, late_days

UTC = dt.timezone.utc
router = APIRouter(prefix="/api/v1")


@dataclass
class ServiceContext:
    """What every request handler needs: the settings, the database and the upload store."""

    settings: Settings
    db: ServiceDB
    store: UploadStore
    # Every exam decision and every receipt time reads this clock (tests set the time).
    clock: Clock = field(default_factory=SystemClock)

    def now(self) -> dt.datetime:
        """The service's current time (aware, UTC)."""
        return self.clock.now()

    @property
    def course(self) -> Course:
        return Course(self.settings.course_root)

    def assignment(self, name: str) -> Assignment:
        """The course's assignment ``name`` (its config read now, so edits take effect), or 404."""
        course = self.course
        known = course.assignment_names()
        if name not in known:
            raise HTTPException(404, detail=f"no assignment {neutralise_name(name)!r} in this "
                                            f"course; the assignments are: "
                                            f"{', '.join(known) or 'none yet'}")
        try:
            return course.assignment(name)
        except ConfigError as e:
            raise HTTPException(503, detail=f"assignment {name} is misconfigured on the "
                                            f"server; tell staff: {e}") from None

    def zone(self):  # type: ignore[no-untyped-def]
        return self.db.gb.config.zone

    def due(self, cfg: AssignmentConfig) -> dt.datetime | None:
        return as_course_time(cfg.due, self.zone()) if cfg.due else None

    def published(self, cfg: AssignmentConfig) -> dt.datetime | None:
        when = cfg.service.grades_published
        return as_course_time(when, self.zone()) if when else None


def context(request: Request) -> ServiceContext:
    return request.app.state.service


def student(request: Request, ctx: ServiceContext = Depends(context)) -> Principal:
    """The calling student (401 without valid credentials); a cookie-authenticated unsafe
    request must carry the CSRF token in ``X-CSRF-Token``."""
    who = authenticate(ctx.db, request)
    if who is None:
        raise HTTPException(401, detail="log in, or send 'Authorization: Bearer <token>' (staff "
                                        "give tokens with `autograder token STUDENT`)",
                            headers={"WWW-Authenticate": "Bearer"})
    if who.via == "session" and request.method not in ("GET", "HEAD", "OPTIONS"):
        check_csrf(request, request.headers.get(CSRF_HEADER))
    if who.student_pk is None:
        raise HTTPException(403, detail="this API is for students; staff pages come later")
    return who


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


@router.get("/me")
def me(who: Principal = Depends(student), ctx: ServiceContext = Depends(context)) -> dict:
    grade = ctx.db.gb.grades(only=who.login)[0]
    return {"id": who.login, "name": grade.name, "slack_days_used": grade.slack_used,
            "slack_days_left": grade.slack_left}


def _submitted_count(ctx: ServiceContext, student_pk: int) -> dict[str, int]:
    with ctx.db.read() as s:
        return dict(s.execute(sa.select(gm.Assignment.name, sa.func.count(gm.Submission.id))
                              .join(gm.Submission, gm.Submission.assignment_pk == gm.Assignment.id)
                              .where(gm.Submission.student_pk == student_pk)
                              .group_by(gm.Assignment.name)).all())


def _counted_last_hour(ctx: ServiceContext, student_pk: int) -> dict[str, int]:
    """Submissions counted against each assignment's hourly limit (as queue._check_rate)."""
    since = ctx.now() - dt.timedelta(hours=1)
    with ctx.db.read() as s:
        return dict(s.execute(
            sa.select(gm.Assignment.name, sa.func.count(GradingJob.id))
            .join(GradingJob, GradingJob.assignment_pk == gm.Assignment.id)
            .where(GradingJob.student_pk == student_pk, GradingJob.priority == 0,
                   GradingJob.state != JobState.SYSTEM_ERROR, GradingJob.enqueued_at > since)
            .group_by(gm.Assignment.name)).all())


@router.get("/assignments")
def assignments(who: Principal = Depends(student),
                ctx: ServiceContext = Depends(context)) -> list[dict]:
    counts = _submitted_count(ctx, who.student_pk or 0)
    recent = _counted_last_hour(ctx, who.student_pk or 0)
    from autograder.service.exams import is_exam

    out = []
    for name in ctx.course.assignment_names():
        try:
            cfg = ctx.course.assignment(name).config
        except ConfigError:
            continue  # a broken config is staff's to fix; the others stay usable
        due = ctx.due(cfg)
        limit = cfg.service.max_submissions_per_hour
        out.append({"name": name, "title": cfg.title, "kind": cfg.kind,
                    # In the course's time zone (with its offset), as the syllabus states it.
                    "due": due.isoformat() if due else None,
                    "timezone": ctx.db.gb.config.timezone,
                    "points": cfg.points, "modules": [f"{m}.py" for m in cfg.modules],
                    # A timed exam: started on its page (/exams/NAME) or with POST .../start.
                    "timed": is_exam(cfg),
                    "submissions": counts.get(name, 0), "max_submissions_per_hour": limit,
                    "submissions_left_this_hour": None if limit is None else
                    max(0, limit - recent.get(name, 0))})
    return out


class _TooLarge(Exception):
    pass


async def _capped(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    """The request body, refused as soon as more than ``limit`` bytes arrived."""
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            raise _TooLarge
        yield chunk


def _upload_name(raw: str | None, index: int) -> str:
    """The uploaded file's own name (no folders), or a 422 saying what to rename."""
    name = PurePosixPath((raw or "").replace("\\", "/")).name
    if not name:
        return f"upload{index}"
    if name in (".", "..") or any(ord(c) < 32 or ord(c) == 127 for c in name) \
            or len(name.encode("utf-8", "surrogateescape")) > 255:
        raise HTTPException(422, detail=f"the file name {neutralise_name(name)[:80]!r} cannot "
                                        f"be stored; rename the file using letters, digits, "
                                        f"'_', '-' and '.' (e.g. softmax.py) and submit again")
    return name


async def read_uploads(request: Request, settings: Any, main_module: str, *,
                       check_form: Callable[[Any], None] | None = None,
                       skip_empty: bool = False) -> list[queue.Upload]:
    """The files of a multipart upload (field ``files``), read under the service's caps: 413
    past the size or file-count limit (counted while the body streams in, before anything is
    stored), 400 for a body that is not multipart, 422 for no files, a bad name or the same name
    twice. ``check_form`` sees the parsed form first (the pages check its CSRF token there);
    ``skip_empty`` drops a browser's empty file input. The one reader of the API and the pages."""
    if "multipart/form-data" not in request.headers.get("content-type", ""):
        raise HTTPException(400, detail="send the files as multipart/form-data in a field "
                                        "named 'files' (curl -F files=@softmax.py ...)")
    declared = request.headers.get("content-length")
    # Multipart framing adds a few hundred bytes a file on top of the files themselves.
    limit = settings.max_upload_bytes + 1024 * (settings.max_upload_files + 4)
    too_large = HTTPException(413, detail=f"the upload is larger than "
                                          f"{settings.max_upload_bytes // 2**20} MiB; submit "
                                          f"only your code (no data sets, checkpoints or outputs)")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large
    parser = MultiPartParser(request.headers, _capped(request, limit),
                             max_files=settings.max_upload_files, max_fields=20)
    try:
        form = await parser.parse()
    except _TooLarge:
        raise too_large from None
    except MultiPartException as e:
        if "Too many files" in str(e):
            raise HTTPException(413, detail=f"too many files: at most "
                                            f"{settings.max_upload_files}; zip your files or "
                                            f"submit only your code") from None
        raise HTTPException(400, detail=f"the upload is not valid multipart/form-data ({e}); "
                                        f"send the files in a field named 'files'") from None
    try:
        if check_form is not None:
            check_form(form)
        files = [v for v in form.getlist("files") if isinstance(v, UploadFile)
                 and not (skip_empty and not v.filename and not v.size)]
        if not files:
            raise HTTPException(422, detail="no files: send one or more files in the multipart "
                                            f"field 'files' (e.g. {main_module}.py, a .zip "
                                            f"or a .ipynb)")
        uploads = [queue.Upload(_upload_name(f.filename, i), await f.read())
                   for i, f in enumerate(files)]
    finally:
        await form.close()
    names = [u.name for u in uploads]
    if len(set(names)) != len(names):
        raise HTTPException(422, detail="two uploaded files have the same name; send each "
                                        "file once")
    if sum(len(u.data) for u in uploads) > settings.max_upload_bytes:
        raise too_large
    return uploads


@router.post("/assignments/{name}/submissions", status_code=202)
async def submit(name: str, request: Request, who: Principal = Depends(student),
                 ctx: ServiceContext = Depends(context)) -> JSONResponse:
    received_at = ctx.now()  # deadlines are judged on this, never on grading time
    asg = ctx.assignment(name)
    uploads = await read_uploads(request, ctx.settings, asg.config.main_module)
    enqueued = await run_in_threadpool(_accept, ctx, who, asg, uploads, received_at)
    return JSONResponse(status_code=202, content={
        "id": enqueued.submission_id, "state": enqueued.state, "attempt": enqueued.attempt,
        "received_at": _iso(enqueued.received_at)})


def _accept(ctx: ServiceContext, who: Principal, asg: Assignment, uploads: list[queue.Upload],
            received_at: dt.datetime) -> queue.Enqueued:
    """Check the upload with the grader's own intake (so a malformed one is refused now, with
    the reason, and nothing is stored), then store it and its job."""
    from autograder.service.exams import check_submission

    cfg = asg.config
    check_submission(ctx, who, asg, received_at)  # a timed exam: only inside the attempt (403)
    limits = IntakeLimits(max_total_bytes=ctx.settings.max_upload_bytes)
    with tempfile.TemporaryDirectory(prefix="autograder-intake-") as tmp:
        try:
            prepared = stage_uploads(uploads, Path(tmp) / "staged", cfg.modules, limits)
        except IntakeError as e:
            raise HTTPException(422, detail=str(e)) from None
    try:
        return queue.enqueue(ctx.db, ctx.store, student=who.login, assignment=asg.name,
                             uploads=uploads, content_hash=prepared.content_hash,
                             received_at=received_at, lane=_lane(cfg),
                             max_per_hour=cfg.service.max_submissions_per_hour)
    except queue.RateLimited as e:
        raise HTTPException(429, detail=str(e),
                            headers={"Retry-After": str(e.retry_after_s)}) from None


def _lane(cfg: AssignmentConfig) -> str:
    return "gpu" if cfg.resources.gpu == "required" else "cpu"


def _own_job(ctx: ServiceContext, who: Principal, submission_id: int) -> tuple[GradingJob, gm.Submission]:
    with ctx.db.read() as s:
        sub = s.get(gm.Submission, submission_id)
        if sub is None or sub.student_pk != who.student_pk:
            # Someone else's submission is as absent as one that does not exist.
            raise HTTPException(404, detail=f"you have no submission {submission_id}; "
                                            f"GET /api/v1/assignments/NAME/submissions lists yours")
        job = s.scalar(sa.select(GradingJob).where(GradingJob.submission_id == sub.id)
                       .order_by(GradingJob.priority, GradingJob.id.desc()).limit(1))
        if job is None:
            raise HTTPException(404, detail=f"submission {submission_id} was not made through "
                                            f"the service; ask staff for its feedback")
        s.expunge_all()
        return job, sub


def _assignment_name(ctx: ServiceContext, assignment_pk: int) -> str:
    with ctx.db.read() as s:
        return s.scalar(sa.select(gm.Assignment.name).where(gm.Assignment.id == assignment_pk)) or ""


def describe(ctx: ServiceContext, who: Principal, submission_id: int,
             now: dt.datetime | None = None) -> dict[str, Any]:
    """A student's view of one of their submissions (the API's and the pages' one source)."""
    from autograder.service.exams import results_policy

    now = now or ctx.now()
    job, sub = _own_job(ctx, who, submission_id)
    name = _assignment_name(ctx, sub.assignment_pk)
    out: dict[str, Any] = {"id": sub.id, "assignment": name, "attempt": sub.attempt,
                           "state": job.state, "received_at": _iso(sub.submitted_at)}
    if job.state == JobState.QUEUED:
        out["queue_position"] = queue.queue_position(ctx.db, job.id,
                                                     ctx.settings.fairness_window_s)
        mean = queue.mean_grading_s(ctx.db, sub.assignment_pk)
        if mean is not None and out["queue_position"]:
            workers = max(1, ctx.settings.workers)
            out["estimated_wait_s"] = round(mean * (1 + (out["queue_position"] - 1) / workers), 1)
    if job.message and job.state in (JobState.NOT_GRADABLE, JobState.SYSTEM_ERROR,
                                     JobState.SUPERSEDED):
        out["message"] = job.message
    if job.state != JobState.GRADED:
        return out
    with ctx.db.read() as s:
        run = s.scalar(sa.select(gm.GradingRun).where(gm.GradingRun.submission_id == sub.id)
                       .order_by(gm.GradingRun.id.desc()).limit(1))
        payload = dict(run.result) if run is not None else {}
        ext = s.scalar(sa.select(gm.Extension.due).where(
            gm.Extension.student_pk == sub.student_pk,
            gm.Extension.assignment_pk == sub.assignment_pk))
    try:
        cfg = ctx.course.assignment(name).config
        published = ctx.published(cfg)
    except ConfigError:
        published = None
    spec = next((sp for sp in ctx.db.gb.specs() if sp.name == name), None)
    due = ext or (spec.due if spec else None)
    view = feedback.student_view(payload, now=now, due=due, published=published)
    policy = results_policy(ctx, who.student_pk, name, now)
    if policy is not None and not policy.full:  # a timed exam whose results are not out
        view = feedback.withheld_view(view, public=policy.public, note=policy.note)
    out.update(view)
    out["late_days"], out["counts"] = _lateness(ctx, who, sub, spec, ext, now)
    return out


def _lateness(ctx: ServiceContext, who: Principal, sub: gm.Submission, spec: Any,
              extension: dt.datetime | None, now: dt.datetime) -> tuple[int, bool]:
    """Late days of this submission (judged on its receipt time) and whether it is the attempt
    that counts for the assignment under the course policy."""
    if spec is None:
        return 0, False
    config = ctx.db.gb.config
    due = extension or spec.due
    days = 0
    if due is not None:
        days = late_days(sub.submitted_at, due, zone=config.zone,
                         grace=dt.timedelta(minutes=config.slack.grace_minutes),
                         clock=config.slack.late_day_clock).days
    records = ctx.db.gb.records(only=who.login)
    attempts = records[0].attempts.get(spec.name, ()) if records else ()
    entry = evaluate_assessment(spec, attempts, extension, config, now)
    counts = entry.attempt is not None and entry.attempt.label == f"submission {sub.attempt}"
    return days, counts


@router.get("/submissions/{submission_id}")
def submission(submission_id: int, who: Principal = Depends(student),
               ctx: ServiceContext = Depends(context)) -> dict:
    return describe(ctx, who, submission_id)


@router.get("/assignments/{name}/submissions")
def my_submissions(name: str, who: Principal = Depends(student),
                   ctx: ServiceContext = Depends(context)) -> list[dict]:
    from autograder.service.exams import results_policy

    ctx.assignment(name)
    policy = results_policy(ctx, who.student_pk, name)
    withheld = policy is not None and not policy.full
    with ctx.db.read() as s:
        rows = s.execute(
            sa.select(gm.Submission, GradingJob.state, gm.GradingRun.score,
                      gm.GradingRun.max_score)
            .join(gm.Assignment, gm.Assignment.id == gm.Submission.assignment_pk)
            .join(GradingJob, GradingJob.submission_id == gm.Submission.id)
            .outerjoin(gm.GradingRun, gm.GradingRun.run_id == GradingJob.run_id)
            .where(gm.Submission.student_pk == who.student_pk, gm.Assignment.name == name,
                   GradingJob.priority == 0)
            .order_by(gm.Submission.attempt)).all()
    return [{"id": sub.id, "attempt": sub.attempt, "state": state,
             "received_at": _iso(sub.submitted_at),
             "score": None if withheld else score, "max_score": None if withheld else max_score}
            for sub, state, score, max_score in rows]
