"""Assignment and Grade Services: each counted score goes to the LMS's gradebook.

* **What is sent**: for each student known to the LMS (an LTI user linked to their account) and
  each line item of a linked assignment, the gradebook's counted score (after late penalties;
  the gradebook decides what counts: :meth:`gradebook.store.Gradebook.grades`) out of the
  assignment's points, ``activityProgress: Completed``, ``gradingProgress: FullyGraded``,
  ``timestamp`` the time of the newest result. A record the gradebook does not count yet (not
  graded, not due) sends nothing.
* **Idempotent**: ``lti_passback`` keeps, per student and line item, the score to send and the
  score the LMS last accepted; a score equal to the accepted one is never sent again.
* **Retried**: 429 (its ``Retry-After`` honoured), 5xx and network errors are tried again with
  a doubling, jittered wait, ``[lti.passback] attempts`` times in all; then the row is
  ``failed`` with the reason (any other 4xx fails at once: it would fail again).
* **Never in the way of grading**: :func:`schedule_passback` (called by a worker once a result
  is recorded) returns at once; a background thread works out the score and sends it. A row
  being sent is claimed (``claimed_by``/``claimed_until``) so two processes never send it
  together; a sender that died leaves a claim that lapses and the next sender takes the row.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import os
import random
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import requests
import sqlalchemy as sa
from pylti1p3.assignments_grades import AssignmentsGradesService
from pylti1p3.exception import LtiException, LtiServiceException
from pylti1p3.grade import Grade
from pylti1p3.lineitem import LineItem

from autograder.errors import UserError
from autograder.service.database import ServiceDB
from autograder.service.lti.config import LtiConfig, load_lti, tool_conf
from autograder.service.lti.models import (LtiContext, LtiLink, LtiPassback, LtiUser,
                                           PassbackState)
from autograder.service.lti.platform import Connector
from autograder.service.models import ExamRelease, ServiceUser
from gradebook import models as gm

UTC = dt.timezone.utc
SCORE_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
LINEITEM_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
#: Gradebook statuses of a record that counts with a score (``missing``: nothing to send).
SCORED = frozenset({"on_time", "late", "not_accepted"})


class PassbackError(UserError):
    """Passback cannot start (no registration for a context's issuer, no key); says the fix."""


@dataclass
class PassbackReport:
    """What one sending pass did."""

    sent: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


# -- the platform's services ------------------------------------------------------------------

def connector_for(cfg: LtiConfig, issuer: str, client_id: str) -> Connector:
    """An OAuth2 client for the platform ``issuer`` registered as ``client_id``."""
    if cfg.platform(issuer, client_id) is None:
        raise PassbackError(f"no [[lti.platforms]] entry for issuer {issuer!r} and client id "
                            f"{client_id!r} in course.toml; add it (see docs/lti.md)")
    registration = tool_conf(cfg).find_registration_by_params(issuer, client_id)
    return Connector(registration, cfg.private_key_pem(), cfg.passback.timeout_s)


def ags_for(connector: Connector, ctx: LtiContext, lineitem_url: str | None = None
            ) -> AssignmentsGradesService:
    """The AGS client of a context, as its last launch advertised it."""
    data = {"scope": list(ctx.ags_scopes or []), "lineitems": ctx.lineitems_url or "",
            "lineitem": lineitem_url or ""}
    return AssignmentsGradesService(connector, data)  # type: ignore[arg-type]


def ensure_lineitem(db: ServiceDB, cfg: LtiConfig, link_pk: int) -> str | None:
    """The line item of a linked resource link: the one the LMS gave it, else the context's
    line item tagged with the assignment's name (created with the assignment's points when
    the LMS lets the tool create line items). None when there is none to have."""
    with db.read() as s:
        row = s.execute(sa.select(LtiLink, LtiContext, gm.Assignment)
                        .join(LtiContext, LtiContext.id == LtiLink.context_pk)
                        .join(gm.Assignment, gm.Assignment.id == LtiLink.assignment_pk)
                        .where(LtiLink.id == link_pk)).first()
    if row is None:
        return None
    link, ctx, asg = row
    if link.lineitem_url:
        return link.lineitem_url
    if not ctx.lineitems_url or LINEITEM_SCOPE not in (ctx.ags_scopes or []):
        return None
    wanted = (LineItem().set_tag(asg.name).set_label(asg.title or asg.name)
              .set_score_maximum(float(asg.points or 0) or 1.0).set_resource_id(asg.name)
              .set_resource_link_id(link.resource_link_id))
    found = ags_for(connector_for(cfg, ctx.issuer, ctx.client_id), ctx).find_or_create_lineitem(
        wanted, find_by="tag")
    url = found.get_id()
    if url:
        with db.write() as s:
            stored = s.get(LtiLink, link_pk)
            if stored is not None:
                stored.lineitem_url = url
    return url


# -- what should be in the LMS ----------------------------------------------------------------

@dataclass(frozen=True)
class _Target:
    student_pk: int
    student_id: str
    assignment_pk: int
    assignment: str
    context_pk: int
    lineitem_url: str
    lms_user_id: str


def _targets(db: ServiceDB, student_pk: int | None, assignment_pk: int | None) -> list[_Target]:
    """Every (student, line item) a score may go to: linked assignments with a line item,
    students known to that context's LMS."""
    with db.read() as s:
        q = (sa.select(ServiceUser.student_pk, gm.Student.student_id, LtiLink.assignment_pk,
                       gm.Assignment.name, LtiContext.id, LtiLink.lineitem_url, LtiUser.sub)
             .join(LtiContext, LtiContext.id == LtiLink.context_pk)
             .join(LtiUser, sa.and_(LtiUser.course_id == LtiContext.course_id,
                                    LtiUser.issuer == LtiContext.issuer))
             .join(ServiceUser, ServiceUser.id == LtiUser.user_id)
             .join(gm.Student, gm.Student.id == ServiceUser.student_pk)
             .join(gm.Assignment, gm.Assignment.id == LtiLink.assignment_pk)
             .where(LtiContext.course_id == db.course_id, LtiLink.lineitem_url.is_not(None),
                    gm.Student.status == "active",
                    # An exam's or quiz's scores reach the LMS only once staff released its
                    # results: a passback is a way of showing a score.
                    sa.or_(gm.Assignment.kind.not_in(("exam", "quiz")),
                           sa.exists().where(ExamRelease.assignment_pk == gm.Assignment.id))))
        if student_pk is not None:
            q = q.where(ServiceUser.student_pk == student_pk)
        if assignment_pk is not None:
            q = q.where(LtiLink.assignment_pk == assignment_pk)
        seen: dict[tuple[int, str], _Target] = {}
        for spk, sid, apk, name, cpk, url, sub in s.execute(q.order_by(LtiLink.id)):
            if spk is None or apk is None or url is None:  # excluded by the query's joins
                continue
            seen.setdefault((spk, url), _Target(spk, sid, apk, name, cpk, url, sub))
    return list(seen.values())


def _counted(db: ServiceDB, student_ids: set[str]) -> dict[tuple[str, str], tuple[float, float]]:
    """(student, assignment) -> (points, out of) for each record the gradebook counts."""
    grades = (db.gb.grades(only=next(iter(student_ids))) if len(student_ids) == 1
              else [g for g in db.gb.grades() if g.student_id in student_ids])
    out = {}
    for g in grades:
        for a in g.assessments:
            if a.counted and a.status in SCORED and a.max_points > 0:
                out[(g.student_id, a.name)] = (round(max(a.points, 0.0), 6), float(a.max_points))
    return out


def _result_times(db: ServiceDB, pairs: set[tuple[int, int]]) -> dict[tuple[int, int], dt.datetime]:
    """(student, assignment) -> when their newest result (or manual score) was recorded."""
    students = {spk for spk, _ in pairs}
    out: dict[tuple[int, int], dt.datetime] = {}
    with db.read() as s:
        runs = (sa.select(gm.Submission.student_pk, gm.Submission.assignment_pk,
                          sa.func.max(gm.GradingRun.recorded_at))
                .join(gm.GradingRun, gm.GradingRun.submission_id == gm.Submission.id)
                .where(gm.Submission.student_pk.in_(students))
                .group_by(gm.Submission.student_pk, gm.Submission.assignment_pk))
        manual = (sa.select(gm.ManualScore.student_pk, gm.ManualScore.assignment_pk,
                            gm.ManualScore.recorded_at)
                  .where(gm.ManualScore.student_pk.in_(students)))
        for spk, apk, at in [*s.execute(runs), *s.execute(manual)]:
            if at is not None and (spk, apk) in pairs:
                at = at if at.tzinfo else at.replace(tzinfo=UTC)
                out[(spk, apk)] = max(out.get((spk, apk), at), at)
    return out


def _same(a: tuple[float | None, float | None], b: tuple[float | None, float | None]) -> bool:
    return (None not in a and None not in b
            and abs(a[0] - b[0]) < 1e-6 and abs(a[1] - b[1]) < 1e-6)  # type: ignore[operator]


def refresh(db: ServiceDB, *, student_pk: int | None = None, assignment_pk: int | None = None,
            retry_failed: bool = False) -> list[int]:
    """Bring ``lti_passback`` up to the gradebook: a changed score becomes ``pending``; a score
    equal to the one the LMS accepted stays ``sent`` and is not sent again. ``retry_failed``
    (the "send all" button) makes failed rows pending again. Returns the pending rows' ids."""
    targets = _targets(db, student_pk, assignment_pk)
    if not targets:
        return []
    scores = _counted(db, {t.student_id for t in targets})
    times = _result_times(db, {(t.student_pk, t.assignment_pk) for t in targets})
    for attempt in range(3):
        try:
            return _apply(db, targets, scores, times, retry_failed)
        except sa.exc.IntegrityError:
            # Another process added the same (student, line item) row at the same moment
            # (PostgreSQL; SQLite serialises writers): read again and update it instead.
            if attempt == 2:
                raise
    return []


def _apply(db: ServiceDB, targets: list[_Target],
           scores: dict[tuple[str, str], tuple[float, float]],
           times: dict[tuple[int, int], dt.datetime], retry_failed: bool) -> list[int]:
    now = dt.datetime.now(UTC)
    pending: list[int] = []
    with db.write() as s:
        for t in targets:
            want = scores.get((t.student_id, t.assignment))
            if want is None:
                continue
            row = s.scalar(sa.select(LtiPassback).where(LtiPassback.student_pk == t.student_pk,
                                                        LtiPassback.lineitem_url == t.lineitem_url))
            if row is None:
                row = LtiPassback(student_pk=t.student_pk, assignment_pk=t.assignment_pk,
                                  context_pk=t.context_pk, lineitem_url=t.lineitem_url,
                                  lms_user_id=t.lms_user_id, state=PassbackState.PENDING,
                                  score_given=want[0], score_maximum=want[1],
                                  result_at=times.get((t.student_pk, t.assignment_pk), now),
                                  attempts=0, error="", updated_at=now)
                s.add(row)
                s.flush()
                pending.append(row.id)
                continue
            row.lms_user_id, row.context_pk = t.lms_user_id, t.context_pk
            if _same(want, (row.sent_score_given, row.sent_score_maximum)):
                if row.state != PassbackState.SENT:  # back to what the LMS already has
                    row.state, row.error, row.updated_at = PassbackState.SENT, "", now
                    row.score_given, row.score_maximum = want
                continue
            if _same(want, (row.score_given, row.score_maximum)):
                if row.state == PassbackState.FAILED and retry_failed:
                    row.state, row.attempts, row.updated_at = PassbackState.PENDING, 0, now
                if row.state == PassbackState.PENDING:
                    pending.append(row.id)
                continue
            row.score_given, row.score_maximum = want
            row.result_at = times.get((t.student_pk, t.assignment_pk), now)
            row.state, row.attempts, row.error, row.updated_at = PassbackState.PENDING, 0, "", now
            pending.append(row.id)
    return pending


# -- sending ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Claimed:
    id: int
    lineitem_url: str
    lms_user_id: str
    score_given: float
    score_maximum: float
    result_at: dt.datetime
    context: LtiContext


def _claim(db: ServiceDB, owner: str, lease_s: float) -> _Claimed | None:
    now = dt.datetime.now(UTC)
    with db.write() as s:
        row = s.scalar(sa.select(LtiPassback)
                       .join(LtiContext, LtiContext.id == LtiPassback.context_pk)
                       .where(LtiContext.course_id == db.course_id,
                              LtiPassback.state == PassbackState.PENDING,
                              sa.or_(LtiPassback.claimed_until.is_(None),
                                     LtiPassback.claimed_until < now))
                       .order_by(LtiPassback.id).limit(1)
                       .with_for_update(skip_locked=True))
        if row is None:
            return None
        row.claimed_by, row.claimed_until = owner, now + dt.timedelta(seconds=lease_s)
        ctx = s.get(LtiContext, row.context_pk)
        assert ctx is not None
        s.expunge(ctx)
        return _Claimed(row.id, row.lineitem_url, row.lms_user_id, row.score_given,
                        row.score_maximum, row.result_at, ctx)


def _finish(db: ServiceDB, job: _Claimed, owner: str, ok: bool, attempts: int,
            error: str) -> None:
    now = dt.datetime.now(UTC)
    with db.write() as s:
        row = s.get(LtiPassback, job.id)
        if row is None or row.claimed_by != owner:
            return  # our claim lapsed and another sender has it
        row.claimed_by = row.claimed_until = None
        row.attempts, row.updated_at = attempts, now
        unchanged = _same((row.score_given, row.score_maximum),
                          (job.score_given, job.score_maximum))
        if ok:
            row.sent_score_given, row.sent_score_maximum = job.score_given, job.score_maximum
            row.sent_at, row.error = now, ""
        else:
            row.error = error
        if unchanged:
            row.state = PassbackState.SENT if ok else PassbackState.FAILED
        # else: a newer score arrived while this one was sent: it stays pending


def retry_after_s(response: requests.Response) -> float | None:
    """The wait a 429/503 asks for (``Retry-After``: seconds or an HTTP date), if any."""
    value = (response.headers.get("Retry-After") or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - dt.datetime.now(UTC)).total_seconds())


def send_score(connector: Connector, ctx: LtiContext, lineitem_url: str, lms_user_id: str,
               score_given: float, score_maximum: float, result_at: dt.datetime,
               cfg: LtiConfig, sleep: Callable[[float], None] = time.sleep
               ) -> tuple[bool, int, str]:
    """POST one score to ``lineitem_url/scores``, retried as the module says. Returns
    (accepted, HTTP tries, why not)."""
    policy = cfg.passback
    grade = (Grade().set_score_given(score_given).set_score_maximum(score_maximum)
             .set_activity_progress("Completed").set_grading_progress("FullyGraded")
             .set_timestamp(result_at.astimezone(UTC).isoformat(timespec="milliseconds"))
             .set_user_id(lms_user_id))
    ags = ags_for(connector, ctx, lineitem_url)
    last = ""
    for attempt in range(1, policy.attempts + 1):
        wait = policy.backoff_s * 2 ** (attempt - 1) * random.uniform(0.5, 1.0)
        try:
            ags.put_grade(grade, LineItem({"id": lineitem_url}))  # type: ignore[typeddict-item]
            return True, attempt, ""
        except LtiServiceException as e:
            r = e.response
            last = f"HTTP {r.status_code} from {r.url}: {r.text[:200].strip()}"
            if r.status_code == 401 and attempt == 1:
                connector.forget_tokens()  # a revoked token: get a new one, once
                wait = 0.0
            elif r.status_code != 429 and r.status_code < 500:
                return False, attempt, (f"the LMS refused the score ({last}); it will not "
                                        f"change by retrying: check the line item and the "
                                        f"tool's AGS scopes, then Send all")
            else:
                asked = retry_after_s(r)
                wait = asked if asked is not None else wait
        except requests.RequestException as e:
            last = f"network error: {type(e).__name__}: {e}"
        except LtiException as e:  # the launch granted no score scope, no line item...
            return False, attempt, f"cannot send: {e}"
        if attempt < policy.attempts:
            sleep(min(wait, policy.max_wait_s))
    return False, policy.attempts, f"gave up after {policy.attempts} tries; last: {last}"


def send_pending(db: ServiceDB, cfg: LtiConfig, *,
                 sleep: Callable[[float], None] = time.sleep) -> PassbackReport:
    """Send every pending score not held by another sender, one by one, until none is left."""
    owner = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
    policy = cfg.passback
    lease_s = policy.attempts * (policy.max_wait_s + policy.timeout_s) + 60
    connectors: dict[tuple[str, str], Connector] = {}
    report = PassbackReport()
    while (job := _claim(db, owner, lease_s)) is not None:
        key = (job.context.issuer, job.context.client_id)
        try:
            if key not in connectors:
                connectors[key] = connector_for(cfg, *key)
            ok, tries, error = send_score(connectors[key], job.context, job.lineitem_url,
                                          job.lms_user_id, job.score_given, job.score_maximum,
                                          job.result_at, cfg, sleep)
        except UserError as e:
            ok, tries, error = False, 0, str(e)
        _finish(db, job, owner, ok, tries, error)
        if ok:
            report.sent += 1
        else:
            report.failed += 1
            report.errors.append(error)
    return report


def send_all(db: ServiceDB, cfg: LtiConfig) -> tuple[list[int], threading.Thread | None]:
    """The instructors' "send all": make sure every linked assignment has its line item, bring
    every score up to date (failed ones tried again) and send what changed in the background.
    Returns the pending rows and the sending thread (None when nothing is to send)."""
    with db.read() as s:
        links = list(s.scalars(sa.select(LtiLink.id).join(LtiContext)
                               .where(LtiContext.course_id == db.course_id,
                                      LtiLink.assignment_pk.is_not(None),
                                      LtiLink.lineitem_url.is_(None))))
    for link_pk in links:
        try:
            ensure_lineitem(db, cfg, link_pk)
        except (LtiException, requests.RequestException, UserError) as e:
            _log(f"line item of link {link_pk}: {e}")
    pending = refresh(db, retry_failed=True)
    if not pending:
        return pending, None
    thread = threading.Thread(target=_send_quietly, args=(db, cfg), daemon=True,
                              name="lti-passback-all")
    thread.start()
    return pending, thread


def _log(message: str) -> None:
    print(f"lti passback: {message}", file=sys.stderr, flush=True)


def _send_quietly(db: ServiceDB, cfg: LtiConfig, student_pk: int | None = None,
                  assignment_pk: int | None = None) -> None:
    try:
        if student_pk is not None:
            refresh(db, student_pk=student_pk, assignment_pk=assignment_pk)
        report = send_pending(db, cfg)
        for error in report.errors:
            _log(error)
    except Exception as e:  # a background thread: say what happened, never raise into nothing
        _log(f"{type(e).__name__}: {e}")


def has_links(db: ServiceDB) -> bool:
    """Whether any LMS resource link of this course opens an assignment (else: nothing to do)."""
    with db.read() as s:
        return s.scalar(sa.select(LtiLink.id).join(LtiContext)
                        .where(LtiContext.course_id == db.course_id,
                               LtiLink.assignment_pk.is_not(None)).limit(1)) is not None


def schedule_passback(db: ServiceDB, course_root: Path,
                      submission_id: int) -> threading.Thread | None:
    """After a result of ``submission_id`` is recorded: work out and send the student's counted
    score for that assignment in a background thread (returned, for tests to join; None when
    the course has no LTI or no linked assignment). Never raises: grading goes on whatever the
    LMS does."""
    try:
        cfg = load_lti(course_root, db.gb.config)
        if cfg is None or not has_links(db):
            return None
        with db.read() as s:
            sub = s.get(gm.Submission, submission_id)
            if sub is None:
                return None
            student_pk, assignment_pk = sub.student_pk, sub.assignment_pk
        thread = threading.Thread(target=_send_quietly,
                                  args=(db, cfg, student_pk, assignment_pk), daemon=True,
                                  name=f"lti-passback-{submission_id}")
        thread.start()
        return thread
    except Exception as e:
        _log(f"not scheduled for submission {submission_id}: {type(e).__name__}: {e}")
        return None


# -- what the status page shows ---------------------------------------------------------------

@dataclass(frozen=True)
class PassbackRow:
    """One student's passback for one line item, as staff see it."""

    student: str
    name: str
    assignment: str
    state: str
    score: float
    max_score: float
    sent_score: float | None
    updated_at: dt.datetime
    attempts: int
    error: str
    lineitem_url: str


def status_rows(db: ServiceDB, assignment: str | None = None) -> list[PassbackRow]:
    """Every student's passback state, by assignment then student."""
    with db.read() as s:
        q = (sa.select(LtiPassback, gm.Student.student_id, gm.Student.name, gm.Assignment.name)
             .join(gm.Student, gm.Student.id == LtiPassback.student_pk)
             .join(gm.Assignment, gm.Assignment.id == LtiPassback.assignment_pk)
             .where(gm.Student.course_id == db.course_id))
        if assignment:
            q = q.where(gm.Assignment.name == assignment)
        rows = s.execute(q.order_by(gm.Assignment.name, gm.Student.student_id)).all()
    return [PassbackRow(sid, name, asg, p.state, p.score_given, p.score_maximum,
                        p.sent_score_given, p.updated_at, p.attempts, p.error, p.lineitem_url)
            for p, sid, name, asg in rows]


def linked_assignments(db: ServiceDB) -> Iterable[tuple[str, str, str | None]]:
    """(assignment, LMS context title, line item URL) of each linked resource link."""
    with db.read() as s:
        return [(name, title, url) for name, title, url in s.execute(
            sa.select(gm.Assignment.name, LtiContext.title, LtiLink.lineitem_url)
            .join(LtiLink, LtiLink.assignment_pk == gm.Assignment.id)
            .join(LtiContext, LtiContext.id == LtiLink.context_pk)
            .where(LtiContext.course_id == db.course_id).order_by(gm.Assignment.name))]
