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
                          submitted_at: dt.datetime, *, keep_files: bool = True) -> StoredSubmission:
        """Record that ``student`` submitted ``assignment``, received at ``submitted_at``
        (aware); made before grading, so the returned record's ``identity`` can travel with the
        grading job and come back inside its result.

        ``files_or_hash`` is the submitted files (``{relative path: bytes}`` or a directory),
        stored in the database with their sha256, or just the content hash when the files are
        stored elsewhere. The same files received at the same time again return the same
        submission; otherwise the submission gets the next attempt number (the gradebook
        numbers attempts, one student at a time)."""
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
        return self._retrying(lambda s: self._stored(self._find_or_add_submission(
            s, self._student(s, student, lock=True), self._assignment(s, assignment), digest,
            files, submitted_at, keep_files)), f"a submission of {student} for {assignment}")

    def _retrying(self, work: Any, what: str) -> Any:
        """Run ``work(session)`` in a transaction, again when a concurrent writer took the same
        attempt number (SQLite). Inside :meth:`transaction` there is no retry: the whole
        transaction fails, and its caller may run it again."""
        if self._in_transaction():
            with self._tx() as s:
                return work(s)
        for retry in range(10):
            try:
                with self._tx() as s:
                    return work(s)
            except IntegrityError:
                time.sleep(0.01 * (retry + 1))
        raise GradebookError(f"could not record {what}: the attempt number kept being taken "
                             f"by concurrent writers; retry")

    def _find_or_add_submission(self, s: Session, st: m.Student, asg: m.Assignment, digest: str,
                                files: Mapping[str, bytes] | None, received_at: dt.datetime,
                                keep_files: bool = True) -> m.Submission:
        # The student's row is locked (PostgreSQL; SQLite holds the write lock): their
        # submissions get numbers in turn.
        same = s.scalar(sa.select(m.Submission).where(
            m.Submission.student_pk == st.id, m.Submission.assignment_pk == asg.id,
            m.Submission.content_hash == digest, m.Submission.submitted_at == received_at))
        if same is not None:
            return same
        last = s.scalar(sa.select(sa.func.max(m.Submission.attempt)).where(
            m.Submission.student_pk == st.id, m.Submission.assignment_pk == asg.id))
        sub = m.Submission(student_pk=st.id, assignment_pk=asg.id, attempt=(last or 0) + 1,
                           content_hash=digest, submitted_at=received_at)
        for path, data in sorted((files or {}).items()):
            sub.files.append(m.SubmissionFile(
                path=path, sha256=hashlib.sha256(data).hexdigest(), size=len(data),
                content=data if keep_files else None))
        s.add(sub)
        s.flush()
        return sub

    def _stored(self, sub: m.Submission) -> StoredSubmission:
        return StoredSubmission(id=sub.id, student=sub.student.student_id,
                                assignment=sub.assignment.name, attempt=sub.attempt,
                                content_hash=sub.content_hash,
                                received_at=sub.submitted_at.astimezone(m.UTC))

    def record_result(self, submission_id: int, result: GradingResult, run_id: str) -> None:
        """Store the result of grading run ``run_id`` for a submission. Recording the same run
        again (a retried job, a second grader) changes nothing; a different result under the
        same run id raises :class:`ResultConflict` (give a regrade its own run id). A result of
        the public tests only is refused: it is not a grade."""
        with self._tx() as s:
            sub = s.get(m.Submission, submission_id)
            if sub is None or sub.student.course_id != self.course_id:
                raise UnknownSubmission(f"no submission {submission_id} in the gradebook; record "
                                        f"it first with record_submission()")
            self._add_run(s, sub, result, run_id)

    def _add_run(self, s: Session, sub: m.Submission, result: GradingResult, run_id: str) -> None:
        _refuse_partial(result)
        if result.assignment != sub.assignment.name:
            raise GradebookError(f"run {run_id}: the result is for {result.assignment!r} but "
                                 f"submission {sub.id} is for {sub.assignment.name!r}")
        if result.content_hash and result.content_hash != sub.content_hash:
            raise GradebookError(f"run {run_id}: the result's content hash "
                                 f"{result.content_hash[:12]}... is not submission "
                                 f"{sub.id}'s ({sub.content_hash[:12]}...): it graded "
                                 f"other files")
        payload = result.to_json()
        stmt = self._insert(m.GradingRun.__table__).values(
            run_id=run_id, submission_id=sub.id, backend=result.backend,
            status="graded", score=result.score, max_score=result.max_score, result=payload,
            execution_time_s=result.execution_time_s, graded_at=result.graded_at,
            recorded_at=m.utcnow()).on_conflict_do_nothing(index_elements=["run_id"])
        inserted = s.execute(stmt.returning(m.GradingRun.__table__.c.id)).first()
        if inserted is None:
            existing = s.scalar(sa.select(m.GradingRun).where(m.GradingRun.run_id == run_id))
            if existing is None or existing.submission_id != sub.id or existing.result != payload:
                where = f"submission {existing.submission_id}" if existing else "another course"
                raise ResultConflict(f"run {run_id!r} already holds a different result (for "
                                     f"{where}); a regrade needs a new run id")

    def record_graded(self, result: GradingResult,
                      files: Mapping[str, bytes] | Path | None = None, *,
                      student: str | None = None, received_at: dt.datetime | None = None,
                      run_id: str | None = None) -> RecordedResult:
        """Record a graded submission in one transaction: find its submission record (the one
        its identity names, or the one with the same content hash, student and receipt time),
        or store it with the next attempt number, then store the result under its run id.

        Who and when come from ``result.identity``; ``student`` and ``received_at`` are used
        only when the result does not carry them (results written before it did). ``files``
        (``{path: bytes}`` or a directory) are stored with a new submission and must hash to
        the result's ``content_hash``. The run id is ``result.run_id``, else ``run_id``, else
        one derived from the result itself, so recording the same result twice changes nothing.
        Raises a :class:`GradebookError` saying what to fix; nothing is written then."""
        _refuse_partial(result)
        who = result.identity.student or student or ""
        if not who:
            raise GradebookError(f"the result for submission {result.submission!r} names no "
                                 f"student; give the student (a manifest or --student)")
        when = _receipt_time(result, received_at, self.config)
        stored: dict[str, bytes] | None = None
        if isinstance(files, Path):
            stored = read_files(files)
        elif files is not None:
            stored = dict(files)
        digest = result.content_hash
        if stored is not None:
            digest = content_hash(stored)
            if result.content_hash and result.content_hash != digest:
                raise GradebookError(f"the result's content hash {result.content_hash[:12]}... "
                                     f"is not the given files' ({digest[:12]}...): it graded "
                                     f"other files")
        run = (result.run_id or run_id
               or "result-" + hashlib.sha256(json.dumps(result.to_json(), sort_keys=True)
                                             .encode()).hexdigest()[:40])
        digest = digest or f"unhashed-{run}"

        def work(s: Session) -> RecordedResult:
            st = self._student(s, who, lock=True)
            asg = self._assignment(s, result.assignment)
            if result.identity.attempt > 0:
                sub = s.scalar(sa.select(m.Submission).where(
                    m.Submission.student_pk == st.id, m.Submission.assignment_pk == asg.id,
                    m.Submission.attempt == result.identity.attempt))
                if sub is None:
                    raise UnknownSubmission(
                        f"the result names attempt {result.identity.attempt} of {who} at "
                        f"{asg.name}, which the gradebook does not hold; `autograder gradebook "
                        f"submissions list --student {who}` lists the attempts")
            else:
                sub = self._find_or_add_submission(s, st, asg, digest, stored, when)
            self._add_run(s, sub, result, run)
            return RecordedResult(submission_id=sub.id, student=who, assignment=asg.name,
                                  attempt=sub.attempt,
                                  received_at=sub.submitted_at.astimezone(m.UTC), run_id=run,
                                  score=result.score,
                                  max_points=asg.points or result.max_score)

        return self._retrying(work, f"the result of {who} for {result.assignment}")

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
        """Move ``assignment``'s due time for ``student`` later: to ``due``, or by ``days``
        (same wall-clock time in the course time zone). Returns the new due time; granting again
        replaces the earlier extension. A new due time that is not later than the assignment's
        own is refused (it would make on-time work late); :meth:`revoke_extension` takes one
        back. Kept in the audit trail."""
        if (due is None) == (days is None):
            raise GradebookError("give the extension either a new due time or a number of days")
        with self._tx() as s:
            st = self._student(s, student)
            asg = self._assignment(s, assignment)
            zone = self.config.zone
            if days is not None:
                if asg.due is None:
                    raise GradebookError(f"{assignment} has no due time to extend by {days} days; "
                                         f"give the new due time instead")
                if days < 1:
                    raise GradebookError(f"--days {days}: an extension must move the due time "
                                         f"later than {fmt_time(asg.due, zone)}; give 1 or more "
                                         f"days (to take an extension back, revoke it)")
                local = as_course_time(asg.due, zone).replace(tzinfo=None)
                due = (local + dt.timedelta(days=days)).replace(tzinfo=zone)
            assert due is not None
            due = as_course_time(due, zone)
            if asg.due is not None and due <= asg.due:
                raise GradebookError(f"the new due time {fmt_time(due, zone)} is not later than "
                                     f"{assignment}'s due time {fmt_time(asg.due, zone)}; an "
                                     f"extension can only move it later (to take one back, "
                                     f"revoke it)")
            row = s.scalar(sa.select(m.Extension).where(m.Extension.student_pk == st.id,
                                                        m.Extension.assignment_pk == asg.id))
            before = fmt_time(row.due if row else asg.due, zone)
            if row is None:
                s.add(m.Extension(student_pk=st.id, assignment_pk=asg.id, due=due, reason=reason,
                                  granted_by=granted_by))
            else:
                row.due, row.reason, row.granted_by = due, reason, granted_by
                row.granted_at = m.utcnow()
            self._audit(s, "extension granted", student=student, assignment=assignment,
                        detail=f"due {before} -> {fmt_time(due, zone)}", reason=reason,
                        actor=granted_by)
        return due

    def revoke_extension(self, student: str, assignment: str, *, reason: str = "",
                         revoked_by: str = "") -> None:
        """Take back ``student``'s extension on ``assignment`` (the assignment's own due time
        applies again); kept in the audit trail."""
        with self._tx() as s:
            st = self._student(s, student)
            asg = self._assignment(s, assignment)
            row = s.scalar(sa.select(m.Extension).where(m.Extension.student_pk == st.id,
                                                        m.Extension.assignment_pk == asg.id))
            if row is None:
                raise GradebookError(f"{student} has no extension on {assignment} to revoke")
            zone = self.config.zone
            s.delete(row)
            self._audit(s, "extension revoked", student=student, assignment=assignment,
                        detail=f"due {fmt_time(row.due, zone)} -> {fmt_time(asg.due, zone)}",
                        reason=reason, actor=revoked_by)

    # -- timed assessments: accommodations and exam overrides ------------------------------------

    def set_accommodation(self, student: str, *, time_factor: float = 1.0,
                          extra_minutes: float = 0.0, reason: str = "", set_by: str = "") -> None:
        """Store ``student``'s accommodation for every timed assessment (exams and quizzes):
        their time is ``duration x time_factor + extra_minutes``. Setting it again replaces it;
        kept in the audit trail."""
        if not (time_factor >= 1.0 and time_factor <= 10.0):
            raise GradebookError(f"--time-factor {time_factor:g}: an accommodation gives more "
                                 f"time, so give a factor from 1 to 10 (1.5 for time and a half)")
        if not (extra_minutes >= 0 and extra_minutes <= 24 * 60):
            raise GradebookError(f"--extra-minutes {extra_minutes:g}: give 0 to 1440 minutes")
        with self._tx() as s:
            st = self._student(s, student)
            row = s.scalar(sa.select(m.Accommodation).where(m.Accommodation.student_pk == st.id))
            before = _describe_accommodation(row)
            if row is None:
                s.add(m.Accommodation(student_pk=st.id, time_factor=time_factor,
                                      extra_minutes=extra_minutes, reason=reason, set_by=set_by))
            else:
                row.time_factor, row.extra_minutes = time_factor, extra_minutes
                row.reason, row.set_by, row.set_at = reason, set_by, m.utcnow()
            after = _describe_accommodation(m.Accommodation(time_factor=time_factor,
                                                            extra_minutes=extra_minutes))
            self._audit(s, "accommodation set", student=student, detail=f"{before} -> {after}",
                        reason=reason, actor=set_by)

    def remove_accommodation(self, student: str, *, reason: str = "", removed_by: str = "") -> None:
        """Take ``student``'s accommodation back; kept in the audit trail."""
        with self._tx() as s:
            st = self._student(s, student)
            row = s.scalar(sa.select(m.Accommodation).where(m.Accommodation.student_pk == st.id))
            if row is None:
                raise GradebookError(f"{student} has no accommodation to revoke")
            s.delete(row)
            self._audit(s, "accommodation revoked", student=student,
                        detail=f"{_describe_accommodation(row)} -> none", reason=reason,
                        actor=removed_by)

    def _exam(self, s: Session, name: str) -> m.Assignment:
        asg = self._assignment(s, name)
        if asg.kind not in ("exam", "quiz"):
            raise GradebookError(f"{name} is kind {asg.kind!r}, not a timed exam or quiz; for "
                                 f"more time on it use `autograder gradebook extend`")
        return asg

    def set_exam_override(self, student: str, exam: str, *, extra_minutes: float = 0.0,
                          window_extension_minutes: float = 0.0, reason: str = "",
                          set_by: str = "") -> None:
        """One student's terms on one exam, on top of their accommodation: ``extra_minutes``
        more time, and ``window_extension_minutes`` that move their ``closes`` (and the exam's
        due time for them) later. Setting it again replaces it; kept in the audit trail."""
        for flag, value in (("--extra-minutes", extra_minutes),
                            ("--window-extension-minutes", window_extension_minutes)):
            if not (value >= 0 and value <= 7 * 24 * 60):
                raise GradebookError(f"{flag} {value:g}: give 0 to 10080 minutes")
        if extra_minutes == 0 and window_extension_minutes == 0:
            raise GradebookError("give --extra-minutes or --window-extension-minutes (or "
                                 "--revoke to take an override back)")
        with self._tx() as s:
            st = self._student(s, student)
            asg = self._exam(s, exam)
            row = s.scalar(sa.select(m.ExamOverride).where(m.ExamOverride.student_pk == st.id,
                                                           m.ExamOverride.assignment_pk == asg.id))
            before = _describe_override(row)
            if row is None:
                s.add(m.ExamOverride(student_pk=st.id, assignment_pk=asg.id,
                                     extra_minutes=extra_minutes,
                                     window_extension_minutes=window_extension_minutes,
                                     reason=reason, set_by=set_by))
            else:
                row.extra_minutes = extra_minutes
                row.window_extension_minutes = window_extension_minutes
                row.reason, row.set_by, row.set_at = reason, set_by, m.utcnow()
            after = _describe_override(m.ExamOverride(
                extra_minutes=extra_minutes, window_extension_minutes=window_extension_minutes))
            self._audit(s, "exam override set", student=student, assignment=exam,
                        detail=f"{before} -> {after}", reason=reason, actor=set_by)

    def revoke_exam_override(self, student: str, exam: str, *, reason: str = "",
                             revoked_by: str = "") -> None:
        """Take back ``student``'s override on ``exam``; kept in the audit trail."""
        with self._tx() as s:
            st = self._student(s, student)
            asg = self._exam(s, exam)
            row = s.scalar(sa.select(m.ExamOverride).where(m.ExamOverride.student_pk == st.id,
                                                           m.ExamOverride.assignment_pk == asg.id))
            if row is None:
                raise GradebookError(f"{student} has no override on {exam} to revoke")
            s.delete(row)
            self._audit(s, "exam override revoked", student=student, assignment=exam,
                        detail=f"{_describe_override(row)} -> none", reason=reason,
                        actor=revoked_by)

    def exam_allowance(self, student: str, exam: str):  # -> autograder.exams.Allowance
        """What ``student`` gets on ``exam`` beyond its terms: their accommodation's time factor
        and extra minutes, plus the exam override's minutes and window extension. The grading
        service passes it to :func:`autograder.exams.ends_at` when the student starts."""
        from autograder.exams import Allowance

        with self._sessions() as s:
            st = self._student(s, student)
            asg = self._exam(s, exam)
            acc = s.scalar(sa.select(m.Accommodation).where(m.Accommodation.student_pk == st.id))
            ovr = s.scalar(sa.select(m.ExamOverride).where(m.ExamOverride.student_pk == st.id,
                                                           m.ExamOverride.assignment_pk == asg.id))
        return Allowance(
            time_factor=acc.time_factor if acc else 1.0,
            extra_minutes=(acc.extra_minutes if acc else 0.0) + (ovr.extra_minutes if ovr else 0.0),
            window_extension_minutes=ovr.window_extension_minutes if ovr else 0.0)

    def import_scores(self, rows: list[ScoreRow], source: str, by: str = "") -> dict[str, int]:
        """Store scores graded elsewhere (:func:`gradebook.csvfiles.parse_scores`); a student's
        new score for an assessment replaces the earlier one. Unknown students or assessments
        fail the whole file. Every added or changed score goes into the audit trail."""
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
                new = f"{r.score:g} / {r.max_score:g}"
                if row is None:
                    row = m.ManualScore(student_pk=st.id, assignment_pk=asg.id, source=source,
                                        **values)
                    s.add(row)
                    existing[(st.id, asg.id)] = row
                    counts["added"] += 1
                    self._audit(s, "manual score added", student=r.student, assignment=r.assignment,
                                detail=f"{new} (from {source})", actor=by)
                elif (row.score, row.max_score, row.submitted_at) == (r.score, r.max_score, r.submitted_at):
                    counts["unchanged"] += 1
                else:
                    old = f"{row.score:g} / {row.max_score:g}"
                    row.score, row.max_score, row.submitted_at = r.score, r.max_score, r.submitted_at
                    row.source, row.recorded_at = source, m.utcnow()
                    counts["replaced"] += 1
                    self._audit(s, "manual score replaced", student=r.student,
                                assignment=r.assignment, detail=f"{old} -> {new} (from {source})",
                                actor=by)
        return counts

    # -- per-test overrides and deleting submissions --------------------------------------------

    def _latest_tests(self, s: Session, st: m.Student, asg: m.Assignment) -> dict[str, dict]:
        """The tests of the newest run of the student's newest graded submission, by name."""
        payload = s.scalar(
            sa.select(m.GradingRun.result)
            .join(m.Submission, m.Submission.id == m.GradingRun.submission_id)
            .where(m.Submission.student_pk == st.id, m.Submission.assignment_pk == asg.id)
            .order_by(m.Submission.attempt.desc(), m.GradingRun.id.desc()).limit(1))
        return {t.get("name", "?"): t for t in (payload or {}).get("tests", [])}

    def override_test(self, student: str, assignment: str, test: str, score: float, *,
                      comment: str, by: str = "") -> None:
        """Give ``student``'s test ``test`` of ``assignment`` the score ``score`` instead of the
        grader's, with the reason (``comment``, required). It applies to whichever run counts,
        regrades included, until :meth:`remove_override`; kept in the audit trail."""
        if not comment.strip():
            raise GradebookError("an override needs a comment saying why (--comment)")
        with self._tx() as s:
            st, asg = self._student(s, student), self._assignment(s, assignment)
            tests = self._latest_tests(s, st, asg)
            if test not in tests:
                known = ", ".join(sorted(tests)) or "none: nothing graded yet"
                raise GradebookError(f"{student}'s result for {assignment} has no test {test!r} "
                                     f"(its tests: {known})")
            graded, top = float(tests[test].get("score", 0)), float(tests[test].get("max_score", 0))
            top = max(top, graded)  # an extra-credit test has max 0 and may score above it
            if not 0 <= score <= top:
                raise GradebookError(f"score {score:g} for {test}: give a score between 0 and "
                                     f"{top:g} (its points)")
            row = s.scalar(sa.select(m.TestOverride).where(
                m.TestOverride.student_pk == st.id, m.TestOverride.assignment_pk == asg.id,
                m.TestOverride.test_name == test))
            before = f"{row.score:g} (overridden)" if row else f"{graded:g} (graded)"
            if row is None:
                s.add(m.TestOverride(student_pk=st.id, assignment_pk=asg.id, test_name=test,
                                     score=score, comment=comment, set_by=by, set_at=m.utcnow()))
            else:
                row.score, row.comment, row.set_by, row.set_at = score, comment, by, m.utcnow()
            self._audit(s, "test score overridden", student=student, assignment=assignment,
                        detail=f"{test}: {before} -> {score:g} / {top:g}", reason=comment, actor=by)

    def remove_override(self, student: str, assignment: str, test: str, *, comment: str = "",
                        by: str = "") -> None:
        """Take back an override: the grader's score for ``test`` counts again (audited)."""
        with self._tx() as s:
            st, asg = self._student(s, student), self._assignment(s, assignment)
            row = s.scalar(sa.select(m.TestOverride).where(
                m.TestOverride.student_pk == st.id, m.TestOverride.assignment_pk == asg.id,
                m.TestOverride.test_name == test))
            if row is None:
                raise GradebookError(f"{student} has no override of {test} in {assignment}")
            s.delete(row)
            self._audit(s, "test override removed", student=student, assignment=assignment,
                        detail=f"{test}: {row.score:g} (overridden) -> the graded score",
                        reason=comment, actor=by)

    def submission_rows(self, student: str | None = None,
                        assignment: str | None = None) -> list[SubmissionRow]:
        """Every submission record with its newest run's score, oldest first."""
        with self._sessions() as s:
            latest = (sa.select(sa.func.max(m.GradingRun.id).label("run"),
                                sa.func.count(m.GradingRun.id).label("runs"),
                                m.GradingRun.submission_id)
                      .group_by(m.GradingRun.submission_id).subquery())
            q = (sa.select(m.Submission, m.Student.student_id, m.Assignment.name,
                           m.Assignment.points, latest.c.runs, m.GradingRun.score,
                           m.GradingRun.max_score)
                 .join(m.Student, m.Student.id == m.Submission.student_pk)
                 .join(m.Assignment, m.Assignment.id == m.Submission.assignment_pk)
                 .outerjoin(latest, latest.c.submission_id == m.Submission.id)
                 .outerjoin(m.GradingRun, m.GradingRun.id == latest.c.run)
                 .where(m.Student.course_id == self.course_id)
                 .order_by(m.Submission.submitted_at, m.Submission.id))
            if student is not None:
                q = q.where(m.Student.student_id == student)
            if assignment is not None:
                q = q.where(m.Assignment.name == assignment)
            return [SubmissionRow(id=sub.id, student=sid, assignment=name, attempt=sub.attempt,
                                  received_at=sub.submitted_at, content_hash=sub.content_hash,
                                  runs=runs or 0, score=score,
                                  max_points=None if score is None else (points or max_score))
                    for sub, sid, name, points, runs, score, max_score in s.execute(q)]

    def delete_submission(self, submission_id: int, *, reason: str = "", by: str = "") -> SubmissionRow:
        """Delete a submission record with its files and grading runs (kept in the audit trail
        by student, assignment and attempt). The other attempts keep their numbers."""
        with self._tx() as s:
            sub = s.get(m.Submission, submission_id)
            if sub is None or sub.student.course_id != self.course_id:
                raise UnknownSubmission(f"no submission {submission_id} in the gradebook; "
                                        f"`autograder gradebook submissions list` shows the ids")
            gone = SubmissionRow(id=sub.id, student=sub.student.student_id,
                                 assignment=sub.assignment.name, attempt=sub.attempt,
                                 received_at=sub.submitted_at, content_hash=sub.content_hash,
                                 runs=0, score=None, max_points=None)
            s.execute(sa.delete(m.GradingRun).where(m.GradingRun.submission_id == sub.id))
            s.delete(sub)
            self._audit(s, "submission deleted", student=gone.student, assignment=gone.assignment,
                        detail=f"attempt {gone.attempt} received "
                               f"{fmt_time(gone.received_at, self.config.zone)} "
                               f"(content {gone.content_hash[:12]})", reason=reason, actor=by)
        return gone

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
            names: dict[int, str] = {}
            points: dict[int, float | None] = {}
            for apk, name, pts in s.execute(sa.select(m.Assignment.id, m.Assignment.name,
                                                      m.Assignment.points)
                                            .where(m.Assignment.course_id == self.course_id)):
                names[apk], points[apk] = name, pts
            attempts: dict[int, dict[str, list[Attempt]]] = defaultdict(lambda: defaultdict(list))
            extensions: dict[int, dict[str, dt.datetime]] = defaultdict(dict)
            for chunk in _chunks(pks, 5000):
                overrides: dict[tuple[int, int], dict[str, m.TestOverride]] = defaultdict(dict)
                for o in s.scalars(sa.select(m.TestOverride)
                                   .where(m.TestOverride.student_pk.in_(chunk))):
                    overrides[(o.student_pk, o.assignment_pk)][o.test_name] = o
                latest = (sa.select(sa.func.max(m.GradingRun.id).label("run"))
                          .join(m.Submission, m.Submission.id == m.GradingRun.submission_id)
                          .where(m.GradingRun.status == "graded",
                                 m.Submission.student_pk.in_(chunk))
                          .group_by(m.GradingRun.submission_id).subquery())
                runs = (sa.select(m.Submission.student_pk, m.Submission.assignment_pk,
                                  m.Submission.attempt, m.Submission.submitted_at,
                                  m.Submission.chosen, m.GradingRun.id, m.GradingRun.score,
                                  m.GradingRun.max_score)
                        .join(m.GradingRun, m.GradingRun.submission_id == m.Submission.id)
                        .join(latest, latest.c.run == m.GradingRun.id))
                for spk, apk, attempt, at, chosen, run_pk, score, max_score in s.execute(runs):
                    # Counted against the assignment's points, not the result's own maximum
                    # (an unreadable upload's result has none; a partial one has fewer).
                    declared = points[apk]
                    out_of = declared or max_score
                    notes: list[str] = []
                    if declared and max_score and abs(max_score - declared) > 1e-9:
                        notes.append(f"its tests add up to {max_score:g} points; counted out "
                                     f"of the assignment's {declared:g}")
                    if (spk, apk) in overrides:
                        score = self._overridden(s, run_pk, score, overrides[(spk, apk)], notes)
                    attempts[spk][names[apk]].append(Attempt(
                        f"submission {attempt}", at, score, out_of, chosen=chosen,
                        notes=tuple(notes)))
                graded = sa.select(m.GradingRun.submission_id).where(m.GradingRun.status == "graded")
                for spk, apk, attempt, at in s.execute(
                        sa.select(m.Submission.student_pk, m.Submission.assignment_pk,
                                  m.Submission.attempt, m.Submission.submitted_at)
                        .where(m.Submission.student_pk.in_(chunk), m.Submission.id.not_in(graded))):
                    attempts[spk][names[apk]].append(Attempt(
                        f"submission {attempt}", at, 0.0, points[apk] or 0.0, pending=True))
                for ms in s.scalars(sa.select(m.ManualScore).where(m.ManualScore.student_pk.in_(chunk))):
                    label = f"manual score ({Path(ms.source).name})" if ms.source else "manual score"
                    attempts[ms.student_pk][names[ms.assignment_pk]].append(Attempt(
                        label, ms.submitted_at, ms.score, ms.max_score, manual=True))
                for ext in s.scalars(sa.select(m.Extension).where(m.Extension.student_pk.in_(chunk))):
                    extensions[ext.student_pk][names[ext.assignment_pk]] = ext.due
                # An exam's window extension moves that student's closes, its due time, too.
                for ovr, exam_due in s.execute(
                        sa.select(m.ExamOverride, m.Assignment.due)
                        .join(m.Assignment, m.Assignment.id == m.ExamOverride.assignment_pk)
                        .where(m.ExamOverride.student_pk.in_(chunk),
                               m.ExamOverride.window_extension_minutes > 0,
                               m.Assignment.due.is_not(None))):
                    moved = exam_due + dt.timedelta(minutes=ovr.window_extension_minutes)
                    name = names[ovr.assignment_pk]
                    granted = extensions[ovr.student_pk].get(name)
                    extensions[ovr.student_pk][name] = max(moved, granted) if granted else moved
        return [StudentRecords(student_id=st.student_id, name=st.name, status=st.status,
                               attempts={k: tuple(sorted(v, key=_attempt_order))
                                         for k, v in attempts[st.id].items()},
                               extensions=dict(extensions[st.id]))
                for st in students]

    @staticmethod
    def _overridden(s: Session, run_pk: int, score: float, overrides: dict[str, m.TestOverride],
                    notes: list[str]) -> float:
        """A run's score with staff overrides in place of the graded test scores."""
        payload = s.scalar(sa.select(m.GradingRun.result).where(m.GradingRun.id == run_pk)) or {}
        for t in payload.get("tests", []):
            o = overrides.get(t.get("name", ""))
            if o is not None:
                graded = float(t.get("score", 0))
                score += o.score - graded
                who = f" by {o.set_by}" if o.set_by else ""
                notes.append(f"{o.test_name} overridden {graded:g} -> {o.score:g}{who}: {o.comment}")
        return round(score, 6)

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


def _describe_accommodation(row: m.Accommodation | None) -> str:
    """``time x1.5 +10 min``, for the audit trail."""
    if row is None:
        return "none"
    return f"time x{row.time_factor:g}" + (f" +{row.extra_minutes:g} min" if row.extra_minutes else "")


def _describe_override(row: m.ExamOverride | None) -> str:
    """``+15 min, window +30 min``, for the audit trail."""
    if row is None:
        return "none"
    parts = [f"+{row.extra_minutes:g} min"] if row.extra_minutes else []
    if row.window_extension_minutes:
        parts.append(f"window +{row.window_extension_minutes:g} min")
    return ", ".join(parts) or "none"


def _attempt_order(a: Attempt) -> tuple:
    return (a.submitted_at or dt.datetime.min.replace(tzinfo=m.UTC), a.label)


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _refuse_partial(result: GradingResult) -> None:
    """Only a result of the full test set is a grade (issue 12: an 11/11 of the public tests
    was once counted as 36/36)."""
    if result.test_set != "full":
        raise GradebookError(
            f"the result for {result.submission!r} ({result.assignment}) covers the public "
            f"tests only (`autograder grade --public-only` or a student's check), so it is not "
            f"a grade; grade the submission with the hidden tests and record that result")


def _receipt_time(result: GradingResult, fallback: dt.datetime | None,
                  config: CourseConfig) -> dt.datetime:
    """When the submission was received: the result's identity, else ``fallback``."""
    text = result.identity.received_at
    if text:
        try:
            when = dt.datetime.fromisoformat(text)
        except ValueError:
            raise GradebookError(f"the result for {result.submission!r} has receipt time "
                                 f"{text!r}, which is not an ISO 8601 time") from None
        return as_course_time(when, config.zone)
    if fallback is None:
        raise GradebookError(f"the result for {result.submission!r} carries no receipt time; "
                             f"give it (--submitted-at, or a --manifest CSV)")
    if fallback.tzinfo is None:
        raise ValueError("received_at has no time zone; pass an aware datetime")
    return fallback
