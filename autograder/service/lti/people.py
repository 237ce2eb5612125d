"""Who an LMS user is here: their role from the LTI roles, and their account (a roster student
with a service account, or a staff member), matched or made. Used by the launch and by the
roster sync (NRPS), so both treat a person the same way.

Role mapping (context roles only: an institution or system role, such as Canvas's institution
"Instructor" sent to a student, says nothing about this course):

=====================================================  ===============================
LTI context role                                       role here
=====================================================  ===============================
``membership/Instructor#TeachingAssistant`` (or
``#TeachingAssistant``), with or without Instructor    ``ta``
``#Instructor``, ``#Administrator``                    ``instructor``
``#ContentDeveloper``                                  ``grader`` (sees and grades work,
                                                       changes nothing of the course)
``#Learner``, ``#Member``                              ``student``
``#Mentor`` only, or no context role                   refused: a mentor follows one
                                                       learner and must not see them all
=====================================================  ===============================

The most trusted role wins (a TA who is also a Learner of the course is a TA). Short LTI 1.1
names (``Learner``, ``Instructor``) are read the same way.

Matching a student: the LMS user seen before (issuer + ``sub``), else the roster student whose
id is the LMS's ``person_sourcedid``, else the one with the same e-mail (any case); otherwise a
new roster student is added, their id the ``person_sourcedid``, else the e-mail, else
``lti-`` and a hash of the LMS id. Staff are matched by e-mail (their login here), which the LMS
must share.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from autograder.errors import UserError
from autograder.service import auth
from autograder.service.database import ServiceDB
from autograder.service.lti.models import LtiUser
from autograder.service.models import ServiceUser
from autograder.text import neutralise_name
from gradebook import models as gm
from gradebook.csvfiles import RosterRow

UTC = dt.timezone.utc
MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership"
_ROLE_ORDER = ("ta", "instructor", "grader", "student")


class LaunchRefused(UserError):
    """An LMS user this course cannot let in; the message says what to change."""


@dataclass(frozen=True)
class Person:
    """An LMS user as a launch or NRPS describes them."""

    issuer: str
    sub: str
    roles: tuple[str, ...]
    name: str = ""
    email: str = ""
    sourcedid: str = ""


def _context_role_names(roles: Iterable[str]) -> set[str]:
    names: set[str] = set()
    for role in roles:
        if role.startswith(MEMBERSHIP + "#"):
            names.add(role.split("#", 1)[1])
        elif role.startswith(MEMBERSHIP + "/"):
            principal, _, sub = role[len(MEMBERSHIP) + 1:].partition("#")
            # A sub-role: TeachingAssistant says more than its principal (Instructor).
            names.add("TeachingAssistant" if sub == "TeachingAssistant" else principal)
        elif "/" not in role and ":" not in role:
            names.add(role.split("#")[-1])  # LTI 1.1 short names
    return names


def service_role(roles: Iterable[str]) -> str | None:
    """This course's role for a list of LTI roles (None: not let in; see the module's table)."""
    names = _context_role_names(roles)
    found = set()
    if "TeachingAssistant" in names:
        found.add("ta")
    if names & {"Instructor", "Administrator"}:
        found.add("instructor")
    if "ContentDeveloper" in names:
        found.add("grader")
    if names & {"Learner", "Member"}:
        found.add("student")
    return next((r for r in _ROLE_ORDER if r in found), None)


def _clean(text: str, limit: int) -> str:
    return neutralise_name(str(text or "")).strip()[:limit]


def _new_student_id(person: Person) -> str:
    for candidate in (person.sourcedid, person.email):
        candidate = _clean(candidate, 100)
        if candidate and not any(c.isspace() for c in candidate):
            return candidate
    digest = hashlib.sha256(f"{person.issuer}\n{person.sub}".encode()).hexdigest()[:16]
    return f"lti-{digest}"


def _remember(db: ServiceDB, person: Person, user_id: int) -> None:
    """Keep (or move) the LMS user's link to account ``user_id``."""
    now = dt.datetime.now(UTC)
    with db.write() as s:
        row = s.scalar(sa.select(LtiUser).where(LtiUser.course_id == db.course_id,
                                                LtiUser.issuer == person.issuer,
                                                LtiUser.sub == person.sub))
        if row is None:
            row = LtiUser(course_id=db.course_id, issuer=person.issuer, sub=person.sub,
                          user_id=user_id)
            s.add(row)
        row.user_id, row.roles, row.updated_at = user_id, list(person.roles), now
        row.email, row.name = _clean(person.email, 320), _clean(person.name, 300)


def find_student(db: ServiceDB, person: Person) -> gm.Student | None:
    """The roster student this LMS user is (see the module's matching rules), or None."""
    with db.read() as s:
        known = s.scalar(sa.select(gm.Student)
                         .join(ServiceUser, ServiceUser.student_pk == gm.Student.id)
                         .join(LtiUser, LtiUser.user_id == ServiceUser.id)
                         .where(LtiUser.course_id == db.course_id,
                                LtiUser.issuer == person.issuer, LtiUser.sub == person.sub))
        if known is not None:
            return known
        course = gm.Student.course_id == db.course_id
        if person.sourcedid:
            st = s.scalar(sa.select(gm.Student).where(course, gm.Student.student_id
                                                      == _clean(person.sourcedid, 100)))
            if st is not None:
                return st
        if person.email:
            return s.scalar(sa.select(gm.Student).where(
                course, sa.func.lower(gm.Student.email) == _clean(person.email, 320).lower()))
    return None


def student_row(db: ServiceDB, person: Person) -> RosterRow:
    """The roster line for this LMS learner: their existing student (id and section kept),
    else a new one."""
    st = find_student(db, person)
    name, email = _clean(person.name, 300), _clean(person.email, 320)
    if st is not None:
        return RosterRow(0, st.student_id, name or st.name, email or st.email, st.section)
    return RosterRow(0, _new_student_id(person), name, email)


def link_student(db: ServiceDB, person: Person, student_id: str) -> int:
    """The service account of roster student ``student_id``, linked to the LMS user."""
    user_id = auth.ensure_user(db, student_id)
    _remember(db, person, user_id)
    return user_id


def ensure_student(db: ServiceDB, person: Person) -> int:
    """Match or add the roster student for an LMS learner; returns their account's id."""
    row = student_row(db, person)
    with db.read() as s:
        exists = s.scalar(sa.select(gm.Student.id).where(
            gm.Student.course_id == db.course_id, gm.Student.student_id == row.student_id))
    if exists is None:
        db.gb.import_roster([row])
    return link_student(db, person, row.student_id)


def ensure_staff(db: ServiceDB, person: Person, role: str) -> int:
    """Make the LMS user a staff member with ``role`` (the LMS decides their role in its
    course); returns their account's id. Staff log in by e-mail, so the LMS must share it."""
    from autograder.service.permissions import sync_staff_accounts

    email = _clean(person.email, 320)
    if "@" not in email:
        raise LaunchRefused("the LMS did not share your e-mail address, which staff accounts "
                            "are keyed by; ask the LMS administrator to let this tool receive "
                            "e-mail addresses (privacy settings of the tool)")
    with db.read() as s:
        clash = s.scalar(sa.select(ServiceUser.id).where(
            ServiceUser.course_id == db.course_id, ServiceUser.login == email,
            ServiceUser.student_pk.is_not(None)))
    if clash is not None:
        raise LaunchRefused(f"{email} is a student's login in this course, so it cannot also "
                            f"be a {role}'s; ask an instructor to sort the roster out")
    db.gb.add_staff(email, role, _clean(person.name, 300))
    sync_staff_accounts(db)
    with db.read() as s:
        user_id = s.scalar(sa.select(ServiceUser.id).where(
            ServiceUser.course_id == db.course_id, ServiceUser.login == email))
    assert user_id is not None
    _remember(db, person, user_id)
    return user_id


def ensure_person(db: ServiceDB, person: Person) -> tuple[int, str]:
    """The account of an LMS user and their role here; refused when the roles map to none."""
    role = service_role(person.roles)
    if role is None:
        raise LaunchRefused("your role in the LMS course (" + (", ".join(
            r.rsplit("#", 1)[-1] for r in person.roles) or "none") + ") gives no access to "
            "the autograder: learners, teaching assistants, instructors and content "
            "developers are let in")
    if role == "student":
        return ensure_student(db, person), role
    return ensure_staff(db, person, role), role
