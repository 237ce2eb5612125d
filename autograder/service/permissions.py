"""Who may do what on the staff pages: the one permission table, and the FastAPI dependency that
enforces it.

Roles are per course: a :class:`~autograder.service.models.ServiceUser` belongs to one course
and has one role there (``student`` for a roster student; ``grader``, ``ta`` or ``instructor``
for staff, synced from the gradebook's ``staff`` table). Graders only grade; TAs also regrade,
manage extensions and accommodations, watch operations and run similarity; instructors do
everything, including inviting staff, syncing the roster, the gradebook and the LMS.

Every staff route declares its action once, ``Depends(require("submissions.view"))``; the
permission matrix test (``tests/service/test_permissions.py``) walks every route under
``/staff`` and ``/api/v1/staff`` in the app and every role, so a new route is covered as soon as
it is declared. Templates show or hide links with :func:`can`.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from fastapi import HTTPException, Request

from autograder.service import auth
from autograder.service.auth import Principal
from autograder.service.models import ApiToken, Invitation, ServiceUser, WebSession
from gradebook import models as gm

__all__ = ["ROLES", "STAFF_ROLES", "PERMISSIONS", "can", "require", "action_of", "iter_routes",
           "invite_staff", "sync_staff_accounts"]

#: A person's role in one course, least to most trusted.
ROLES = ("student", "grader", "ta", "instructor")
STAFF_ROLES = frozenset({"grader", "ta", "instructor"})

_GRADERS = frozenset({"grader", "ta", "instructor"})
_TAS = frozenset({"ta", "instructor"})
_INSTRUCTORS = frozenset({"instructor"})

#: action -> the roles allowed to do it. A student is never in any set: the staff pages are
#: closed to students whatever this table says.
PERMISSIONS: dict[str, frozenset[str]] = {
    # grading: graders, TAs, instructors
    "submissions.view": _GRADERS,
    "grades.override": _GRADERS,
    "regrade_requests.answer": _GRADERS,
    # running the course day to day: TAs and instructors
    "submissions.regrade": _TAS,
    "extensions.manage": _TAS,
    "accommodations.manage": _TAS,
    "audit.view": _TAS,
    "operations.view": _TAS,
    "similarity.run": _TAS,
    "similarity.review": _TAS,
    "exams.monitor": _TAS,
    # the course itself: instructors
    "gradebook.view": _INSTRUCTORS,
    "gradebook.export": _INSTRUCTORS,
    "stats.view": _INSTRUCTORS,
    "staff.invite": _INSTRUCTORS,
    "roster.sync": _INSTRUCTORS,
    "lti.passback.view": _INSTRUCTORS,
    "exams.manage": _INSTRUCTORS,
}
assert all(roles <= STAFF_ROLES for roles in PERMISSIONS.values())

_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def can(principal: Principal | None, action: str) -> bool:
    """Whether ``principal`` (None: nobody logged in) may do ``action`` in this course."""
    if action not in PERMISSIONS:
        raise KeyError(f"unknown staff action {action!r}; declare it in "
                       f"autograder/service/permissions.py PERMISSIONS")
    return principal is not None and principal.role in PERMISSIONS[action]


def action_of(dependency: Callable[..., Any]) -> str | None:
    """The action a dependency made by :func:`require` checks (None for any other callable):
    lets the permission matrix test find each route's declared action."""
    return getattr(dependency, "permission_action", None)


def iter_routes(routes: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(full path, route) for every route of an app or router, into included routers (FastAPI
    0.16x keeps an included router as one ``_IncludedRouter`` entry in ``app.routes``)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            context = getattr(route, "include_context", None)
            yield from iter_routes(inner.routes, prefix + getattr(context, "prefix", ""))
        else:
            yield prefix + getattr(route, "path", ""), route


def require(action: str) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency for a staff route: authenticates the caller (bearer token or session
    cookie) and returns their :class:`Principal`.

    * not logged in: 401 (a browser asking for a page under ``/staff`` is sent to the login page
      instead, with ``next`` set to come back);
    * a student, a role without ``action``, or someone of another course: 403;
    * a cookie-authenticated unsafe request (POST...) must carry the CSRF token, in the
      ``X-CSRF-Token`` header (HTMX, fetch) or the form's ``csrf_token`` field.
    """
    if action not in PERMISSIONS:
        raise KeyError(f"unknown staff action {action!r}; declare it in PERMISSIONS first")

    async def dependency(request: Request) -> Principal:
        db = request.app.state.service.db
        try:
            who = auth.authenticate(db, request)
        except HTTPException as e:
            if e.status_code == 401 and _of_another_course(db, request):
                raise _forbidden("you are signed in to another course; these pages belong to "
                                 "this course's staff") from None
            raise
        if who is None:
            raise _login_required(request)
        if who.role not in PERMISSIONS[action]:
            if who.role == "student":
                raise _forbidden("these pages are for course staff")
            raise _forbidden(f"your role ({who.role}) may not do this ({action}); ask an "
                             f"instructor if you need it")
        if who.via == "session" and request.method not in _SAFE_METHODS:
            submitted = request.headers.get(auth.CSRF_HEADER)
            if not submitted and _is_form(request):
                submitted = str((await request.form()).get(auth.CSRF_FIELD, ""))
            auth.check_csrf(request, submitted)
        return who

    dependency.permission_action = action  # type: ignore[attr-defined]
    dependency.__name__ = f"require_{action.replace('.', '_')}"
    return dependency


def _is_form(request: Request) -> bool:
    kind = request.headers.get("content-type", "")
    return kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data"))


def _forbidden(detail: str) -> HTTPException:
    return HTTPException(status_code=403, detail=detail)


def _login_required(request: Request) -> HTTPException:
    """401; for a browser's page request, a redirect to the login form (then back here)."""
    path = request.url.path
    wants_page = (path.startswith("/staff") and request.method == "GET"
                  and "text/html" in request.headers.get("accept", ""))
    if request.headers.get("hx-request"):
        return HTTPException(status_code=401, detail="log in again",
                             headers={"HX-Redirect": "/login"})
    if wants_page:
        target = path + (f"?{request.url.query}" if request.url.query else "")
        return HTTPException(status_code=303, detail="log in first",
                             headers={"Location": f"/login?next={quote(target)}"})
    return HTTPException(status_code=401, detail="log in, or send 'Authorization: Bearer "
                                                 "<token>'", headers={"WWW-Authenticate": "Bearer"})


def _of_another_course(db: Any, request: Request) -> bool:
    """Whether the credential that failed is valid, but for a user of another course."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    with db.read() as s:
        if header and scheme.lower() == "bearer" and token.strip():
            row = s.execute(sa.select(ServiceUser.course_id)
                            .join(ApiToken, ApiToken.user_id == ServiceUser.id)
                            .where(ApiToken.token_hash == auth._digest(token.strip()),
                                   ApiToken.revoked_at.is_(None))).first()
        elif not header and request.cookies.get(auth.SESSION_COOKIE):
            row = s.execute(sa.select(ServiceUser.course_id)
                            .join(WebSession, WebSession.user_id == ServiceUser.id)
                            .where(WebSession.token_hash
                                   == auth._digest(request.cookies[auth.SESSION_COOKIE]),
                                   WebSession.expires_at > auth._now())).first()
        else:
            return False
    return row is not None and row[0] != db.course_id


# -- staff accounts ------------------------------------------------------------------------------

def sync_staff_accounts(db: Any) -> dict[str, str]:
    """Give every member of the gradebook's ``staff`` table a service account with their role
    (login: their e-mail), and set a role that changed; returns login -> role."""
    roles: dict[str, str] = {}
    with db.write() as s:
        staff = s.scalars(sa.select(gm.Staff).where(gm.Staff.course_id == db.course_id)).all()
        for member in staff:
            user = s.scalar(sa.select(ServiceUser).where(ServiceUser.course_id == db.course_id,
                                                         ServiceUser.login == member.email))
            if user is None:
                s.add(ServiceUser(course_id=db.course_id, login=member.email, student_pk=None,
                                  role=member.role))
            elif user.student_pk is None:
                user.role = member.role
            roles[member.email] = member.role
    return roles


def invite_staff(db: Any, email: str, role: str, *, name: str = "", by: str = "",
                 days: float = 14.0) -> str:
    """Make ``email`` a staff member with ``role`` (grader, ta or instructor) and return a
    one-time invitation token (the link is ``/invite/{token}``, where they set a password).
    Recorded in the gradebook's staff table and the audit log."""
    email = email.strip()
    if role not in STAFF_ROLES:
        raise auth.AuthError(f"role {role!r}: use one of grader, ta, instructor")
    if "@" not in email or len(email) > 320 or any(c.isspace() for c in email):
        raise auth.AuthError(f"{email!r} is not an e-mail address; staff log in with their "
                             f"e-mail")
    with db.read() as s:
        clash = s.scalar(sa.select(ServiceUser).where(ServiceUser.course_id == db.course_id,
                                                      ServiceUser.login == email,
                                                      ServiceUser.student_pk.is_not(None)))
    if clash is not None:
        raise auth.AuthError(f"{email!r} is a student's login in this course; invite staff "
                             f"with another address")
    db.gb.add_staff(email, role, name)
    sync_staff_accounts(db)
    token = secrets.token_urlsafe(32)
    now = dt.datetime.now(dt.timezone.utc)
    with db.write() as s:
        user = s.scalar(sa.select(ServiceUser).where(ServiceUser.course_id == db.course_id,
                                                     ServiceUser.login == email))
        assert user is not None
        s.add(Invitation(user_id=user.id, token_hash=auth._digest(token), created_at=now,
                         expires_at=now + dt.timedelta(days=days)))
        s.add(gm.AuditEntry(course_id=db.course_id, at=now, actor=by, action="staff.invite",
                            detail=f"{email} invited as {role}", reason=""))
    return token
