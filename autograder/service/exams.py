"""Timed exams on the grading service: starting an attempt, judging work on receipt against the
student's own end time, finalising attempts when time is up, what a student may see, and the
staff's exam pages.

The rules themselves are pure functions in :mod:`autograder.exams` (``ends_at``,
``start_refusal``, ``choose_variant``); this module applies them to the database. Every moment
comes from the app's clock (``ServiceContext.now()``, a :class:`~autograder.service.settings.Clock`),
so tests set the time instead of sleeping.

Students:

* ``POST /api/v1/assignments/{name}/start`` (JSON ``{"password", "honour_code"}``, or the exam
  page's form): starts the attempt and answers ``started_at``, ``ends_at`` (ISO with offset), the
  server's ``now`` and the variant's task. Starting again returns the same attempt (a reload, a
  new login, another computer). Refused with ``403 {"detail"}`` before ``opens``, after
  ``closes``, with a wrong password, from outside ``allowed_networks``; ``409`` once finished.
* ``GET /api/v1/assignments/{name}/attempt``: the attempt (404 before starting).
* ``POST /api/v1/assignments/{name}/finish``: hand in early (the last submission counts).
* Submissions (the API's and the pages' upload) go through :func:`check_submission`: refused
  (403) before the student started and from ``ends_at`` on, judged on the receipt time.
* ``/exams/{name}``: the exam page (the task, a countdown from the server's clock, the upload
  form and the attempts); ``/exams/{name}/files``: the variant's release files as a zip.

Staff (``exams.monitor``: TAs and instructors; ``exams.manage``: instructors):

* ``/staff/exams``: the course's exams; ``/staff/exams/{name}``: the live view (who started,
  submitted, time left), per-variant statistics, extending one student's time (an exam
  override, audited), and releasing the results (``exams.manage``).

The client address for ``allowed_networks`` is the connection's peer address. Behind a reverse
proxy every request comes from the proxy: list it in ``Settings.trusted_proxies`` and the
address the proxy appends to ``X-Forwarded-For`` is used instead (never a header from anyone
else, which a student could write themselves).
"""

from __future__ import annotations

import datetime as dt
import io
import ipaddress
import os
import secrets
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from markupsafe import Markup

from autograder.config import AssignmentConfig, ConfigError
from autograder.course import Assignment
from autograder.exams import (Allowance, ExamWindow, choose_variant, ends_at, exam_window,
                              start_refusal)
from autograder.service.auth import Principal, check_csrf, CSRF_FIELD
from autograder.service.database import ServiceDB
from autograder.service.models import (PRIORITY_SUBMISSION, ExamAttempt, ExamRelease,
                                       GradingJob, JobState, ServiceUser, WebSession)
from autograder.service.permissions import can, require
from autograder.service.settings import Settings
from gradebook import models as gm
from gradebook.errors import GradebookError

UTC = dt.timezone.utc
EXAM_KINDS = ("exam", "quiz")
#: Job states whose submission cannot count (nothing was graded, or the platform failed it).
_NOT_COUNTABLE = (JobState.NOT_GRADABLE, JobState.SYSTEM_ERROR)
SECRET_FILE = "exam_secret"

router = APIRouter()


# --- the course secret and the client's address ----------------------------------------------

def exam_secret(settings: Settings) -> str:
    """The key of the variant choice: ``Settings.exam_secret``, else ``<data>/exam_secret``
    (made once, readable by the service's user only). It must stay the same for a course: the
    variant is stored with each attempt anyway, so a lost secret changes only later choices."""
    if settings.exam_secret:
        return settings.exam_secret
    path = settings.uploads_dir.parent / SECRET_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:  # O_EXCL: two processes starting at once agree on the first one written
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
    return path.read_text().strip()


def _in_networks(address: str, networks: Sequence[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for net in networks:
        try:
            if ip in ipaddress.ip_network(net, strict=False):
                return True
        except ValueError:
            continue
    return False


def client_address(request: Request, trusted_proxies: Sequence[str] = ()) -> str:
    """The address the request came from, as the exam's network list is checked against: the
    peer of the connection; when that peer is a trusted proxy, the last address in
    ``X-Forwarded-For`` that is not itself a trusted proxy (the one the outermost proxy saw)."""
    peer = request.client.host if request.client else ""
    if not trusted_proxies or not _in_networks(peer, trusted_proxies):
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _in_networks(hop, trusted_proxies):
            return hop
    return hops[0] if hops else peer


# --- reading an exam -------------------------------------------------------------------------

def _ctx(request: Request) -> Any:
    return request.app.state.service


@dataclass(frozen=True)
class ExamTerms:
    """An exam of the course with its window in aware times."""

    assignment: Assignment
    config: AssignmentConfig
    window: ExamWindow

    @property
    def name(self) -> str:
        return self.assignment.name


def is_exam(cfg: AssignmentConfig) -> bool:
    """Whether an assignment is a timed exam or quiz the service runs with a timer."""
    return cfg.kind in EXAM_KINDS and cfg.exam is not None


def terms_of(ctx: Any, asg: Assignment) -> ExamTerms | None:
    """The exam terms of ``asg`` (None: not a timed exam)."""
    cfg = asg.config
    if not is_exam(cfg):
        return None
    assert cfg.exam is not None
    return ExamTerms(asg, cfg, exam_window(cfg.exam, ctx.zone()))


def exam_terms(ctx: Any, name: str) -> ExamTerms:
    """The exam ``name``: 404 when the course has no such assignment, 409 when it is not timed."""
    asg = ctx.assignment(name)
    terms = terms_of(ctx, asg)
    if terms is None:
        raise HTTPException(409, detail=f"{name} is not a timed exam (kind {asg.config.kind!r}, "
                                        f"no [exam] table); submit it as usual")
    return terms


def _assignment_pk(s: sa.orm.Session, db: ServiceDB, name: str) -> int:
    pk = s.scalar(sa.select(gm.Assignment.id).where(gm.Assignment.course_id == db.course_id,
                                                    gm.Assignment.name == name))
    if pk is None:
        raise HTTPException(404, detail=f"{name} is not in the gradebook yet; tell staff "
                                        f"(`autograder gradebook sync`)")
    return pk


def _attempt(s: sa.orm.Session, student_pk: int, assignment_pk: int,
             lock: bool = False) -> ExamAttempt | None:
    q = sa.select(ExamAttempt).where(ExamAttempt.student_pk == student_pk,
                                     ExamAttempt.assignment_pk == assignment_pk)
    return s.scalar(q.with_for_update() if lock else q)


def _allowance(db: ServiceDB, login: str, name: str) -> Allowance:
    try:
        return db.gb.exam_allowance(login, name)
    except GradebookError as e:
        raise HTTPException(409, detail=str(e)) from None


def current_end(terms: ExamTerms, attempt: ExamAttempt, allowance: Allowance) -> dt.datetime:
    """The attempt's end under the exam's terms and the student's allowance now (staff may have
    extended it since the start)."""
    return ends_at(attempt.started_at, terms.window, allowance)


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def _finished(attempt: ExamAttempt, now: dt.datetime) -> bool:
    return attempt.finalised_at is not None or now >= attempt.ends_at


def task_of(terms: ExamTerms, variant: str) -> dict[str, Any]:
    """What the student is asked to do: the variant's title, the modules to submit, and where the
    handout and the release files are."""
    asg = terms.assignment.variant_of(variant) if variant else terms.assignment
    cfg = asg.config
    return {"title": cfg.title or terms.config.title or terms.name, "variant": variant or None,
            "modules": [f"{m}.py" for m in cfg.modules],
            "page": f"/exams/{terms.name}", "files": f"/exams/{terms.name}/files"}


def attempt_json(terms: ExamTerms, attempt: ExamAttempt, now: dt.datetime) -> dict[str, Any]:
    """The API's view of an attempt."""
    finished = _finished(attempt, now)
    return {"exam": terms.name, "started_at": _iso(attempt.started_at),
            "ends_at": _iso(attempt.ends_at), "now": _iso(now),
            "seconds_left": 0 if finished else int((attempt.ends_at - now).total_seconds()),
            "state": "finished" if finished else "running",
            "finalised_at": _iso(attempt.finalised_at),
            "honour_code_accepted_at": _iso(attempt.honour_code_accepted_at),
            "counted_submission": attempt.counted_submission_id,
            "task": task_of(terms, attempt.variant)}


# --- starting, judging, finishing --------------------------------------------------------------

def start_attempt(ctx: Any, who: Principal, name: str, *, password: str = "",
                  address: str = "", honour_code: bool = False) -> tuple[dict[str, Any], bool]:
    """Start ``who``'s attempt at exam ``name`` now (or return the one they started); returns
    its view and whether it was created now. Raises 403/409 with the reason."""
    now = ctx.now()
    terms = exam_terms(ctx, name)
    db: ServiceDB = ctx.db
    allowance = _allowance(db, who.login, name)
    with db.read() as s:
        apk = _assignment_pk(s, db, name)
        existing = _attempt(s, who.student_pk or 0, apk)
    if existing is not None:
        return _resume(ctx, terms, existing.id, allowance, now), False
    exam = terms.config.exam
    assert exam is not None
    refusal = start_refusal(terms.window, now, password=exam.password, given_password=password,
                            client_address=address, allowed_networks=exam.allowed_networks,
                            allowance=allowance)
    if refusal:
        raise HTTPException(403, detail=refusal)
    variants = terms.assignment.variant_names()
    variant = choose_variant(exam_secret(ctx.settings), who.login, name, variants) \
        if variants else ""
    try:
        with db.write() as s:
            if _attempt(s, who.student_pk or 0, apk) is None:  # not started meanwhile
                s.add(ExamAttempt(student_pk=who.student_pk, assignment_pk=apk, variant=variant,
                                  started_at=now, ends_at=ends_at(now, terms.window, allowance),
                                  honour_code_accepted_at=now if honour_code else None,
                                  client_address=address[:64], finalised_by=""))
                created = True
            else:
                created = False
    except sa.exc.IntegrityError:  # another request of the same student won the race
        created = False
    with db.read() as s:
        row = _attempt(s, who.student_pk or 0, apk)
    assert row is not None
    if not created:
        return _resume(ctx, terms, row.id, allowance, now), False
    return attempt_json(terms, row, now), True


def _resume(ctx: Any, terms: ExamTerms, attempt_id: int, allowance: Allowance,
            now: dt.datetime) -> dict[str, Any]:
    with ctx.db.write() as s:
        row = s.get(ExamAttempt, attempt_id)
        assert row is not None
        if row.finalised_at is None:
            row.ends_at = current_end(terms, row, allowance)
        if _finished(row, now):
            when = (row.finalised_at or row.ends_at).astimezone(ctx.zone())
            raise HTTPException(409, detail=f"you already finished this exam (at "
                                            f"{when:%Y-%m-%d %H:%M %Z}); it cannot be started "
                                            f"again. Ask the course staff if something went wrong")
        return attempt_json(terms, row, now)


def my_attempt(ctx: Any, who: Principal, name: str) -> tuple[ExamTerms, ExamAttempt | None]:
    """The exam and ``who``'s attempt at it (None before they start), its end brought up to date
    with their allowance while it runs."""
    terms = exam_terms(ctx, name)
    db: ServiceDB = ctx.db
    with db.read() as s:
        apk = _assignment_pk(s, db, name)
        row = _attempt(s, who.student_pk or 0, apk)
    if row is None or row.finalised_at is not None:
        return terms, row
    end = current_end(terms, row, _allowance(db, who.login, name))
    if end != row.ends_at:
        with db.write() as s:
            fresh = s.get(ExamAttempt, row.id)
            if fresh is not None and fresh.finalised_at is None:
                fresh.ends_at = end
        row.ends_at = end
    return terms, row


def check_submission(ctx: Any, who: Principal, asg: Assignment, received_at: dt.datetime) -> None:
    """Refuse (403, with the reason) work on a timed exam that is not received inside the
    student's own attempt: before they started, from ``ends_at`` on, or after they finished.
    Anything else (homework) passes."""
    if not is_exam(asg.config):
        return
    terms, row = my_attempt(ctx, who, asg.name)
    if row is None:
        raise HTTPException(403, detail=f"start the exam first (on its page, /exams/{asg.name}, "
                                        f"or POST /api/v1/assignments/{asg.name}/start); work is "
                                        f"accepted only during your attempt")
    zone = ctx.zone()
    if row.finalised_at is not None and row.finalised_by == "student" \
            and received_at >= row.finalised_at:
        raise HTTPException(403, detail=f"you handed in this exam at "
                                        f"{row.finalised_at.astimezone(zone):%H:%M:%S %Z}; "
                                        f"nothing more is accepted")
    if received_at >= row.ends_at:
        late = (received_at - row.ends_at).total_seconds()
        raise HTTPException(403, detail=f"your exam time ended at "
                                        f"{row.ends_at.astimezone(zone):%H:%M:%S %Z}; this upload "
                                        f"was received {late:.0f} s after it and is not "
                                        f"accepted. Your last submission before the end counts")


def finish_attempt(ctx: Any, who: Principal, name: str) -> dict[str, Any]:
    """Hand in early: the attempt ends now and the last submission counts."""
    now = ctx.now()
    terms, row = my_attempt(ctx, who, name)
    if row is None:
        raise HTTPException(409, detail="you have not started this exam")
    if row.finalised_at is None:
        _finalise(ctx.db, row.id, now, by="student", until=min(now, row.ends_at))
    with ctx.db.read() as s:
        fresh = s.get(ExamAttempt, row.id)
    assert fresh is not None
    return attempt_json(terms, fresh, now)


def _counted_submission(s: sa.orm.Session, student_pk: int, assignment_pk: int,
                        until: dt.datetime) -> int | None:
    """The last submission received before ``until`` that can count (not refused by intake,
    not failed by the platform)."""
    latest_job = (sa.select(GradingJob.state)
                  .where(GradingJob.submission_id == gm.Submission.id,
                         GradingJob.priority == PRIORITY_SUBMISSION)
                  .order_by(GradingJob.id.desc()).limit(1).correlate(gm.Submission)
                  .scalar_subquery())
    return s.scalar(sa.select(gm.Submission.id)
                    .where(gm.Submission.student_pk == student_pk,
                           gm.Submission.assignment_pk == assignment_pk,
                           gm.Submission.submitted_at < until,
                           sa.or_(latest_job.is_(None), latest_job.not_in(list(_NOT_COUNTABLE))))
                    .order_by(gm.Submission.submitted_at.desc(), gm.Submission.id.desc())
                    .limit(1))


def _finalise(db: ServiceDB, attempt_id: int, now: dt.datetime, *, by: str,
              until: dt.datetime) -> bool:
    """Close one attempt (once: a second call changes nothing); False if already closed."""
    with db.write() as s:
        row = s.scalar(sa.select(ExamAttempt).where(ExamAttempt.id == attempt_id)
                       .with_for_update())
        if row is None or row.finalised_at is not None:
            return False
        row.finalised_at, row.finalised_by = now, by
        if by == "student":
            row.ends_at = min(row.ends_at, now)
        row.counted_submission_id = _counted_submission(s, row.student_pk, row.assignment_pk,
                                                        until)
        return True


def finalise_due(db: ServiceDB, course_root: Path, now: dt.datetime, zone: Any = None) -> int:
    """Finalise every attempt whose time is up at ``now`` (the last submission received in time
    counts, whether or not the browser is still open); idempotent. An attempt whose student was
    given more time since its end was stored gets the new end instead. Returns how many."""
    from autograder.course import Course

    with db.read() as s:
        due = list(s.execute(sa.select(ExamAttempt.id, gm.Student.student_id, gm.Assignment.name)
                             .join(gm.Student, gm.Student.id == ExamAttempt.student_pk)
                             .join(gm.Assignment, gm.Assignment.id == ExamAttempt.assignment_pk)
                             .where(ExamAttempt.finalised_at.is_(None),
                                    ExamAttempt.ends_at <= now)))
    if not due:
        return 0
    course = Course(course_root)
    zone = zone or db.gb.config.zone
    done = 0
    for attempt_id, login, name in due:
        end = None
        try:
            cfg = course.assignment(name).config
            if is_exam(cfg) and cfg.exam is not None:
                with db.read() as s:
                    row = s.get(ExamAttempt, attempt_id)
                assert row is not None
                end = ends_at(row.started_at, exam_window(cfg.exam, zone),
                              db.gb.exam_allowance(login, name))
        except (ConfigError, GradebookError, ValueError):
            end = None  # the exam's config is gone or broken: close at the stored end
        if end is not None and end > now:
            with db.write() as s:
                row = s.get(ExamAttempt, attempt_id)
                if row is not None and row.finalised_at is None:
                    row.ends_at = end
            continue
        with db.read() as s:
            row = s.get(ExamAttempt, attempt_id)
        if row is not None and _finalise(db, attempt_id, now, by="time", until=row.ends_at):
            done += 1
    return done


def end_other_sessions(db: ServiceDB, user_id: int, keep_token_hash: str) -> int:
    """One session per student during an exam: when a student with an attempt still running
    logs in, their other browser sessions end (returns how many)."""
    with db.write() as s:
        student_pk = s.scalar(sa.select(ServiceUser.student_pk).where(ServiceUser.id == user_id))
        if student_pk is None:
            return 0
        running = s.scalar(sa.select(sa.func.count(ExamAttempt.id))
                           .where(ExamAttempt.student_pk == student_pk,
                                  ExamAttempt.finalised_at.is_(None)))
        if not running:
            return 0
        others = list(s.scalars(sa.select(WebSession).where(
            WebSession.user_id == user_id, WebSession.token_hash != keep_token_hash)))
        for session in others:
            s.delete(session)
        return len(others)


# --- what the student may see ------------------------------------------------------------------

@dataclass(frozen=True)
class ResultsPolicy:
    """What a student may see of their exam work now: everything the tests' visibility allows
    (``full``), or only the public tests when the exam shows them (``public``), or nothing."""

    full: bool
    public: bool
    note: str


def released_at(db: ServiceDB, assignment_pk: int) -> dt.datetime | None:
    with db.read() as s:
        return s.scalar(sa.select(ExamRelease.released_at)
                        .where(ExamRelease.assignment_pk == assignment_pk))


def results_policy(ctx: Any, student_pk: int | None, name: str,
                   now: dt.datetime | None = None) -> ResultsPolicy | None:
    """The exam policy for ``name`` (None: not a timed exam, homework rules apply). During the
    attempt: the public tests if the exam says so, hidden ones never, no score. After it:
    everything per the tests' visibility if ``results = "immediately"`` or staff released the
    results, else as during it."""
    try:
        cfg = ctx.course.assignment(name).config
    except (ConfigError, KeyError):
        return None
    if not is_exam(cfg):
        return None
    assert cfg.exam is not None
    now = now or ctx.now()
    with ctx.db.read() as s:
        apk = s.scalar(sa.select(gm.Assignment.id).where(
            gm.Assignment.course_id == ctx.db.course_id, gm.Assignment.name == name))
        row = _attempt(s, student_pk or 0, apk or 0)
    public = cfg.exam.public_tests_visible
    over = row is not None and _finished(row, now)
    released = released_at(ctx.db, apk or 0)
    if over and (cfg.exam.results == "immediately" or (released is not None and now >= released)):
        return ResultsPolicy(True, True, "")
    if not over:
        note = ("Your score is shown after the exam. " +
                ("Only the public tests' feedback is shown during it."
                 if public else "No feedback is shown during it."))
    else:
        note = "Your results will be shown once the course staff release them."
    return ResultsPolicy(False, public, note)


# --- the task: the variant's handout ------------------------------------------------------------

def handout_html(terms: ExamTerms, variant: str) -> Markup | None:
    """The variant's released handout notebook as HTML (:func:`autograder.service.handout.
    notebook_html`: raw HTML disabled so nothing in it runs, formulas as MathML, code cells as
    escaped code). None when not released."""
    from autograder.service.handout import notebook_html

    asg = terms.assignment.variant_of(variant) if variant else terms.assignment
    handout = asg.config.handout
    if not handout:
        return None
    # The release, never the source: the source handout may hold solution regions.
    return notebook_html(asg.release_dir / Path(handout).name)


def release_zip(terms: ExamTerms, variant: str) -> bytes | None:
    """The variant's release folder (stubs, handout, public tests) as a zip."""
    asg = terms.assignment.variant_of(variant) if variant else terms.assignment
    root = asg.release_dir
    if not root.is_dir():
        return None
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for p in sorted(root.rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts:
                z.write(p, Path(terms.name) / p.relative_to(root))
    return buf.getvalue()


# --- the JSON API --------------------------------------------------------------------------------

def _student(request: Request) -> Principal:
    from autograder.service.api import student

    return student(request, _ctx(request))


@router.post("/api/v1/assignments/{name}/start")
async def api_start(name: str, request: Request) -> JSONResponse:
    """Start (or resume) the caller's attempt: ``201`` when started now, ``200`` for the one
    already running; ``403``/``409`` with the reason when it may not start."""
    who = await run_in_threadpool(_student, request)
    body: dict[str, Any] = {}
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = await request.json()
        except ValueError:
            raise HTTPException(400, detail='send a JSON object, e.g. {"password": "...", '
                                            '"honour_code": true}') from None
        if not isinstance(body, dict):
            raise HTTPException(400, detail='send a JSON object, e.g. {"password": "..."}')
    ctx = _ctx(request)
    view, created = await run_in_threadpool(
        start_attempt, ctx, who, name, password=str(body.get("password") or ""),
        address=client_address(request, ctx.settings.trusted_proxies),
        honour_code=bool(body.get("honour_code")))
    return JSONResponse(status_code=201 if created else 200, content=view)


@router.get("/api/v1/assignments/{name}/attempt")
def api_attempt(name: str, request: Request) -> dict:
    who = _student(request)
    ctx = _ctx(request)
    terms, row = my_attempt(ctx, who, name)
    if row is None:
        raise HTTPException(404, detail=f"you have not started {name}; POST "
                                        f"/api/v1/assignments/{name}/start starts it")
    return attempt_json(terms, row, ctx.now())


@router.post("/api/v1/assignments/{name}/finish")
def api_finish(name: str, request: Request) -> dict:
    who = _student(request)
    return finish_attempt(_ctx(request), who, name)


# --- the student's exam page ---------------------------------------------------------------------

def _page_student(request: Request) -> Principal | Response:
    from autograder.service import pages

    return pages._student_or_redirect(request)


def _when(ctx: Any, moment: dt.datetime | None) -> str:
    return "—" if moment is None else moment.astimezone(ctx.zone()).strftime("%a %d %b %Y, %H:%M")


def _minutes(value: float) -> str:
    return f"{value:g} min" if value < 120 else f"{value / 60:g} h"


def exam_page_values(ctx: Any, who: Principal, name: str) -> dict[str, Any]:
    """Everything the exam page shows (from the same functions as the API)."""
    from autograder.service import api, pages

    now = ctx.now()
    terms, row = my_attempt(ctx, who, name)
    exam = terms.config.exam
    assert exam is not None
    allowance = _allowance(ctx.db, who.login, name)
    own = terms.window.duration * allowance.time_factor \
        + dt.timedelta(minutes=allowance.extra_minutes)
    attempts = []
    policy = results_policy(ctx, who.student_pk, name, now)
    for a in reversed(api.my_submissions(name, who, ctx)):
        attempts.append({**a, "state_text": pages.STATE_TEXT.get(a["state"], a["state"]),
                         "received_text": pages._course_time(ctx, a["received_at"]),
                         "score_text": pages._points(a["score"], a["max_score"]),
                         "counts": row is not None and row.counted_submission_id == a["id"]})
    finished = row is not None and _finished(row, now)
    refusal = None
    if row is None:
        refusal = start_refusal(terms.window, now, allowance=allowance)
    return {
        "exam": terms, "cfg": terms.config, "terms_exam": exam, "attempt": row,
        "finished": finished, "running": row is not None and not finished,
        "task": task_of(terms, row.variant) if row else None,
        "handout": handout_html(terms, row.variant) if row else None,
        "opens_text": _when(ctx, terms.window.opens),
        "closes_text": _when(ctx, terms.window.closes_for(allowance)),
        "duration_text": _minutes(exam.duration_minutes),
        "own_text": _minutes(own.total_seconds() / 60),
        "has_allowance": allowance != Allowance(),
        "needs_password": bool(exam.password), "refusal": refusal,
        "server_now": _iso(now), "ends_at": _iso(row.ends_at) if row else None,
        "ends_text": row.ends_at.astimezone(ctx.zone()).strftime("%H:%M:%S") if row else "",
        "started_text": _when(ctx, row.started_at) if row else "",
        "attempts": attempts, "policy": policy,
        "modules": list(terms.config.modules),
    }


def _exam_page(request: Request, who: Principal, name: str, *, error: str | None = None,
               notice: str | None = None, status_code: int = 200) -> Response:
    from autograder.service import pages

    ctx = _ctx(request)
    values = exam_page_values(ctx, who, name)
    return pages._render(request, "exam/exam.html", status_code=status_code, user=who,
                         me=pages._me(ctx, who), error=error, notice=notice, **values)


@router.get("/exams/{name}", response_class=HTMLResponse, include_in_schema=False)
def exam_page(request: Request, name: str) -> Response:
    """The exam: before the start its terms and the start form; during it the task, the
    countdown (from the server's clock), the upload form and the attempts; after it the
    results the policy allows."""
    who = _page_student(request)
    if isinstance(who, Response):
        return who
    received = request.query_params.get("submitted", "")
    notice = (f"Received (submission {received}): it is graded in the background; your last "
              f"submission before your end time counts." if received.isdigit() else None)
    return _exam_page(request, who, name, notice=notice)


@router.post("/exams/{name}/start", response_class=HTMLResponse, include_in_schema=False)
async def exam_start_form(request: Request, name: str) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get(CSRF_FIELD, "")))
    who = _page_student(request)
    if isinstance(who, Response):
        return who
    ctx = _ctx(request)
    if not form.get("honour_code"):
        return await run_in_threadpool(
            _exam_page, request, who, name, status_code=422,
            error="Tick the honour code to start: you work alone and use only what the exam "
                  "allows.")
    try:
        await run_in_threadpool(start_attempt, ctx, who, name,
                                password=str(form.get("password", "")),
                                address=client_address(request, ctx.settings.trusted_proxies),
                                honour_code=True)
    except HTTPException as e:
        if e.status_code not in (403, 409):
            raise
        return await run_in_threadpool(_exam_page, request, who, name, error=str(e.detail),
                                       status_code=e.status_code)
    return RedirectResponse(f"/exams/{name}", status_code=303)


@router.post("/exams/{name}/submit", response_class=HTMLResponse, include_in_schema=False)
async def exam_submit_form(request: Request, name: str) -> Response:
    """The exam page's upload: the same intake, caps and judgement on receipt as the API."""
    from autograder.service import api, pages

    ctx = _ctx(request)
    received_at = ctx.now()  # judged on receipt, before the body is even read
    who = _page_student(request)
    if isinstance(who, Response):
        return who
    asg = ctx.assignment(name)
    try:
        uploads = await pages._read_upload_form(request, ctx, asg.config.main_module)
        enqueued = await run_in_threadpool(api._accept, ctx, who, asg, uploads, received_at)
    except HTTPException as e:
        if e.status_code == 403 and "CSRF" in str(e.detail):
            raise
        return await run_in_threadpool(_exam_page, request, who, name, error=str(e.detail),
                                       status_code=e.status_code)
    return RedirectResponse(f"/exams/{name}?submitted={enqueued.submission_id}",
                            status_code=303)


@router.post("/exams/{name}/finish", response_class=HTMLResponse, include_in_schema=False)
async def exam_finish_form(request: Request, name: str) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get(CSRF_FIELD, "")))
    who = _page_student(request)
    if isinstance(who, Response):
        return who
    await run_in_threadpool(finish_attempt, _ctx(request), who, name)
    return RedirectResponse(f"/exams/{name}", status_code=303)


@router.get("/exams/{name}/files", include_in_schema=False)
def exam_files(request: Request, name: str) -> Response:
    """The student's variant's release files (stubs, handout, public tests), once started."""
    who = _page_student(request)
    if isinstance(who, Response):
        return who
    terms, row = my_attempt(_ctx(request), who, name)
    if row is None:
        raise HTTPException(403, detail="start the exam to get its files")
    data = release_zip(terms, row.variant)
    if data is None:
        raise HTTPException(404, detail="this exam's files were not released; tell the staff "
                                        f"(`autograder release {name}`)")
    return Response(data, media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{name}.zip"'})


# --- staff ---------------------------------------------------------------------------------------

def _staff_exams(ctx: Any) -> list[ExamTerms]:
    out = []
    for name in ctx.course.assignment_names():
        try:
            terms = terms_of(ctx, ctx.course.assignment(name))
        except ConfigError:
            continue
        if terms is not None:
            out.append(terms)
    return out


def _left_text(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def live_view(ctx: Any, name: str) -> dict[str, Any]:
    """The exam as it stands now, per student on the roster: not started, running (time left),
    finished; their variant, submissions and latest score; and per-variant statistics."""
    now = ctx.now()
    terms = exam_terms(ctx, name)
    db: ServiceDB = ctx.db
    with db.read() as s:
        apk = _assignment_pk(s, db, name)
        students = list(s.execute(sa.select(gm.Student.id, gm.Student.student_id, gm.Student.name)
                                  .where(gm.Student.course_id == db.course_id,
                                         gm.Student.status != "dropped")
                                  .order_by(gm.Student.student_id)))
        attempts = {a.student_pk: a for a in s.scalars(
            sa.select(ExamAttempt).where(ExamAttempt.assignment_pk == apk))}
        subs: dict[int, list[tuple[int, dt.datetime]]] = {}
        for sid, spk, at in s.execute(sa.select(gm.Submission.id, gm.Submission.student_pk,
                                                gm.Submission.submitted_at)
                                      .where(gm.Submission.assignment_pk == apk)
                                      .order_by(gm.Submission.submitted_at)):
            subs.setdefault(spk, []).append((sid, at))
        # The newest run of each submission: its score.
        scores: dict[int, tuple[float, float]] = {}
        for sub_id, run_score, run_max in s.execute(
                sa.select(gm.GradingRun.submission_id, gm.GradingRun.score,
                          gm.GradingRun.max_score)
                .join(gm.Submission, gm.Submission.id == gm.GradingRun.submission_id)
                .where(gm.Submission.assignment_pk == apk).order_by(gm.GradingRun.id)):
            scores[sub_id] = (run_score, run_max)
        release = s.scalar(sa.select(ExamRelease).where(ExamRelease.assignment_pk == apk))
    rows = []
    per_variant: dict[str, dict[str, Any]] = {
        v: {"variant": v, "started": 0, "submitted": 0, "scores": []}
        for v in (terms.assignment.variant_names() or [""])}
    for spk, login, sname in students:
        a = attempts.get(spk)
        mine = subs.get(spk, [])
        if a is None:
            state, left = "not started", None
        elif a.finalised_at is not None:
            state, left = ("handed in" if a.finalised_by == "student" else "finished"), 0.0
        elif now >= a.ends_at:
            state, left = "time up", 0.0
        else:
            state, left = "running", (a.ends_at - now).total_seconds()
        counted = a.counted_submission_id if a else None
        last = counted or (mine[-1][0] if mine else None)
        score = scores.get(last) if last else None
        if a is not None:
            stats = per_variant.setdefault(a.variant, {"variant": a.variant, "started": 0,
                                                       "submitted": 0, "scores": []})
            stats["started"] += 1
            if mine:
                stats["submitted"] += 1
            if score is not None:
                stats["scores"].append(score[0])
        rows.append({"login": login, "name": sname or "", "state": state,
                     "variant": a.variant if a else "", "left_s": left,
                     "left_text": "—" if left is None else _left_text(left),
                     "started_text": _when(ctx, a.started_at) if a else "—",
                     "ends_text": _when(ctx, a.ends_at) if a else "—",
                     "submissions": len(mine),
                     "last_text": _when(ctx, mine[-1][1]) if mine else "—",
                     "score_text": "—" if score is None else f"{score[0]:g} / {score[1]:g}",
                     "counted": counted})
    variants = []
    for v in per_variant.values():
        n = len(v["scores"])
        variants.append({"variant": v["variant"] or "(one)", "started": v["started"],
                         "submitted": v["submitted"], "graded": n,
                         "mean": round(sum(v["scores"]) / n, 2) if n else None})
    counts = {k: sum(1 for r in rows if r["state"] == k)
              for k in ("not started", "running", "time up", "finished", "handed in")}
    return {"exam": terms, "rows": rows, "variants": variants, "counts": counts,
            "now_text": now.astimezone(ctx.zone()).strftime("%H:%M:%S"), "server_now": _iso(now),
            "release": release, "released_text": _when(ctx, release.released_at) if release
            else "", "opens_text": _when(ctx, terms.window.opens),
            "closes_text": _when(ctx, terms.window.closes),
            "duration_text": _minutes(terms.window.duration.total_seconds() / 60)}


def _staff_render(request: Request, template: str, who: Principal, **values: Any) -> Response:
    from autograder.service import staff_pages

    return staff_pages.render(request, template, who, **values)


@router.get("/staff/exams", response_class=HTMLResponse, include_in_schema=False)
def staff_exams(request: Request, who: Principal = Depends(require("exams.monitor"))) -> Response:
    """The course's timed exams and quizzes, with links to their live views."""
    ctx = _ctx(request)
    items = []
    for terms in _staff_exams(ctx):
        live = live_view(ctx, terms.name)
        items.append({"name": terms.name, "title": terms.config.title, "kind": terms.config.kind,
                      "opens_text": live["opens_text"], "closes_text": live["closes_text"],
                      "duration_text": live["duration_text"], "counts": live["counts"],
                      "released": live["release"] is not None,
                      "results": terms.config.exam.results if terms.config.exam else ""})
    return _staff_render(request, "staff/exams/index.html", who, exams=items)


@router.get("/staff/exams/{name}", response_class=HTMLResponse, include_in_schema=False)
def staff_exam(request: Request, name: str,
               who: Principal = Depends(require("exams.monitor"))) -> Response:
    """The live view of one exam: refreshed by HTMX every few seconds."""
    ctx = _ctx(request)
    return _staff_render(request, "staff/exams/live.html", who, can_manage=can(who, "exams.manage"),
                         **live_view(ctx, name))


@router.get("/staff/exams/{name}/live", response_class=HTMLResponse, include_in_schema=False)
def staff_exam_live(request: Request, name: str,
                    who: Principal = Depends(require("exams.monitor"))) -> Response:
    """The fragment the live view polls (students and variants)."""
    ctx = _ctx(request)
    return _staff_render(request, "staff/exams/_live.html", who, **live_view(ctx, name))


@router.get("/api/v1/staff/exams/{name}")
def staff_exam_json(request: Request, name: str,
                    who: Principal = Depends(require("exams.monitor"))) -> dict:
    """The live view as JSON (for scripts and proctors' dashboards)."""
    live = live_view(_ctx(request), name)
    return {"exam": name, "now": live["server_now"], "counts": live["counts"],
            "released_at": _iso(live["release"].released_at) if live["release"] else None,
            "students": [{k: r[k] for k in ("login", "state", "variant", "left_s",
                                            "submissions", "counted")} for r in live["rows"]],
            "variants": live["variants"]}


def extend_time(ctx: Any, name: str, student: str, minutes: float, *, by: str,
                reason: str) -> dt.datetime | None:
    """Give ``student`` ``minutes`` more on exam ``name`` from their current end, now: an exam
    override (the gradebook audits it) that adds the minutes, and moves their close of the
    window as far as needed. Returns their new end (None if they have not started)."""
    terms = exam_terms(ctx, name)
    if not (0 < minutes <= 24 * 60):
        raise HTTPException(422, detail="give the extra minutes as a number from 1 to 1440")
    db: ServiceDB = ctx.db
    with db.read() as s:
        st = s.scalar(sa.select(gm.Student).where(gm.Student.course_id == db.course_id,
                                                  gm.Student.student_id == student))
        if st is None:
            raise HTTPException(404, detail=f"no student {student!r} in the roster")
        apk = _assignment_pk(s, db, name)
        ovr = s.scalar(sa.select(gm.ExamOverride).where(gm.ExamOverride.student_pk == st.id,
                                                        gm.ExamOverride.assignment_pk == apk))
        row = _attempt(s, st.id, apk)
    if row is not None and row.finalised_at is not None:
        raise HTTPException(409, detail=f"{student}'s attempt is already finalised; grant more "
                                        f"time before it ends, or set an exam override for a "
                                        f"new window with `autograder gradebook exam-override`")
    extra = (ovr.extra_minutes if ovr else 0.0) + minutes
    window_ext = ovr.window_extension_minutes if ovr else 0.0
    allowance = _allowance(db, student, name)
    if row is not None:
        target = row.ends_at + dt.timedelta(minutes=minutes)
        needed = (target - terms.window.closes).total_seconds() / 60
        window_ext = max(window_ext, needed)
    try:
        db.gb.set_exam_override(student, name, extra_minutes=extra,
                                window_extension_minutes=max(0.0, window_ext),
                                reason=reason or f"{minutes:g} more minutes during the exam",
                                set_by=by)
    except GradebookError as e:
        raise HTTPException(422, detail=str(e)) from None
    if row is None:
        return None
    allowance = _allowance(db, student, name)
    with db.write() as s:
        fresh = s.get(ExamAttempt, row.id)
        assert fresh is not None
        fresh.ends_at = current_end(terms, fresh, allowance)
        return fresh.ends_at


@router.post("/staff/exams/{name}/extend", include_in_schema=False)
async def staff_extend(request: Request, name: str,
                       who: Principal = Depends(require("exams.monitor"))) -> Response:
    """Extend one student's time on the spot (form: student, minutes, reason)."""
    form = await request.form()
    student = str(form.get("student", "")).strip()
    try:
        minutes = float(str(form.get("minutes", "")).strip())
    except ValueError:
        return RedirectResponse(f"/staff/exams/{name}?error=give+the+minutes+as+a+number",
                                status_code=303)
    ctx = _ctx(request)
    from urllib.parse import urlencode

    try:
        end = await run_in_threadpool(extend_time, ctx, name, student, minutes, by=who.login,
                                      reason=str(form.get("reason", "")).strip())
    except HTTPException as e:
        return RedirectResponse(f"/staff/exams/{name}?{urlencode({'error': str(e.detail)})}",
                                status_code=303)
    msg = (f"{student} has {minutes:g} more minutes: their attempt now ends "
           f"{_when(ctx, end)}." if end else
           f"{student} will have {minutes:g} more minutes when they start.")
    return RedirectResponse(f"/staff/exams/{name}?{urlencode({'flash': msg})}", status_code=303)


def release_results(ctx: Any, name: str, by: str) -> dt.datetime:
    """Release the exam's results to its students now (audited); releasing again keeps the
    first release time."""
    exam_terms(ctx, name)
    now = ctx.now()
    db: ServiceDB = ctx.db
    with db.write() as s:
        apk = _assignment_pk(s, db, name)
        row = s.scalar(sa.select(ExamRelease).where(ExamRelease.assignment_pk == apk))
        if row is not None:
            return row.released_at
        s.add(ExamRelease(assignment_pk=apk, released_at=now, released_by=by))
        s.add(gm.AuditEntry(course_id=db.course_id, at=now, actor=by,
                            action="exam results released", student="", assignment=name,
                            detail="students see their scores and feedback", reason=""))
        return now


@router.post("/staff/exams/{name}/release", include_in_schema=False)
async def staff_release(request: Request, name: str,
                        who: Principal = Depends(require("exams.manage"))) -> Response:
    """Release the results (``results = "after_release"``)."""
    from urllib.parse import urlencode

    ctx = _ctx(request)
    when = await run_in_threadpool(release_results, ctx, name, who.login)
    msg = f"Results of {name} released ({_when(ctx, when)}): students see them now."
    return RedirectResponse(f"/staff/exams/{name}?{urlencode({'flash': msg})}", status_code=303)


async def finalise_periodically(ctx: Any) -> None:
    """The service's finaliser (run by the app's lifespan): every
    ``Settings.exam_finalise_every_s`` seconds, finalise the attempts whose time is up, so the
    last submission counts within that time of ``ends_at`` even if no browser is open."""
    import asyncio
    import sys

    every = max(0.05, float(ctx.settings.exam_finalise_every_s))
    while True:
        try:
            await run_in_threadpool(finalise_due, ctx.db, ctx.settings.course_root, ctx.now(),
                                    ctx.zone())
        except Exception as e:  # a database hiccup: try again at the next tick
            print(f"exam finaliser: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        await asyncio.sleep(every)
