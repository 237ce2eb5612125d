"""The gradebook's tables (SQLAlchemy 2). The schema itself is created by the Alembic migrations
in ``gradebook/migrations/``; a change here needs a new migration there.

Times are stored in UTC and always come back aware (``UTCDateTime``), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (JSON, DateTime, Float, ForeignKey, Integer, LargeBinary, MetaData, String,
                        Text, TypeDecorator, UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

UTC = dt.timezone.utc

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """An aware datetime, stored as naive UTC (SQLite has no time zones)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to the gradebook; attach a time zone")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Course(Base):
    __tablename__ = "courses"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Student(Base):
    __tablename__ = "students"
    __table_args__ = (UniqueConstraint("course_id", "student_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    student_id: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(300), default="")
    email: Mapped[str] = mapped_column(String(320), default="")
    section: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(20), default="active")  # active | dropped
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Staff(Base):
    __tablename__ = "staff"
    __table_args__ = (UniqueConstraint("course_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(300), default="")
    role: Mapped[str] = mapped_column(String(20))  # instructor | ta | grader
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Assignment(Base):
    __tablename__ = "assignments"
    __table_args__ = (UniqueConstraint("course_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(300), default="")
    kind: Mapped[str] = mapped_column(String(20), default="homework")
    category: Mapped[str] = mapped_column(String(100), default="")
    due: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    points: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Where it was declared: assignment.toml | course.toml | nbgrader | removed
    source: Mapped[str] = mapped_column(String(20), default="assignment.toml")
    synced_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Submission(Base):
    __tablename__ = "submissions"
    __table_args__ = (UniqueConstraint("student_pk", "assignment_pk", "attempt"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    student_pk: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"), index=True)
    assignment_pk: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"),
                                               index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(128))
    submitted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    chosen: Mapped[bool] = mapped_column(default=False)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    student: Mapped[Student] = relationship()
    assignment: Mapped[Assignment] = relationship()
    files: Mapped[list[SubmissionFile]] = relationship(back_populates="submission",
                                                       cascade="all, delete-orphan")


class SubmissionFile(Base):
    __tablename__ = "submission_files"
    __table_args__ = (UniqueConstraint("submission_id", "path"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"),
                                               index=True)
    path: Mapped[str] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    content: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)

    submission: Mapped[Submission] = relationship(back_populates="files")


class GradingRun(Base):
    __tablename__ = "grading_runs"
    __table_args__ = (UniqueConstraint("run_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[str] = mapped_column(String(200))
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"),
                                               index=True)
    backend: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(20), default="graded")
    score: Mapped[float] = mapped_column(Float)
    max_score: Mapped[float] = mapped_column(Float)
    result: Mapped[dict] = mapped_column(JSON)
    execution_time_s: Mapped[float] = mapped_column(Float, default=0.0)
    graded_at: Mapped[str] = mapped_column(String(64), default="")
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Extension(Base):
    __tablename__ = "extensions"
    __table_args__ = (UniqueConstraint("student_pk", "assignment_pk"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    student_pk: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"), index=True)
    assignment_pk: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"))
    due: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(Text, default="")
    granted_by: Mapped[str] = mapped_column(String(320), default="")
    granted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ManualScore(Base):
    __tablename__ = "manual_scores"
    __table_args__ = (UniqueConstraint("student_pk", "assignment_pk"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    student_pk: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"), index=True)
    assignment_pk: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"))
    score: Mapped[float] = mapped_column(Float)
    max_score: Mapped[float] = mapped_column(Float)
    submitted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    source: Mapped[str] = mapped_column(String(500), default="")
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class TestOverride(Base):
    """A staff member's score for one test of one student's assignment, with the reason. It
    replaces that test's score in whichever run counts (a regrade keeps it)."""

    __tablename__ = "test_overrides"
    __table_args__ = (UniqueConstraint("student_pk", "assignment_pk", "test_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    student_pk: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"), index=True)
    assignment_pk: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"))
    test_name: Mapped[str] = mapped_column(String(500))
    score: Mapped[float] = mapped_column(Float)
    comment: Mapped[str] = mapped_column(Text)
    set_by: Mapped[str] = mapped_column(String(320), default="")
    set_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEntry(Base):
    """One change staff made by hand: who, when, what, why. Student and assignment are kept as
    names, not keys, so an entry outlives the records it describes (a deleted submission)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(320), default="")
    action: Mapped[str] = mapped_column(String(100))
    student: Mapped[str] = mapped_column(String(100), default="")
    assignment: Mapped[str] = mapped_column(String(200), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    reason: Mapped[str] = mapped_column(Text, default="")


class Accommodation(Base):
    """A student's accommodation for timed assessments (exams and quizzes), stored once and
    applied to every one: their time is ``duration x time_factor + extra_minutes``, within the
    exam's window (see autograder/exams.py)."""

    __tablename__ = "accommodations"
    __table_args__ = (UniqueConstraint("student_pk"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    student_pk: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"))
    time_factor: Mapped[float] = mapped_column(Float, default=1.0)
    extra_minutes: Mapped[float] = mapped_column(Float, default=0.0)
    reason: Mapped[str] = mapped_column(Text, default="")
    set_by: Mapped[str] = mapped_column(String(320), default="")
    set_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ExamOverride(Base):
    """One student's terms on one exam beyond their accommodation: extra minutes, and a window
    extension that moves that student's ``closes`` (and so the exam's due time for them)."""

    __tablename__ = "exam_overrides"
    __table_args__ = (UniqueConstraint("student_pk", "assignment_pk"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    student_pk: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"), index=True)
    assignment_pk: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"))
    extra_minutes: Mapped[float] = mapped_column(Float, default=0.0)
    window_extension_minutes: Mapped[float] = mapped_column(Float, default=0.0)
    reason: Mapped[str] = mapped_column(Text, default="")
    set_by: Mapped[str] = mapped_column(String(320), default="")
    set_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
