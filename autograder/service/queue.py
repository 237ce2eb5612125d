"""The durable queue of grading jobs. The database is the source of truth:

* :func:`enqueue` stores the upload's files (before the commit), the submission record and its
  job in **one transaction**, superseding the same student's queued job for the same assignment
  and enforcing the assignment's rate limit inside that transaction;
* :func:`claim` hands the next job to a worker with a **lease** (a fresh token and an expiry);
  students' submissions go before regrades, and among students the one with the fewest jobs
  started recently goes first (ties: oldest first). A job whose lease lapsed (its worker died)
  is counted as a platform failure and handed out again by the next claim;
* :func:`heartbeat` renews a lease; :func:`complete` records a result **once**: only while the
  caller still holds the lease (its token is checked under a row lock), so the late result of
  an abandoned attempt is discarded;
* :func:`fail` counts a fault of the platform: after ``max_failures`` the job ends
  ``system_error`` (not counted, not charged against the rate limit, staff see the error).

Claims are safe under concurrency on both databases: ``SELECT ... FOR UPDATE SKIP LOCKED`` on
PostgreSQL, a transaction holding SQLite's write lock from its start (``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from autograder.errors import UserError
from autograder.results import GradingResult, SubmissionIdentity
from autograder.service.database import ServiceDB
from autograder.service.models import (PRIORITY_REGRADE, PRIORITY_SUBMISSION, ExamAttempt,
                                       GradingJob, JobState, WorkerHeartbeat)
from autograder.service.storage import UploadStore
from gradebook import models as gm

UTC = dt.timezone.utc
SYSTEM_ERROR_MESSAGE = ("Your submission could not be graded because of a fault of the grading "
                        "platform (not of your files). It is not counted and does not use up an "
                        "attempt; staff have been told. Please submit again.")


class RateLimited(UserError):
    """The student reached the assignment's submission limit; ``retry_after_s`` says when the
    oldest counted submission leaves the window."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Upload(NamedTuple):
    """One file as the student sent it."""

    name: str
    data: bytes


@dataclass(frozen=True)
class Enqueued:
    """What the API acknowledges: the submission's id, its job, and when it was received."""

    submission_id: int
    job_id: int
    attempt: int
    received_at: dt.datetime
    state: str = JobState.QUEUED


@dataclass(frozen=True)
class ClaimedJob:
    """A job a worker holds: everything it needs to grade, and the lease token that proves it
    still holds the job when it reports back."""

    job_id: int
    token: str
    submission_id: int
    assignment: str
    identity: SubmissionIdentity
    uploads: tuple[dict, ...]
    run_id: str
    attempts: int
    # A timed exam's variant, as stored with the student's attempt (None: not an exam with
    # variants): a regrade grades the same variant whatever the course secret says now.
    variant: str | None = None


def _now() -> dt.datetime:
    return dt.datetime.now(UTC)


def enqueue(db: ServiceDB, store: UploadStore, *, student: str, assignment: str,
            uploads: Sequence[Upload], content_hash: str, received_at: dt.datetime,
            lane: str = "cpu", max_per_hour: int | None = None) -> Enqueued:
    """Store a submission and its job, committed together (or nothing). ``content_hash`` is the
    hash of the staged submission (what the grader will hash). Raises :class:`RateLimited`
    when ``max_per_hour`` counted submissions were received in the last hour."""
    if max_per_hour is not None:  # refuse early, before any byte is stored (checked again below)
        with db.read() as s:
            row = s.execute(sa.select(gm.Student.id, gm.Assignment.id)
                            .where(gm.Student.course_id == db.course_id,
                                   gm.Student.student_id == student,
                                   gm.Assignment.course_id == db.course_id,
                                   gm.Assignment.name == assignment)).first()
            if row is not None:
                _check_rate(s, row[0], row[1], max_per_hour, received_at)
    for up in uploads:  # the bytes first: a committed job always finds its files
        store.put(up.data)
    manifest = [{"name": up.name, "sha256": _sha(up.data), "size": len(up.data)}
                for up in uploads]
    with db.write() as s:
        stored = db.gb.record_submission(student, assignment, content_hash, received_at)
        sub = s.get(gm.Submission, stored.id)
        assert sub is not None
        if max_per_hour is not None:
            _check_rate(s, sub.student_pk, sub.assignment_pk, max_per_hour, received_at)
        # Supersede this student's queued (not running) job for the same assignment.
        s.execute(sa.update(GradingJob)
                  .where(GradingJob.student_pk == sub.student_pk,
                         GradingJob.assignment_pk == sub.assignment_pk,
                         GradingJob.state == JobState.QUEUED,
                         GradingJob.priority == PRIORITY_SUBMISSION)
                  .values(state=JobState.SUPERSEDED, finished_at=_now(),
                          message="A newer submission replaced this one before it was graded."))
        job = GradingJob(submission_id=sub.id, student_pk=sub.student_pk,
                         assignment_pk=sub.assignment_pk, lane=lane,
                         priority=PRIORITY_SUBMISSION, state=JobState.QUEUED, uploads=manifest,
                         enqueued_at=_now(), attempts=0, failures=0, message="", error="")
        s.add(job)
        s.flush()
        return Enqueued(submission_id=sub.id, job_id=job.id, attempt=stored.attempt,
                        received_at=stored.received_at)


def enqueue_regrade(db: ServiceDB, submission_id: int, lane: str = "cpu") -> int:
    """Grade a stored submission again in the low-priority lane (after every queued student
    submission); returns the new job's id."""
    with db.write() as s:
        last = s.scalar(sa.select(GradingJob).where(GradingJob.submission_id == submission_id)
                        .order_by(GradingJob.id.desc()).limit(1))
        if last is None:
            raise UserError(f"submission {submission_id} was not received by the service; "
                            f"only service submissions can be regraded here")
        job = GradingJob(submission_id=submission_id, student_pk=last.student_pk,
                         assignment_pk=last.assignment_pk, lane=lane, priority=PRIORITY_REGRADE,
                         state=JobState.QUEUED, uploads=last.uploads, enqueued_at=_now(),
                         attempts=0, failures=0, message="", error="")
        s.add(job)
        s.flush()
        return job.id


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _check_rate(s: Session, student_pk: int, assignment_pk: int, limit: int,
                now: dt.datetime) -> None:
    """Refuse past ``limit`` counted submissions in the hour before ``now``. A job that ended
    ``system_error`` is not counted (the attempt is given back)."""
    window = dt.timedelta(hours=1)
    times = list(s.scalars(
        sa.select(GradingJob.enqueued_at)
        .where(GradingJob.student_pk == student_pk, GradingJob.assignment_pk == assignment_pk,
               GradingJob.priority == PRIORITY_SUBMISSION,
               GradingJob.state != JobState.SYSTEM_ERROR,
               GradingJob.enqueued_at > now - window)
        .order_by(GradingJob.enqueued_at)))
    if len(times) >= limit:
        free_at = times[len(times) - limit] + window
        wait = max(1, int((free_at - now).total_seconds()) + 1)
        raise RateLimited(f"this assignment accepts {limit} submissions per hour and you have "
                          f"made {len(times)} in the last hour; submit again in "
                          f"{_minutes(wait)} (your earlier submissions are still graded)", wait)


def _minutes(seconds: int) -> str:
    return f"{seconds} s" if seconds < 120 else f"{seconds // 60} min"


def reap_lapsed(s: Session, now: dt.datetime, max_failures: int) -> int:
    """Running jobs whose lease lapsed (their worker died or hung): a platform failure each;
    back to the queue, or ``system_error`` at ``max_failures``. Returns how many."""
    lapsed = list(s.scalars(sa.select(GradingJob).where(
        GradingJob.state == JobState.RUNNING, GradingJob.lease_expires_at < now)
        .with_for_update(skip_locked=True)))
    for job in lapsed:
        _count_failure(job, f"the worker {job.lease_owner} stopped renewing its lease "
                            f"(it died or hung) during attempt {job.attempts}", max_failures, now)
    return len(lapsed)


def _count_failure(job: GradingJob, error: str, max_failures: int, now: dt.datetime) -> None:
    job.failures += 1
    job.error = (job.error + "\n" if job.error else "") + f"{now.isoformat()}: {error}"
    job.lease_token = job.lease_owner = job.lease_expires_at = None
    if job.failures >= max_failures:
        job.state = JobState.SYSTEM_ERROR
        job.finished_at = now
        job.message = SYSTEM_ERROR_MESSAGE
    else:
        job.state = JobState.QUEUED


def _recent_jobs(since: dt.datetime) -> sa.ScalarSelect:
    """How many jobs the job's student started since ``since`` (the fairness key)."""
    other = aliased(GradingJob)
    return (sa.select(sa.func.count(other.id))
            .where(other.student_pk == GradingJob.student_pk, other.started_at >= since)
            .correlate(GradingJob).scalar_subquery())


def _claim_order(since: dt.datetime) -> list:
    return [GradingJob.priority, _recent_jobs(since), GradingJob.enqueued_at, GradingJob.id]


def claim(db: ServiceDB, worker: str, *, lanes: Sequence[str] = ("cpu",), lease_s: float = 30.0,
          max_failures: int = 3, fairness_window_s: float = 3600.0) -> ClaimedJob | None:
    """The next job for ``worker``, leased for ``lease_s`` seconds, or None when none waits."""
    now = _now()
    with db.read() as s:  # idle workers poll: ask without taking the write lock first
        waiting = s.scalar(sa.select(
            sa.exists().where(GradingJob.state == JobState.QUEUED,
                              GradingJob.lane.in_(list(lanes)))
            | sa.exists().where(GradingJob.state == JobState.RUNNING,
                                GradingJob.lease_expires_at < now)))
    if not waiting:
        return None
    with db.write() as s:
        reap_lapsed(s, now, max_failures)
        since = now - dt.timedelta(seconds=fairness_window_s)
        query = (sa.select(GradingJob)
                 .where(GradingJob.state == JobState.QUEUED, GradingJob.lane.in_(list(lanes)))
                 .order_by(*_claim_order(since)).limit(1))
        if db.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True, of=GradingJob)
        job = s.scalar(query)
        if job is None:
            return None
        token = secrets.token_hex(16)
        job.state = JobState.RUNNING
        job.lease_token, job.lease_owner = token, worker
        job.lease_expires_at = now + dt.timedelta(seconds=lease_s)
        job.heartbeat_at = job.started_at = now
        job.attempts += 1
        sub = s.get(gm.Submission, job.submission_id)
        assert sub is not None
        identity = SubmissionIdentity(sub.student.student_id, sub.attempt,
                                      sub.submitted_at.astimezone(UTC).isoformat())
        variant = s.scalar(sa.select(ExamAttempt.variant).where(
            ExamAttempt.student_pk == sub.student_pk,
            ExamAttempt.assignment_pk == sub.assignment_pk))
        return ClaimedJob(job_id=job.id, token=token, submission_id=sub.id,
                          assignment=sub.assignment.name, identity=identity,
                          uploads=tuple(job.uploads), attempts=job.attempts,
                          run_id=f"service-job{job.id}-try{job.attempts}-{token[:8]}",
                          variant=variant or None)


def heartbeat(db: ServiceDB, job_id: int, token: str, lease_s: float = 30.0) -> bool:
    """Renew the lease; False when the caller no longer holds it (stop working on the job)."""
    now = _now()
    with db.write() as s:
        renewed = s.scalar(sa.update(GradingJob)
                           .where(GradingJob.id == job_id, GradingJob.lease_token == token,
                                  GradingJob.state == JobState.RUNNING)
                           .values(lease_expires_at=now + dt.timedelta(seconds=lease_s),
                                   heartbeat_at=now)
                           .returning(GradingJob.id))
        return renewed is not None


def _held(s: Session, job_id: int, token: str) -> GradingJob | None:
    job = s.scalar(sa.select(GradingJob).where(GradingJob.id == job_id).with_for_update())
    if job is None or job.state != JobState.RUNNING or job.lease_token != token:
        return None
    return job


def complete(db: ServiceDB, job_id: int, token: str, result: GradingResult, *,
             prepared_at: dt.datetime | None = None, ran_at: dt.datetime | None = None) -> bool:
    """Record the result in the gradebook and end the job, in one transaction, if ``token``
    still holds the lease; otherwise discard it (False): the job was taken over or ended.
    ``prepared_at`` (uploads staged) and ``ran_at`` (tests done) time the job's phases for the
    operations page."""
    now = _now()
    with db.write() as s:
        job = _held(s, job_id, token)
        if job is None:
            return False
        job.prepared_at, job.ran_at = prepared_at, ran_at
        db.gb.record_result(job.submission_id, result, result.run_id)
        job.state = JobState.GRADED
        job.run_id = result.run_id
        # after the write lock was taken and the result written: the "recording" phase
        job.finished_at = _now()
        job.grading_s = (now - job.started_at).total_seconds() if job.started_at else None
        job.lease_token = job.lease_expires_at = None
        return True


def not_gradable(db: ServiceDB, job_id: int, token: str, message: str) -> bool:
    """End the job as ``not_gradable`` (the upload cannot be read as a submission): nothing is
    recorded as a grade; ``message`` tells the student what to fix."""
    now = _now()
    with db.write() as s:
        job = _held(s, job_id, token)
        if job is None:
            return False
        job.state, job.message, job.finished_at = JobState.NOT_GRADABLE, message, now
        job.lease_token = job.lease_expires_at = None
        return True


def fail(db: ServiceDB, job_id: int, token: str, error: str, max_failures: int = 3) -> str | None:
    """Count a fault of the platform on a held job: back to the queue, or ``system_error`` at
    ``max_failures``. Returns the job's new state (None: the lease was no longer held)."""
    now = _now()
    with db.write() as s:
        job = _held(s, job_id, token)
        if job is None:
            return None
        _count_failure(job, error, max_failures, now)
        return job.state


def release(db: ServiceDB, job_id: int, token: str) -> bool:
    """Give a held job back to the queue, not counted as a failure (its worker is being
    stopped); False when the lease was no longer held."""
    with db.write() as s:
        job = _held(s, job_id, token)
        if job is None:
            return False
        job.state = JobState.QUEUED
        job.lease_token = job.lease_owner = job.lease_expires_at = None
        return True


def queue_position(db: ServiceDB, job_id: int, fairness_window_s: float = 3600.0) -> int | None:
    """1 for the job claimed next, 2 after it...; None when the job is not queued. It follows the
    claim order as it stands now (a later submission of a student with fewer jobs may pass)."""
    since = _now() - dt.timedelta(seconds=fairness_window_s)
    with db.read() as s:
        job = s.get(GradingJob, job_id)
        if job is None or job.state != JobState.QUEUED:
            return None
        ids = list(s.scalars(sa.select(GradingJob.id)
                             .where(GradingJob.state == JobState.QUEUED,
                                    GradingJob.lane == job.lane)
                             .order_by(*_claim_order(since))))
    return ids.index(job_id) + 1 if job_id in ids else None


def mean_grading_s(db: ServiceDB, assignment_pk: int, last: int = 50) -> float | None:
    """The mean time of the assignment's last ``last`` gradings (for a wait estimate)."""
    with db.read() as s:
        times: list[float] = list(s.scalars(sa.select(GradingJob.grading_s)
                               .where(GradingJob.assignment_pk == assignment_pk,
                                      GradingJob.grading_s.is_not(None))
                               .order_by(GradingJob.id.desc()).limit(last)))
    return sum(times) / len(times) if times else None


def worker_alive(db: ServiceDB, name: str, lanes: Sequence[str] = ("cpu",),
                 jobs_done: int = 0) -> None:
    """Record that worker ``name`` is alive now (its poll loop calls this every few seconds;
    the operations page warns when it falls silent)."""
    now = _now()
    with db.write() as s:
        row = s.scalar(sa.select(WorkerHeartbeat).where(WorkerHeartbeat.name == name))
        if row is None:
            s.add(WorkerHeartbeat(name=name, lanes=",".join(lanes), started_at=now,
                                  heartbeat_at=now, jobs_done=jobs_done))
        else:
            row.heartbeat_at, row.jobs_done, row.lanes = now, jobs_done, ",".join(lanes)


def counts_by_state(db: ServiceDB) -> dict[str, int]:
    """How many jobs are in each state (for /healthz and the benchmark)."""
    with db.read() as s:
        return {state: n for state, n in s.execute(
            sa.select(GradingJob.state, sa.func.count()).group_by(GradingJob.state))}
