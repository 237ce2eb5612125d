"""Authentication: invitations, passwords (argon2), session cookies (HttpOnly, SameSite, Secure
when configured), CSRF on forms and on cookie-authenticated API posts, secrets stored hashed."""

from __future__ import annotations

import re

import sqlalchemy as sa
from fastapi.testclient import TestClient

from autograder.service.app import create_app
from autograder.service.auth import create_invitation, hash_password
from autograder.service.models import ApiToken, GradingJob, ServiceUser
from tests.service.conftest import CORRECT, make_service, settings_for


def _csrf(page_html: str) -> str:
    return re.search(r"name=[\"']csrf_token[\"'] value=[\"']([^\"']+)[\"']", page_html).group(1)


def _set_password(svc, login="alice", password="correct horse battery") -> None:
    token = create_invitation(svc.db, login)
    page = svc.client.get(f"/invite/{token}")
    assert page.status_code == 200 and login in page.text
    r = svc.client.post(f"/invite/{token}", data={"password": password, "confirm": password,
                                                  "csrf_token": _csrf(page.text)},
                        follow_redirects=False)
    assert r.status_code == 303, r.text


def test_invitation_sets_a_hashed_password_and_opens_a_session(service):
    token = create_invitation(service.db, "alice")
    page = service.client.get(f"/invite/{token}")
    # No CSRF token: refused, nothing changed.
    r = service.client.post(f"/invite/{token}", data={"password": "long enough pw"})
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    r = service.client.post(f"/invite/{token}", data={"password": "short", "confirm": "short",
                                                      "csrf_token": _csrf(page.text)})
    assert r.status_code in (400, 422) and "at least 10" in r.text
    r = service.client.post(f"/invite/{token}", data={"password": "long enough pw", "confirm": "long enough pw",
                                                      "csrf_token": _csrf(page.text)},
                            follow_redirects=False)
    assert r.status_code == 303
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("ag_session=") and "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower() and "Secure" not in cookie
    assert service.client.get("/api/v1/me").json()["id"] == "alice"  # the cookie logs in
    with service.db.read() as s:
        stored = s.scalar(sa.select(ServiceUser.password_hash).where(ServiceUser.login == "alice"))
        hashes = list(s.scalars(sa.select(ApiToken.token_hash)))
    assert stored.startswith("$argon2") and "long enough pw" not in stored
    assert service.tokens["alice"] not in hashes  # tokens are stored as hashes only
    # Used once.
    assert service.client.get(f"/invite/{token}").status_code == 404


def test_login_logout_and_wrong_password(service):
    _set_password(service)
    service.client.cookies.clear()
    page = service.client.get("/login")
    bad = service.client.post("/login", data={"login": "alice", "password": "nope",
                                              "csrf_token": _csrf(page.text)})
    assert bad.status_code == 401 and "wrong login or password" in bad.text
    ok = service.client.post("/login", data={"login": "alice",
                                             "password": "correct horse battery",
                                             "csrf_token": _csrf(page.text)},
                             follow_redirects=False)
    assert ok.status_code == 303 and service.client.get("/api/v1/me").status_code == 200
    out = service.client.post("/logout", data={"csrf_token": _csrf(page.text)},
                              follow_redirects=False)
    assert out.status_code == 303
    stale = out.request.headers.get("cookie", "")
    assert "ag_session" in stale
    session = re.search(r"ag_session=([^;]+)", stale).group(1)
    r = service.client.get("/api/v1/me", cookies={"ag_session": session})
    assert r.status_code == 401 and "log in again" in r.json()["detail"]


def test_cookie_posts_need_the_csrf_header(service):
    _set_password(service)
    files = {"files": ("toy.py", CORRECT)}
    r = service.client.post("/api/v1/assignments/toy/submissions", files=files)
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    r = service.client.post("/api/v1/assignments/toy/submissions", files=files,
                            headers={"X-CSRF-Token": "forged"})
    assert r.status_code == 403
    with service.db.read() as s:
        assert s.scalar(sa.select(sa.func.count(GradingJob.id))) == 0
    token = service.client.cookies.get("ag_csrf")
    r = service.client.post("/api/v1/assignments/toy/submissions", files=files,
                            headers={"X-CSRF-Token": token})
    assert r.status_code == 202


def test_secure_cookies_when_configured(course, sqlite_url):
    svc = make_service(course, sqlite_url)
    try:
        app = create_app(settings_for(course, sqlite_url, secure_cookies=True), db=svc.db)
        svc.client = TestClient(app, base_url="https://testserver")
        token = create_invitation(svc.db, "bob")
        page = svc.client.get(f"/invite/{token}")
        assert "Secure" in page.headers["set-cookie"]  # the CSRF cookie
        r = svc.client.post(f"/invite/{token}", data={"password": "long enough pw", "confirm": "long enough pw",
                                                      "csrf_token": _csrf(page.text)},
                            follow_redirects=False)
        assert "Secure" in r.headers["set-cookie"] and "HttpOnly" in r.headers["set-cookie"]
    finally:
        svc.db.close()


def test_unknown_student_and_password_hash_library(service):
    import pytest

    from autograder.service.auth import AuthError, issue_api_token, verify_password

    with pytest.raises(AuthError, match="not in the roster"):
        issue_api_token(service.db, "mallory")
    h = hash_password("pw-1234567890")
    assert verify_password(h, "pw-1234567890") and not verify_password(h, "pw-0")
    assert not verify_password(None, "anything")
