"""The gradebook database: :class:`Gradebook` opens it (upgrading the schema to the newest
migration), and every read and write of records goes through its methods. Each write method is
one transaction: it commits whole or not at all, so a crash or a bad file loses nothing that was
acknowledged before.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import threading
import time
from collections import defaultdict
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Iterator

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from autograder.config import CourseConfig, load_assignment
from gradebook import models as m
from gradebook.csvfiles import RosterRow, ScoreRow
from gradebook.errors import (GradebookError, NotAGradebook, ResultConflict, ScoresError,
                              UnknownAssignment, UnknownStudent, UnknownSubmission)
from autograder.results import GradingResult, SubmissionIdentity
from gradebook.policy import (AssessmentSpec, Attempt, StudentGrade, StudentRecords, as_course_time,
                              fmt_time, grade_all)

MIGRATIONS = Path(__file__).parent / "migrations"
DB_ENV = "AUTOGRADER_DB"
DEFAULT_FILE = "gradebook.sqlite"
STAFF_ROLES = ("instructor", "ta", "grader")


def database_url(course_root: Path | None, db: str | None = None) -> str:
    """Where the gradebook lives: ``--db URL``, else ``$AUTOGRADER_DB``, else an SQLite file in
    the course directory. (Not ``gradebook.db``: that is nbgrader's file name, and a course moving
    over may still have one there.)"""
    url = db or os.environ.get(DB_ENV)
    if url:
        return url if "://" in url else f"sqlite:///{Path(url).resolve()}"
    root = Path(course_root or Path.cwd()).resolve()
    return f"sqlite:///{root / DEFAULT_FILE}"


def _in_memory(url: str) -> bool:
    return ":memory:" in url or url in ("sqlite://", "sqlite:///")


def make_engine(url: str, *, for_writes: bool = False) -> Engine:
    """An engine for ``url``. On SQLite, ``for_writes`` gives one whose transactions take the
    write lock when they begin (BEGIN IMMEDIATE): the driver otherwise starts a transaction at
    its first write, and a transaction that read first then fails at once with "database is
    locked" when another process wrote meanwhile, instead of waiting its turn. Its DDL is
    transactional too, so a migration is all or nothing."""
    if not url.startswith("sqlite"):
        return sa.create_engine(url, pool_pre_ping=True)
    in_memory = _in_memory(url)
    connect_args: dict[str, Any] = {"timeout": 60}
    if for_writes:
        connect_args["isolation_level"] = None
    if in_memory:  # one connection for everything, or each would see its own empty database
        connect_args["check_same_thread"] = False
        engine = sa.create_engine(url, connect_args=connect_args, poolclass=sa.pool.StaticPool)
    else:
        engine = sa.create_engine(url, connect_args=connect_args)

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys = ON")
        if not in_memory:
            cur.execute("PRAGMA journal_mode = WAL")
            # FULL: a committed transaction survives a power cut, not only a process crash.
            cur.execute("PRAGMA synchronous = FULL")
        cur.close()

    if for_writes:
        @sa.event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration (a no-op when it is there already); ``engine``
    should be a ``for_writes`` one, so that processes opening a new file at once migrate in turn."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Two processes opening a new database at once: the second waits, then finds head.
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(7316001)"))
        names = set(sa.inspect(conn).get_table_names())
        where = engine.url.render_as_string(hide_password=True)
        if names and "alembic_version" not in names:
            if {"grade", "submitted_assignment"} <= names:
                raise NotAGradebook(f"{where} is nbgrader's gradebook; keep it, and bring its "
                                    f"scores over with `autograder gradebook import-nbgrader FILE`")
            raise NotAGradebook(f"{where} already holds tables that are not a gradebook "
                                f"({', '.join(sorted(names)[:5])}); point --db at an empty "
                                f"database or a new file")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def content_hash(files: Mapping[str, bytes]) -> str:
    """The hash of a set of files, computed as the grader computes it for a staged submission
    (``autograder.submissions.content_hash``), so a result's ``content_hash`` matches."""
    h = hashlib.sha256()
    for path in sorted(files, key=PurePosixPath):
        h.update(str(PurePosixPath(path)).encode() + b"\0")
        h.update(files[path])
        h.update(b"\0")
    return h.hexdigest()


def read_files(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}


@dataclass
class RosterReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    reactivated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    not_in_file: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


@dataclass
class SyncReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TestRecord:
    """One stored test result of the run that counts for a student's latest graded submission."""

    assignment: str
    student_id: str
    name: str
    passed: bool
    score: float
    max_score: float


@dataclass(frozen=True)
class StoredSubmission:
    """A submission record: made when the files are received (before grading), so its identity
    can travel with the grading job and come back inside the result."""

    id: int
    student: str
    assignment: str
    attempt: int
    content_hash: str
    received_at: dt.datetime  # aware, UTC

    @property
    def identity(self) -> SubmissionIdentity:
        """What a grading job and its result carry (``GradingResult.identity``)."""
        return SubmissionIdentity(self.student, self.attempt, self.received_at.isoformat())

    # The name the rest of the gradebook uses for the receipt time.
    @property
    def submitted_at(self) -> dt.datetime:
        return self.received_at


@dataclass(frozen=True)
class RecordedResult:
    """What :meth:`Gradebook.record_graded` stored: enough to print a line and to find the
    student's ``explain``."""

    submission_id: int
    student: str
    assignment: str
    attempt: int
    received_at: dt.datetime  # aware, UTC
    run_id: str
    score: float
    max_points: float  # the assignment's points (the result's own maximum when it has none)


@dataclass(frozen=True)
class SubmissionRow:
    """One line of ``gradebook submissions list``."""

    id: int
    student: str
    assignment: str
    attempt: int
    received_at: dt.datetime
    content_hash: str
    runs: int
    score: float | None  # of the newest run; None before grading
    max_points: float | None


class Gradebook:
    """The records of one course. Open with :meth:`open`; use as a context manager or call
    :meth:`close`."""

    def __init__(self, engine: Engine, config: CourseConfig, write_engine: Engine | None = None) -> None:
        self.engine = engine
        self.config = config
        self._write_engine = write_engine or engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._writes = sessionmaker(self._write_engine, expire_on_commit=False)
        # The session of an open :meth:`transaction` in this thread, which every write joins.
        self._batch = threading.local()
        for _ in range(3):
            try:
                with self._tx() as s:
                    course = s.scalar(sa.select(m.Course).where(m.Course.name == config.name))
                    if course is None:
                        course = m.Course(name=config.name, timezone=config.timezone)
                        s.add(course)
                        s.flush()
                    elif course.timezone != config.timezone:
                        course.timezone = config.timezone
                    self.course_id = course.id
                    return
            except IntegrityError:
                continue  # another process created the course row first: read it
        raise GradebookError(f"could not create or read course {config.name!r}; retry")

    @classmethod
    def open(cls, url: str, config: CourseConfig | None = None) -> Gradebook:
        """Open (creating or upgrading as needed) the gradebook at ``url``: ``sqlite:///path``
        or ``postgresql+psycopg://user:pass@host/db``."""
        if url.startswith("sqlite") and not _in_memory(url):
            engine, writes = make_engine(url), make_engine(url, for_writes=True)
        else:
            engine = writes = make_engine(url, for_writes=True)
        try:
            upgrade(writes)
        except Exception:
            engine.dispose()
            writes.dispose()
            raise
        return cls(engine, config or CourseConfig(), writes)

    def close(self) -> None:
        self.engine.dispose()
        self._write_engine.dispose()

    def __enter__(self) -> Gradebook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        """A session in a transaction: commits on success, rolls back on any exception. Inside
        :meth:`transaction` it is that transaction's session (committed when it ends)."""
        outer = getattr(self._batch, "session", None)
        if outer is not None:
            yield outer
            return
        with self._writes.begin() as s:
            yield s

    def _in_transaction(self) -> bool:
        return getattr(self._batch, "session", None) is not None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Make every write inside one transaction: all of them are kept, or none (a batch of
        results, an import). Nested uses join the outer one."""
        if self._in_transaction():
            yield
            return
        with self._writes.begin() as s:
            self._batch.session = s
            try:
                yield
            finally:
                self._batch.session = None

    def _audit(self, s: Session, action: str, *, student: str = "", assignment: str = "",
               detail: str = "", reason: str = "", actor: str = "") -> None:
        """One line of the audit trail, written in the same transaction as the change."""
        s.add(m.AuditEntry(course_id=self.course_id, at=m.utcnow(), actor=actor, action=action,
                           student=student, assignment=assignment, detail=detail, reason=reason))

    def audit(self, student: str | None = None, assignment: str | None = None) -> list[m.AuditEntry]:
        """The audit trail (extensions, manual scores, overrides, deletions), oldest first."""
        with self._sessions() as s:
            q = sa.select(m.AuditEntry).where(m.AuditEntry.course_id == self.course_id)
            if student is not None:
                q = q.where(m.AuditEntry.student == student)
            if assignment is not None:
                q = q.where(m.AuditEntry.assignment == assignment)
            return list(s.scalars(q.order_by(m.AuditEntry.id)))

    def _insert(self, table: Any) -> Any:
        return (postgresql.insert(table) if self.engine.dialect.name == "postgresql"
                else sqlite.insert(table))

    # -- lookups --------------------------------------------------------------------------------

    def _student(self, s: Session, student_id: str, lock: bool = False) -> m.Student:
        query = sa.select(m.Student).where(m.Student.course_id == self.course_id,
                                           m.Student.student_id == student_id)
        row = s.scalar(query.with_for_update() if lock else query)
        if row is None:
            raise UnknownStudent(f"student {student_id!r} is not in the roster; add them with "
                                 f"`autograder gradebook roster import FILE.csv`")
        return row

    def _assignment(self, s: Session, name: str) -> m.Assignment:
        row = s.scalar(sa.select(m.Assignment).where(m.Assignment.course_id == self.course_id,
                                                     m.Assignment.name == name))
        if row is None or row.source == "removed":
            known = ", ".join(self.assignment_names(s)) or "none yet"
            raise UnknownAssignment(f"no assignment {name!r} in the gradebook (known: {known}); "
                                    f"add assignments/{name}/assignment.toml or a course.toml "
                                    f"[assessments.{name}] section, then `autograder gradebook sync`")
        return row

    def assignment_names(self, s: Session | None = None) -> list[str]:
        query = (sa.select(m.Assignment.name).where(m.Assignment.course_id == self.course_id,
                                                    m.Assignment.source != "removed")
                 .order_by(m.Assignment.name))
        if s is not None:
            return list(s.scalars(query))
        with self._sessions() as s2:
            return list(s2.scalars(query))

    def students(self, include_dropped: bool = True) -> list[m.Student]:
        with self._sessions() as s:
            q = sa.select(m.Student).where(m.Student.course_id == self.course_id)
            if not include_dropped:
                q = q.where(m.Student.status == "active")
            return list(s.scalars(q.order_by(m.Student.student_id)))

    # -- roster and staff -----------------------------------------------------------------------

    def import_roster(self, rows: list[RosterRow], drop_missing: bool = False) -> RosterReport:
        """Add or update the students of a parsed roster (:func:`gradebook.csvfiles.parse_roster`).
        Students missing from it are reported, and marked dropped only with ``drop_missing``;
        a dropped student's records are kept, and a later roster that lists them reactivates them."""
        report = RosterReport()
        with self._tx() as s:
            existing = {st.student_id: st for st in s.scalars(
                sa.select(m.Student).where(m.Student.course_id == self.course_id))}
            taken = {st.email.lower(): st.student_id for st in existing.values() if st.email}
            listed = {r.student_id for r in rows}
            for r in rows:
                owner = taken.get(r.email.lower())
                if owner is not None and owner != r.student_id and owner not in listed:
                    raise UnknownStudent(f"line {r.line}: e-mail {r.email!r} belongs to student "
                                         f"{owner!r} already in the gradebook; nothing was imported")
            for r in rows:
                st = existing.get(r.student_id)
                if st is None:
                    s.add(m.Student(course_id=self.course_id, student_id=r.student_id, name=r.name,
                                    email=r.email, section=r.section, status="active"))
                    report.added.append(r.student_id)
                    continue
                was_dropped = st.status != "active"
                changed = (st.name, st.email, st.section) != (r.name, r.email, r.section)
                st.name, st.email, st.section, st.status = r.name, r.email, r.section, "active"
                if was_dropped:
                    report.reactivated.append(r.student_id)
                elif changed:
                    report.updated.append(r.student_id)
                else:
                    report.unchanged.append(r.student_id)
            for sid, st in sorted(existing.items()):
                if sid not in listed and st.status == "active":
                    report.not_in_file.append(sid)
                    if drop_missing:
                        st.status = "dropped"
                        report.dropped.append(sid)
        return report

    def set_student_status(self, student_id: str, status: str) -> None:
        """Mark a student ``dropped`` (their records stay) or ``active`` again."""
        if status not in ("active", "dropped"):
            raise GradebookError(f"status {status!r}: use active or dropped")
        with self._tx() as s:
            self._student(s, student_id).status = status

    def add_staff(self, email: str, role: str, name: str = "") -> None:
        """Give ``email`` a staff role (instructor, ta or grader); again with another role changes it."""
        if role not in STAFF_ROLES:
            raise GradebookError(f"role {role!r}: use one of {', '.join(STAFF_ROLES)}")
        with self._tx() as s:
            row = s.scalar(sa.select(m.Staff).where(m.Staff.course_id == self.course_id,
                                                    m.Staff.email == email))
            if row is None:
                s.add(m.Staff(course_id=self.course_id, email=email, name=name, role=role))
            else:
                row.role, row.name = role, name or row.name

    def staff(self) -> list[m.Staff]:
        with self._sessions() as s:
            return list(s.scalars(sa.select(m.Staff).where(m.Staff.course_id == self.course_id)
                                  .order_by(m.Staff.email)))

    # -- assignments ----------------------------------------------------------------------------

    def sync_assignments(self, course_root: Path) -> SyncReport:
        """Bring the assignment records in line with ``assignments/*/assignment.toml`` and
        course.toml ``[assessments]``. A removed assignment keeps its records but is no longer
        graded. Every config is validated before anything is written."""
        from autograder.course import Course

        course = Course(Path(course_root))
        zone = self.config.zone
        wanted: dict[str, dict[str, Any]] = {}
        for name in course.assignment_names():
            cfg = load_assignment(course.root / "assignments" / name / "assignment.toml")
            wanted[name] = dict(title=cfg.title, kind=cfg.kind, category=cfg.category,
                                due=as_course_time(cfg.due, zone) if cfg.due else None,
                                points=cfg.points, source="assignment.toml")
        for name, a in self.config.assessments.items():
            if name in wanted:
                raise GradebookError(f"{name!r} is both assignments/{name}/assignment.toml and "
                                     f"course.toml [assessments.{name}]; keep one")
            wanted[name] = dict(title=a.title, kind=a.kind, category=a.category,
                                due=as_course_time(a.due, zone) if a.due else None,
                                points=a.points, source="course.toml")
        return self._sync(wanted)

    def _sync(self, wanted: dict[str, dict[str, Any]], keep_others: bool = False) -> SyncReport:
        report = SyncReport()
        with self._tx() as s:
            existing = {a.name: a for a in s.scalars(
                sa.select(m.Assignment).where(m.Assignment.course_id == self.course_id))}
            for name, values in sorted(wanted.items()):
                row = existing.get(name)
                if row is None:
                    s.add(m.Assignment(course_id=self.course_id, name=name, **values))
                    report.added.append(name)
                    continue
                current = {k: getattr(row, k) for k in values}
                if current != values:
                    for k, v in values.items():
                        setattr(row, k, v)
                    row.synced_at = m.utcnow()
                    report.updated.append(name)
            if not keep_others:
                for name, row in sorted(existing.items()):
                    if name not in wanted and row.source not in ("removed", "nbgrader"):
                        row.source = "removed"
                        report.removed.append(name)
        return report

    # -- submissions and results ----------------------------------------------------------------

    def record_submission(self, student: str, assignment: str,
                          files_or_hash: Mapping[str, bytes] | Path | str,
                          submitted_at: dt.datetime, *, keep_files: bool = True) -> m.Submission:
        """Record that ``student`` submitted ``assignment`` at ``submitted_at`` (aware).

        ``files_or_hash`` is the submitted files (``{relative path: bytes}`` or a directory),
        stored in the database with their sha256, or just the content hash when the files are
        stored elsewhere. Recording the same files at the same time again returns the same
        submission; otherwise the submission gets the next attempt number."""
        if submitted_at.tzinfo is None:
            raise ValueError("submitted_at has no time zone; pass an aware datetime "
                             "(e.g. datetime.now(timezone.utc))")
        files: dict[str, bytes] | None = None
        if isinstance(files_or_hash, Path):
            files = read_files(files_or_hash)
        elif isinstance(files_or_hash, Mapping):
            files = dict(files_or_hash)
        digest = content_hash(files) if files is not None else str(files_or_hash)
        if not digest:
            raise ValueError("empty content hash; pass the submitted files or their hash")
        for retry in range(10):
            try:
                with self._tx() as s:
                    # Lock the student's row (PostgreSQL): their submissions get numbers in turn.
                    st = self._student(s, student, lock=True)
                    asg = self._assignment(s, assignment)
                    same = s.scalar(sa.select(m.Submission).where(
                        m.Submission.student_pk == st.id, m.Submission.assignment_pk == asg.id,
                        m.Submission.content_hash == digest,
                        m.Submission.submitted_at == submitted_at))
                    if same is not None:
                        return same
                    last = s.scalar(sa.select(sa.func.max(m.Submission.attempt)).where(
                        m.Submission.student_pk == st.id, m.Submission.assignment_pk == asg.id))
                    sub = m.Submission(student_pk=st.id, assignment_pk=asg.id,
                                       attempt=(last or 0) + 1, content_hash=digest,
                                       submitted_at=submitted_at)
                    for path, data in sorted((files or {}).items()):
                        sub.files.append(m.SubmissionFile(
                            path=path, sha256=hashlib.sha256(data).hexdigest(), size=len(data),
                            content=data if keep_files else None))
                    s.add(sub)
                    s.flush()
                    return sub
            except IntegrityError:
                # Another writer took this attempt number (SQLite): read again and retry.
                time.sleep(0.01 * (retry + 1))
        raise GradebookError(f"could not record a submission of {student} for {assignment}: "
                             f"the attempt number kept being taken by concurrent writers; retry")

    def record_result(self, submission_id: int, result: GradingResult, run_id: str) -> None:
        """Store the result of grading run ``run_id`` for a submission. Recording the same run
        again (a retried job, a second grader) changes nothing; a different result under the
        same run id raises :class:`ResultConflict` (give a regrade its own run id)."""
        payload = result.to_json()
        with self._tx() as s:
            sub = s.get(m.Submission, submission_id)
            if sub is None:
                raise UnknownSubmission(f"no submission {submission_id} in the gradebook; record "
                                        f"it first with record_submission()")
            if result.assignment != sub.assignment.name:
                raise GradebookError(f"run {run_id}: the result is for {result.assignment!r} but "
                                     f"submission {submission_id} is for {sub.assignment.name!r}")
            if result.content_hash and result.content_hash != sub.content_hash:
                raise GradebookError(f"run {run_id}: the result's content hash "
                                     f"{result.content_hash[:12]}... is not submission "
                                     f"{submission_id}'s ({sub.content_hash[:12]}...): it graded "
                                     f"other files")
            stmt = self._insert(m.GradingRun.__table__).values(
                run_id=run_id, submission_id=submission_id, backend=result.backend,
                status="graded", score=result.score, max_score=result.max_score, result=payload,
                execution_time_s=result.execution_time_s, graded_at=result.graded_at,
                recorded_at=m.utcnow()).on_conflict_do_nothing(index_elements=["run_id"])
            inserted = s.execute(stmt.returning(m.GradingRun.__table__.c.id)).first()
            if inserted is None:
                existing = s.scalar(sa.select(m.GradingRun).where(m.GradingRun.run_id == run_id))
                if existing.submission_id != submission_id or existing.result != payload:
                    raise ResultConflict(f"run {run_id!r} already holds a different result (for "
                                         f"submission {existing.submission_id}); a regrade needs "
                                         f"a new run id")

    def submission_id(self, student: str, assignment: str, attempt: int) -> int:
        """The id of ``student``'s attempt number ``attempt`` at ``assignment``."""
        with self._sessions() as s:
            st, asg = self._student(s, student), self._assignment(s, assignment)
            found = s.scalar(sa.select(m.Submission.id).where(
                m.Submission.student_pk == st.id, m.Submission.assignment_pk == asg.id,
                m.Submission.attempt == attempt))
        if found is None:
            raise UnknownSubmission(f"{student} has no attempt {attempt} at {assignment}; "
                                    f"`autograder gradebook explain {student}` lists the attempts")
        return found

    def choose_submission(self, submission_id: int) -> None:
        """Mark the submission the student chose to count (score policy ``chosen``)."""
        with self._tx() as s:
            sub = s.get(m.Submission, submission_id)
            if sub is None:
                raise UnknownSubmission(f"no submission {submission_id} in the gradebook")
            s.execute(sa.update(m.Submission).where(
                m.Submission.student_pk == sub.student_pk,
                m.Submission.assignment_pk == sub.assignment_pk).values(chosen=False))
            sub.chosen = True

    def submissions(self, student: str | None = None) -> list[m.Submission]:
        with self._sessions() as s:
            q = (sa.select(m.Submission).join(m.Student)
                 .where(m.Student.course_id == self.course_id)
                 .order_by(m.Submission.submitted_at, m.Submission.id))
            if student is not None:
                q = q.where(m.Student.student_id == student)
            return list(s.scalars(q))

    def runs(self, submission_id: int) -> list[m.GradingRun]:
        with self._sessions() as s:
            return list(s.scalars(sa.select(m.GradingRun)
                                  .where(m.GradingRun.submission_id == submission_id)
                                  .order_by(m.GradingRun.id)))

    # -- extensions and manual scores -----------------------------------------------------------

    def grant_extension(self, student: str, assignment: str, *, due: dt.datetime | None = None,
                        days: int | None = None, reason: str = "", granted_by: str = "") -> dt.datetime:
        """Move ``assignment``'s due time for ``student``: to ``due``, or by ``days`` (same
        wall-clock time in the course time zone). Returns the new due time; granting again
        replaces the earlier extension."""
        if (due is None) == (days is None):
            raise GradebookError("give the extension either a new due time or a number of days")
        with self._tx() as s:
            st = self._student(s, student)
            asg = self._assignment(s, assignment)
            if days is not None:
                if asg.due is None:
                    raise GradebookError(f"{assignment} has no due time to extend by {days} days; "
                                         f"give the new due time instead")
                local = as_course_time(asg.due, self.config.zone).replace(tzinfo=None)
                due = (local + dt.timedelta(days=days)).replace(tzinfo=self.config.zone)
            due = as_course_time(due, self.config.zone)
            row = s.scalar(sa.select(m.Extension).where(m.Extension.student_pk == st.id,
                                                        m.Extension.assignment_pk == asg.id))
            if row is None:
                s.add(m.Extension(student_pk=st.id, assignment_pk=asg.id, due=due, reason=reason,
                                  granted_by=granted_by))
            else:
                row.due, row.reason, row.granted_by = due, reason, granted_by
                row.granted_at = m.utcnow()
        return due

    def import_scores(self, rows: list[ScoreRow], source: str) -> dict[str, int]:
        """Store scores graded elsewhere (:func:`gradebook.csvfiles.parse_scores`); a student's
        new score for an assessment replaces the earlier one. Unknown students or assessments
        fail the whole file."""
        counts = {"added": 0, "replaced": 0, "unchanged": 0}
        with self._tx() as s:
            students = {st.student_id: st for st in s.scalars(
                sa.select(m.Student).where(m.Student.course_id == self.course_id))}
            assignments = {a.name: a for a in s.scalars(
                sa.select(m.Assignment).where(m.Assignment.course_id == self.course_id,
                                              m.Assignment.source != "removed"))}
            problems = []
            for r in rows:
                if r.student not in students:
                    problems.append(f"line {r.line}: student {r.student!r} is not in the roster; "
                                    f"import the roster first or fix the id")
                if r.assignment not in assignments:
                    problems.append(f"line {r.line}: no assessment {r.assignment!r} (known: "
                                    f"{', '.join(sorted(assignments)) or 'none'}); declare it in "
                                    f"course.toml [assessments.{r.assignment}] and run sync")
            if problems:
                raise ScoresError(source, problems)
            existing = {(ms.student_pk, ms.assignment_pk): ms for ms in s.scalars(
                sa.select(m.ManualScore).join(m.Student).where(m.Student.course_id == self.course_id))}
            for r in rows:
                st, asg = students[r.student], assignments[r.assignment]
                row = existing.get((st.id, asg.id))
                values = dict(score=r.score, max_score=r.max_score, submitted_at=r.submitted_at)
                if row is None:
                    s.add(m.ManualScore(student_pk=st.id, assignment_pk=asg.id, source=source, **values))
                    counts["added"] += 1
                elif (row.score, row.max_score, row.submitted_at) == (r.score, r.max_score, r.submitted_at):
                    counts["unchanged"] += 1
                else:
                    row.score, row.max_score, row.submitted_at = r.score, r.max_score, r.submitted_at
                    row.source, row.recorded_at = source, m.utcnow()
                    counts["replaced"] += 1
        return counts

    # -- reading for grades ---------------------------------------------------------------------

    def specs(self) -> list[AssessmentSpec]:
        with self._sessions() as s:
            rows = list(s.scalars(sa.select(m.Assignment).where(
                m.Assignment.course_id == self.course_id, m.Assignment.source != "removed")))
            maxima = dict(s.execute(
                sa.select(m.Assignment.name, sa.func.max(m.GradingRun.max_score))
                .join(m.Submission, m.Submission.assignment_pk == m.Assignment.id)
                .join(m.GradingRun, m.GradingRun.submission_id == m.Submission.id)
                .where(m.Assignment.course_id == self.course_id)
                .group_by(m.Assignment.name)).all())
        far = dt.datetime.max.replace(tzinfo=m.UTC)
        rows.sort(key=lambda a: (a.due or far, a.name))
        return [AssessmentSpec(name=a.name, kind=a.kind, category=a.category, due=a.due,
                               max_points=a.points or maxima.get(a.name), title=a.title)
                for a in rows]

    def records(self, include_dropped: bool = False,
                only: str | None = None) -> list[StudentRecords]:
        """Every student's attempts and extensions, as the policy functions take them. The newest
        run of a graded submission counts; a submission without a result yet is ``pending``."""
        with self._sessions() as s:
            q = sa.select(m.Student).where(m.Student.course_id == self.course_id)
            if only is not None:
                q = q.where(m.Student.student_id == only)
            elif not include_dropped:
                q = q.where(m.Student.status == "active")
            students = list(s.scalars(q.order_by(m.Student.student_id)))
            pks = [st.id for st in students]
            names = dict(s.execute(sa.select(m.Assignment.id, m.Assignment.name)
                                   .where(m.Assignment.course_id == self.course_id)).all())
            attempts: dict[int, dict[str, list[Attempt]]] = defaultdict(lambda: defaultdict(list))
            extensions: dict[int, dict[str, dt.datetime]] = defaultdict(dict)
            for chunk in _chunks(pks, 5000):
                latest = (sa.select(sa.func.max(m.GradingRun.id).label("run"))
                          .join(m.Submission, m.Submission.id == m.GradingRun.submission_id)
                          .where(m.GradingRun.status == "graded",
                                 m.Submission.student_pk.in_(chunk))
                          .group_by(m.GradingRun.submission_id).subquery())
                q = (sa.select(m.Submission.student_pk, m.Submission.assignment_pk,
                               m.Submission.attempt, m.Submission.submitted_at,
                               m.Submission.chosen, m.GradingRun.score, m.GradingRun.max_score)
                     .join(m.GradingRun, m.GradingRun.submission_id == m.Submission.id)
                     .join(latest, latest.c.run == m.GradingRun.id))
                for spk, apk, attempt, at, chosen, score, max_score in s.execute(q):
                    attempts[spk][names[apk]].append(Attempt(
                        f"submission {attempt}", at, score, max_score, chosen=chosen))
                graded = sa.select(m.GradingRun.submission_id).where(m.GradingRun.status == "graded")
                for spk, apk, attempt, at in s.execute(
                        sa.select(m.Submission.student_pk, m.Submission.assignment_pk,
                                  m.Submission.attempt, m.Submission.submitted_at)
                        .where(m.Submission.student_pk.in_(chunk), m.Submission.id.not_in(graded))):
                    attempts[spk][names[apk]].append(Attempt(
                        f"submission {attempt}", at, 0.0, 0.0, pending=True))
                for ms in s.scalars(sa.select(m.ManualScore).where(m.ManualScore.student_pk.in_(chunk))):
                    label = f"manual score ({Path(ms.source).name})" if ms.source else "manual score"
                    attempts[ms.student_pk][names[ms.assignment_pk]].append(Attempt(
                        label, ms.submitted_at, ms.score, ms.max_score, manual=True))
                for ext in s.scalars(sa.select(m.Extension).where(m.Extension.student_pk.in_(chunk))):
                    extensions[ext.student_pk][names[ext.assignment_pk]] = ext.due
        return [StudentRecords(student_id=st.student_id, name=st.name, status=st.status,
                               attempts={k: tuple(sorted(v, key=_attempt_order))
                                         for k, v in attempts[st.id].items()},
                               extensions=dict(extensions[st.id]))
                for st in students]

    def grades(self, as_of: dt.datetime | None = None, allocation: str | None = None,
               include_dropped: bool = False, only: str | None = None) -> list[StudentGrade]:
        """Every student's grades under the course policy, as of ``as_of`` (default: now)."""
        if only is not None:
            with self._sessions() as s:
                self._student(s, only)
        moment = as_course_time(as_of, self.config.zone) if as_of else m.utcnow()
        return grade_all(self.records(include_dropped, only), self.specs(), self.config,
                         moment, allocation)

    def test_records(self) -> Iterator[TestRecord]:
        """Per-test results of the newest run of each active student's latest graded
        submission, for pass rates."""
        with self._sessions() as s:
            latest_run = (sa.select(sa.func.max(m.GradingRun.id).label("run"), m.Submission.student_pk,
                                    m.Submission.assignment_pk)
                          .join(m.Submission, m.Submission.id == m.GradingRun.submission_id)
                          .group_by(m.Submission.student_pk, m.Submission.assignment_pk).subquery())
            q = (sa.select(m.Assignment.name, m.Student.student_id, m.GradingRun.result)
                 .join(latest_run, latest_run.c.run == m.GradingRun.id)
                 .join(m.Student, m.Student.id == latest_run.c.student_pk)
                 .join(m.Assignment, m.Assignment.id == latest_run.c.assignment_pk)
                 .where(m.Student.course_id == self.course_id, m.Student.status == "active"))
            for assignment, sid, result in s.execute(q):
                for t in result.get("tests", []):
                    yield TestRecord(assignment, sid, t.get("name", "?"), t.get("status") == "passed",
                                     float(t.get("score", 0)), float(t.get("max_score", 0)))


def _attempt_order(a: Attempt) -> tuple:
    return (a.submitted_at or dt.datetime.min.replace(tzinfo=m.UTC), a.label)


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
