"""Who is asking: bearer tokens for scripts, session cookies for people, invitations that let a
student set a password, and CSRF protection for forms.

* Passwords are hashed with argon2 (``argon2-cffi``); tokens, invitation links and session ids
  are random (``secrets``) and stored only as their SHA-256.
* The session cookie is ``HttpOnly`` and ``SameSite=Lax`` (``Secure`` when the service runs
  behind HTTPS: ``Settings.secure_cookies``).
* CSRF: a double-submit token. Every response carries a random ``ag_csrf`` cookie; a page puts
  :func:`csrf_token` in its forms (``<input name="csrf_token">``) or HTMX header
  (``X-CSRF-Token``); :func:`check_csrf` refuses an unsafe request authenticated by cookie whose
  token does not match the cookie (a bearer token needs none: a browser never sends it by itself).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import HTTPException, Request, Response

from autograder.errors import UserError
from autograder.service.database import ServiceDB
from autograder.service.models import ApiToken, Invitation, ServiceUser, WebSession
from gradebook import models as gm

UTC = dt.timezone.utc
SESSION_COOKIE = "ag_session"
CSRF_COOKIE = "ag_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
MIN_PASSWORD = 10
_hasher = PasswordHasher()


class AuthError(UserError):
    """Credentials that do not let anyone in; the message says what to do."""


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    user_id: int
    login: str
    role: str
    student_pk: int | None
    via: str  # "token" | "session"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def _now() -> dt.datetime:
    return dt.datetime.now(UTC)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    if not stored:
        _hasher.hash(password)  # the same time whether or not the account has a password
        return False
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def ensure_user(db: ServiceDB, login: str) -> int:
    """The account of student ``login`` (made on first use); the student must be in the roster."""
    with db.write() as s:
        user = s.scalar(sa.select(ServiceUser).where(ServiceUser.course_id == db.course_id,
                                                     ServiceUser.login == login))
        if user is not None:
            return user.id
        student = s.scalar(sa.select(gm.Student).where(gm.Student.course_id == db.course_id,
                                                       gm.Student.student_id == login))
        if student is None:
            raise AuthError(f"student {login!r} is not in the roster; add them with "
                            f"`autograder gradebook roster import FILE.csv` first")
        user = ServiceUser(course_id=db.course_id, login=login, student_pk=student.id,
                           role="student")
        s.add(user)
        s.flush()
        return user.id


def issue_api_token(db: ServiceDB, login: str, label: str = "") -> str:
    """A new API token for student ``login`` (printed once; only its hash is kept)."""
    user_id = ensure_user(db, login)
    token = "ag_" + secrets.token_urlsafe(32)
    with db.write() as s:
        s.add(ApiToken(user_id=user_id, token_hash=_digest(token), label=label,
                       created_at=_now()))
    return token


def create_invitation(db: ServiceDB, login: str, days: float = 14.0) -> str:
    """A one-time invitation token for student ``login`` (the link is ``/invite/{token}``)."""
    user_id = ensure_user(db, login)
    token = secrets.token_urlsafe(32)
    now = _now()
    with db.write() as s:
        s.add(Invitation(user_id=user_id, token_hash=_digest(token), created_at=now,
                         expires_at=now + dt.timedelta(days=days)))
    return token


def invitation_login(db: ServiceDB, token: str) -> str | None:
    """The login an unused, unexpired invitation is for (None otherwise)."""
    with db.read() as s:
        row = s.execute(sa.select(Invitation, ServiceUser.login)
                        .join(ServiceUser, ServiceUser.id == Invitation.user_id)
                        .where(Invitation.token_hash == _digest(token))).first()
    if row is None or row[0].used_at is not None or row[0].expires_at < _now():
        return None
    return row[1]


def accept_invitation(db: ServiceDB, token: str, password: str) -> int:
    """Set the invited student's password (the invitation is then used up, and their other
    sessions end); returns their user id."""
    if len(password) < MIN_PASSWORD:
        raise AuthError(f"choose a password of at least {MIN_PASSWORD} characters")
    hashed = hash_password(password)
    with db.write() as s:
        inv = s.scalar(sa.select(Invitation).where(Invitation.token_hash == _digest(token))
                       .with_for_update())
        if inv is None or inv.used_at is not None or inv.expires_at < _now():
            raise AuthError("this invitation link is unknown, used or expired; ask staff for "
                            "a new one (`autograder invite STUDENT`)")
        inv.used_at = _now()
        user = s.get(ServiceUser, inv.user_id)
        assert user is not None
        user.password_hash = hashed
        s.execute(sa.delete(WebSession).where(WebSession.user_id == user.id))
        return user.id


def login(db: ServiceDB, login_name: str, password: str, hours: float = 12.0) -> str:
    """Check a password and open a session; returns the session token for the cookie."""
    with db.read() as s:
        user = s.scalar(sa.select(ServiceUser).where(ServiceUser.course_id == db.course_id,
                                                     ServiceUser.login == login_name))
    if not verify_password(user.password_hash if user else None, password) or user is None:
        raise AuthError("wrong login or password (a student without a password sets one "
                        "through the invitation link staff sent)")
    token = open_session(db, user.id, hours)
    # One active session per student during a timed exam: this login ends the others.
    from autograder.service.exams import end_other_sessions

    end_other_sessions(db, user.id, _digest(token))
    return token


def open_session(db: ServiceDB, user_id: int, hours: float = 12.0) -> str:
    token = secrets.token_urlsafe(32)
    now = _now()
    with db.write() as s:
        s.add(WebSession(user_id=user_id, token_hash=_digest(token), created_at=now,
                         expires_at=now + dt.timedelta(hours=hours)))
    return token


def logout(db: ServiceDB, session_token: str) -> None:
    with db.write() as s:
        s.execute(sa.delete(WebSession).where(WebSession.token_hash == _digest(session_token)))


def set_session_cookie(response: Response, token: str, *, secure: bool, hours: float) -> None:
    response.set_cookie(SESSION_COOKIE, token, max_age=int(hours * 3600), httponly=True,
                        samesite="lax", secure=secure, path="/")


def _principal(user: ServiceUser, via: str) -> Principal:
    return Principal(user.id, user.login, user.role, user.student_pk, via)


def authenticate(db: ServiceDB, request: Request) -> Principal | None:
    """The caller of ``request``: a bearer token (``Authorization: Bearer ...``), else a session
    cookie; None when neither is present. A present but wrong credential raises 401."""
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("the Authorization header must be 'Bearer <token>'; get a "
                                "token from staff (`autograder token STUDENT`)")
        with db.read() as s:
            row = s.execute(sa.select(ApiToken, ServiceUser)
                            .join(ServiceUser, ServiceUser.id == ApiToken.user_id)
                            .where(ApiToken.token_hash == _digest(token.strip()),
                                   ServiceUser.course_id == db.course_id)).first()
        if row is None or row[0].revoked_at is not None:
            raise _unauthorized("this API token is not valid (mistyped, revoked, or for "
                                "another course); ask staff for a new one")
        return _principal(row[1], "token")
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        with db.read() as s:
            found = s.execute(sa.select(WebSession, ServiceUser)
                              .join(ServiceUser, ServiceUser.id == WebSession.user_id)
                              .where(WebSession.token_hash == _digest(cookie),
                                     ServiceUser.course_id == db.course_id)).first()
        if found is None or found[0].expires_at < _now():
            raise _unauthorized("your session has ended; log in again")
        return _principal(found[1], "session")
    return None


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail,
                         headers={"WWW-Authenticate": "Bearer"})


# -- CSRF ----------------------------------------------------------------------------------------

def csrf_token(request: Request) -> str:
    """The CSRF token to put in this page's forms (a hidden ``csrf_token`` field) or in HTMX
    requests (the ``X-CSRF-Token`` header). The middleware sets the matching cookie."""
    token = getattr(request.state, "csrf_token", None) or request.cookies.get(CSRF_COOKIE)
    if not token:
        token = secrets.token_urlsafe(32)
    request.state.csrf_token = token
    return token


def check_csrf(request: Request, submitted: str | None) -> None:
    """Refuse (403) an unsafe request whose CSRF token is missing or does not match the cookie."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not submitted or not hmac.compare_digest(cookie, submitted):
        raise HTTPException(status_code=403, detail="the form's security token is missing or "
                            "stale (CSRF check); reload the page and submit it again")


async def csrf_cookie_middleware(request: Request, call_next):  # type: ignore[no-untyped-def]
    """Give every browser a CSRF cookie (double-submit pattern); the token a page rendered with
    :func:`csrf_token` is the one the cookie holds."""
    response = await call_next(request)
    token = getattr(request.state, "csrf_token", None)
    if token and request.cookies.get(CSRF_COOKIE) != token:
        secure = bool(getattr(request.app.state, "settings", None)
                      and request.app.state.settings.secure_cookies)
        response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="lax", secure=secure,
                            path="/")
    return response
