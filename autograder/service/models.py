"""The service's tables: accounts and their credentials, invitations, web sessions, and the
grading jobs. They share the gradebook's SQLAlchemy ``Base`` (one metadata, one Alembic history:
``gradebook/migrations/versions/0003_service.py`` creates them), so a submission and its job are
written in one transaction of one database.

No secret is stored in the clear: passwords are argon2 hashes, and API tokens, invitation tokens
and session ids are stored as their SHA-256 (a stolen database yields nothing to log in with).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import (JSON, Float, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column

from gradebook.models import Base, UTCDateTime, utcnow

__all__ = ["ApiToken", "Invitation", "JobState", "GradingJob", "ServiceUser", "WebSession",
           "WorkerHeartbeat", "Regrade", "RegradeRequest", "RegradeMessage",
           "SimilarityRun", "SimilarityReview", "ExamAttempt", "ExamRelease",
           "PRIORITY_SUBMISSION", "PRIORITY_REGRADE", "TERMINAL_STATES"]


class JobState(StrEnum):
    """Where a grading job is. The API's submission ``state`` is this value."""

    QUEUED = "queued"              # committed, waiting for a worker
    RUNNING = "running"            # a worker holds its lease
    GRADED = "graded"              # the result is in the gradebook
    NOT_GRADABLE = "not_gradable"  # the upload could not be read as a submission: not counted
    SYSTEM_ERROR = "system_error"  # the platform failed it 3 times: not counted, attempt given back
    SUPERSEDED = "superseded"      # a newer submission of the same work replaced it while queued


TERMINAL_STATES = frozenset({JobState.GRADED, JobState.NOT_GRADABLE, JobState.SYSTEM_ERROR,
                             JobState.SUPERSEDED})

#: Lower goes first: students' submissions before staff regrades (the low-priority lane).
PRIORITY_SUBMISSION = 0
PRIORITY_REGRADE = 10


class ServiceUser(Base):
    """Someone who may log in: a student of the roster (``student_pk``) or a staff member."""

    __tablename__ = "service_users"
    __table_args__ = (UniqueConstraint("course_id", "login"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    login: Mapped[str] = mapped_column(String(100))  # the student id (or a staff e-mail)
    student_pk: Mapped[int | None] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"),
                                                   nullable=True, unique=True)
    role: Mapped[str] = mapped_column(String(20), default="student")  # permissions.ROLES
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiToken(Base):
    """A bearer token for scripts (``autograder submit``); only its SHA-256 is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("service_users.id", ondelete="CASCADE"),
                                         index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Invitation(Base):
    """A one-time link (``/invite/{token}``) that lets a student set their password."""

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("service_users.id", ondelete="CASCADE"),
                                         index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class WebSession(Base):
    """A logged-in browser. The cookie holds a random id; the table holds its SHA-256, so a
    session can be ended server-side (logout, a password change)."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("service_users.id", ondelete="CASCADE"),
                                         index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class GradingJob(Base):
    """The job that grades one submission: the queue of record. It is inserted in the same
    transaction as its submission; a worker claims it with a lease (``lease_token``, renewed by
    heartbeats until ``lease_expires_at``); its result is accepted only with the current lease
    token, so a late result of an abandoned attempt is discarded."""

    __tablename__ = "grading_jobs"
    __table_args__ = (
        Index("ix_grading_jobs_claim", "state", "lane", "priority", "enqueued_at"),
        Index("ix_grading_jobs_student_started", "student_pk", "started_at"),
        Index("ix_grading_jobs_student_assignment", "student_pk", "assignment_pk"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"),
                                               index=True)
    # Copied from the submission: the claim query orders by student without a join.
    student_pk: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"))
    assignment_pk: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"))
    lane: Mapped[str] = mapped_column(String(20), default="cpu")  # cpu | gpu
    priority: Mapped[int] = mapped_column(Integer, default=0)  # PRIORITY_*; lower goes first
    state: Mapped[str] = mapped_column(String(20), default=JobState.QUEUED)
    # The uploaded files as received: [{"name", "sha256", "size"}]; bytes in the upload store.
    uploads: Mapped[list] = mapped_column(JSON)
    enqueued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # claims so far
    failures: Mapped[int] = mapped_column(Integer, default=0)  # faults of the platform so far
    lease_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    run_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # What the student may be shown when the job ends without a gradebook result
    # (not_gradable: the intake message; system_error: "not counted, resubmit").
    message: Mapped[str] = mapped_column(Text, default="")
    # Faults of the platform, for staff only (never in a student's response).
    error: Mapped[str] = mapped_column(Text, default="")
    grading_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    # The phases, for the operations page (migration 0005): queued = enqueued..started,
    # preparing = started..prepared (uploads staged), running = prepared..ran (tests done),
    # recording = ran..finished (the result written).
    prepared_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ran_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class WorkerHeartbeat(Base):
    """A grading worker's last sign of life (its poll loop writes it every few seconds), for
    the operations page: warning after 30 s of silence, critical after 120 s."""

    __tablename__ = "worker_heartbeats"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    lanes: Mapped[str] = mapped_column(String(100), default="cpu")
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    heartbeat_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    current_job_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    jobs_done: Mapped[int] = mapped_column(Integer, default=0)


class Regrade(Base):
    """A regrade staff asked for: the job that grades the submission again, and the scores
    before it (per test), so the page can show what changed once the job is graded."""

    __tablename__ = "regrades"

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"),
                                               index=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("grading_jobs.id", ondelete="CASCADE"),
                                        index=True)
    batch: Mapped[str] = mapped_column(String(64), index=True)  # one click of the regrade button
    requested_by: Mapped[str] = mapped_column(String(320), default="")
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    reason: Mapped[str] = mapped_column(Text, default="")
    old_run_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    old_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    old_max_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    old_tests: Mapped[dict] = mapped_column(JSON, default=dict)  # test name -> score


class RegradeRequest(Base):
    """A student's question about one test of one attempt; staff answer in its thread and
    resolve it."""

    __tablename__ = "regrade_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"),
                                               index=True)
    student_pk: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"),
                                            index=True)
    test_name: Mapped[str] = mapped_column(String(500))
    state: Mapped[str] = mapped_column(String(20), default="open")  # open | resolved
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(320), nullable=True)


class RegradeMessage(Base):
    """One message of a regrade request's thread (the student's question, staff's answers)."""

    __tablename__ = "regrade_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("regrade_requests.id",
                                                       ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(String(320))
    author_role: Mapped[str] = mapped_column(String(20))  # student | grader | ta | instructor
    body: Mapped[str] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class SimilarityRun(Base):
    """One run of the similarity report for an assignment, started from the similarity page
    (a background job in the web process). Its files (pairs.csv, report.html) are under
    ``output_dir``; the page polls ``state``."""

    __tablename__ = "similarity_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_pk: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"),
                                               index=True)
    state: Mapped[str] = mapped_column(String(20), default="running")  # running | done | failed
    started_by: Mapped[str] = mapped_column(String(320), default="")
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    submissions: Mapped[int] = mapped_column(Integer, default=0)
    flagged: Mapped[int] = mapped_column(Integer, default=0)  # pairs at or above the threshold
    threshold: Mapped[float] = mapped_column(Float, default=0.5)
    output_dir: Mapped[str] = mapped_column(Text, default="")
    message: Mapped[str] = mapped_column(Text, default="")  # why it failed, for staff


class SimilarityReview(Base):
    """A TA's mark that a flagged pair was looked at (it flags, it never penalises: the note
    says what the TA concluded). One per assignment and pair, names in sorted order."""

    __tablename__ = "similarity_reviews"
    __table_args__ = (UniqueConstraint("assignment_pk", "name_a", "name_b"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_pk: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"),
                                               index=True)
    name_a: Mapped[str] = mapped_column(String(300))
    name_b: Mapped[str] = mapped_column(String(300))
    similarity: Mapped[float] = mapped_column(Float, default=0.0)  # when it was reviewed
    reviewed_by: Mapped[str] = mapped_column(String(320), default="")
    reviewed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    note: Mapped[str] = mapped_column(Text, default="")


class ExamAttempt(Base):
    """One student's timed attempt at an exam or quiz (migration 0008): started once (starting
    again returns this row), with the variant chosen for them and their end time. Submissions
    are accepted until ``ends_at``; the finaliser then sets ``finalised_at`` and the submission
    that counts (the last one received in time). ``ends_at`` is recomputed when staff extend the
    student's time during the attempt."""

    __tablename__ = "exam_attempts"
    __table_args__ = (UniqueConstraint("student_pk", "assignment_pk"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    student_pk: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"),
                                            index=True)
    assignment_pk: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"),
                                               index=True)
    variant: Mapped[str] = mapped_column(String(100), default="")  # "" for an exam without variants
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    honour_code_accepted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime,
                                                                        nullable=True)
    # Where the attempt was started from (the address the exam's network list was checked on).
    client_address: Mapped[str] = mapped_column(String(64), default="")
    finalised_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # "time" (ends_at passed) or "student" (they finished early).
    finalised_by: Mapped[str] = mapped_column(String(20), default="")
    counted_submission_id: Mapped[int | None] = mapped_column(
        ForeignKey("submissions.id", ondelete="SET NULL"), nullable=True)


class ExamRelease(Base):
    """Staff released an exam's results (``results = "after_release"``): students see their
    scores and the feedback their tests' visibility allows from ``released_at``."""

    __tablename__ = "exam_releases"

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_pk: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"),
                                               unique=True)
    released_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    released_by: Mapped[str] = mapped_column(String(320), default="")
