"""Helpers for the staff page tests: a service with one logged-in client per role (grader, TA,
instructor, a student, a staff member of another course, and nobody), and graded submissions."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fastapi.testclient import TestClient

from autograder.service.auth import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE, open_session
from autograder.service.models import ServiceUser
from autograder.service.permissions import invite_staff
from autograder.service.workers import JobRunner
from gradebook import models as gm
from tests.service.conftest import Service, make_service

CSRF = "test-csrf-token-0123456789"
#: Who the matrix asks as: the three staff roles, a student, a user of another course, nobody.
CALLERS = ("grader", "ta", "instructor", "student", "other_course", "anonymous")
STAFF_EMAIL = {"grader": "grader@x.edu", "ta": "ta@x.edu", "instructor": "prof@x.edu"}


@dataclass
class StaffService:
    """A service with a client per caller (each logged in by session cookie, CSRF ready)."""

    svc: Service
    clients: dict[str, TestClient] = field(default_factory=dict)

    @property
    def db(self):  # type: ignore[no-untyped-def]
        return self.svc.db

    def grade_all(self) -> int:
        """Run a worker in this process until the queue is empty; returns jobs done."""
        runner = JobRunner(self.svc.settings, self.svc.db, "test-worker")
        n = 0
        try:
            runner.report_alive(lanes=("cpu", "gpu"), every_s=0)
            while runner.run_once(lanes=("cpu", "gpu")):
                n += 1
        finally:
            runner.close()
        return n


def _client(app, session: str | None) -> TestClient:  # type: ignore[no-untyped-def]
    client = TestClient(app, follow_redirects=False)
    client.cookies.set(CSRF_COOKIE, CSRF)
    client.headers[CSRF_HEADER] = CSRF
    if session:
        client.cookies.set(SESSION_COOKIE, session)
    return client


def make_staff_service(course: Path, db_url: str) -> StaffService:
    """The service of ``tests.service.conftest.make_service`` with staff of every role, a
    student (alice) with a session, and an instructor of another course in the same database."""
    svc = make_service(course, db_url)
    db = svc.db
    app = svc.client.app
    out = StaffService(svc)
    for role, email in STAFF_EMAIL.items():
        invite_staff(db, email, role, name=role.title())
    sessions: dict[str, str | None] = {"anonymous": None}
    with db.write() as s:
        ids = {u.login: u.id for u in s.query(ServiceUser).filter(ServiceUser.course_id
                                                                  == db.course_id)}
        other = gm.Course(name="another-course", timezone="UTC")
        s.add(other)
        s.flush()
        stranger = ServiceUser(course_id=other.id, login="prof@other.edu", role="instructor")
        s.add(stranger)
        s.flush()
        stranger_id = stranger.id
    for role, email in STAFF_EMAIL.items():
        sessions[role] = open_session(db, ids[email])
    from autograder.service.auth import ensure_user

    sessions["student"] = open_session(db, ensure_user(db, "alice"))
    sessions["other_course"] = open_session(db, stranger_id)
    for caller in CALLERS:
        out.clients[caller] = _client(app, sessions[caller])
    return out
