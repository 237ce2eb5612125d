"""The service's security headers (autograder/service/headers.py), over the real app: every
route registered in it (introspected, as the permission matrix does, so a route another module
adds is covered too), asked as each kind of caller, answers with the Content-Security-Policy,
``nosniff`` and ``Referrer-Policy``; pages get the page policy with the registered LMS origins
in ``frame-ancestors``; everything else gets the locked-down one. The templates hold no inline
script and no ``on*=`` handler (the policy would stop them). That the policy stops a real
injection in Chromium, and that the real pages run under it with no violation, is
``test_security_headers_browser.py``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.testclient import TestClient
from starlette.routing import Mount

from autograder.service.headers import (NON_PAGE_POLICY, SecurityHeaders,
                                        origin_of, page_policy, platform_origins)
from autograder.service.lti.config import generate_private_key
from autograder.service.permissions import iter_routes
from tests.service.conftest import CORRECT, build_course, make_service
from tests.service.staff_support import CALLERS, StaffService, make_staff_service

TEMPLATES = Path(__file__).resolve().parents[2] / "autograder/service/templates"
CANVAS = ("https://canvas.instructure.com", "https://sso.canvaslms.com")
LTI_TABLE = '''
[lti]
private_key = "secrets/lti.pem"
[[lti.platforms]]
issuer = "https://canvas.instructure.com"
client_id = "10000000000042"
deployment_ids = ["17:abc"]
auth_login_url = "https://sso.canvaslms.com/api/lti/authorize_redirect"
auth_token_url = "https://sso.canvaslms.com/login/oauth2/token"
key_set_url = "https://sso.canvaslms.com/api/lti/security/jwks"
[[lti.platforms]]
issuer = "https://canvas.instructure.com"
client_id = "10000000000043"
deployment_ids = ["18:abc"]
auth_login_url = "https://sso.canvaslms.com/api/lti/authorize_redirect"
auth_token_url = "https://sso.canvaslms.com/login/oauth2/token"
key_set_url = "https://sso.canvaslms.com/api/lti/security/jwks"
'''


def directives(policy: str) -> dict[str, list[str]]:
    """A policy as {directive: sources}; fails on a directive written twice."""
    out: dict[str, list[str]] = {}
    for part in policy.split(";"):
        words = part.split()
        if not words:
            continue
        assert words[0] not in out, f"{words[0]} twice in {policy!r}"
        out[words[0]] = words[1:]
    return out


@pytest.fixture(scope="module")
def staff(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StaffService]:
    """The staff service (every role logged in) of a course registered with Canvas for LTI,
    with one graded submission of alice."""
    root = tmp_path_factory.mktemp("headers")
    course = build_course(root / "course")
    with open(course / "course.toml", "a") as f:
        f.write(LTI_TABLE)
    generate_private_key(course / "secrets" / "lti.pem")
    out = make_staff_service(course, f"sqlite:///{root / 'service.sqlite'}")
    assert out.svc.submit("alice", CORRECT).status_code == 202
    assert out.grade_all() == 1
    yield out
    out.db.close()


def concrete(path: str) -> str:
    """A route's path filled in so that the page exists: ids 1, names the course's ``toy``."""
    return re.sub(r"\{(\w+)(:[^}]*)?\}",
                  lambda m: "1" if m.group(1).endswith("id") else
                  "pages.js" if m.group(1) == "path" else "toy", path)


def test_the_page_policy_is_what_the_brief_of_the_service_says():
    policy = directives(page_policy(CANVAS))
    assert policy == {
        "default-src": ["'self'"], "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"], "img-src": ["'self'", "data:"],
        "object-src": ["'none'"], "base-uri": ["'none'"], "form-action": ["'self'"],
        "frame-ancestors": ["'self'", *CANVAS]}
    assert directives(NON_PAGE_POLICY) == {"default-src": ["'none'"],
                                           "frame-ancestors": ["'none'"], "sandbox": []}


def test_every_route_answers_with_the_headers_for_every_caller(staff):
    """Each route and method of the app, as each caller, asking for a page and for JSON."""
    app = staff.svc.client.app
    expected_page = directives(page_policy(CANVAS))
    wrong: list[str] = []
    seen = {"page": 0, "other": 0}
    routes = list(iter_routes(app.routes))
    assert len(routes) >= 60, len(routes)
    for path, route in routes:
        methods = sorted(getattr(route, "methods", None) or {"GET"})
        if isinstance(route, Mount):
            path = path.rstrip("/") + "/pages.js"
        for method in (m for m in methods if m != "HEAD"):
            url = concrete(path)
            for caller in CALLERS:
                for accept in ("text/html", "application/json"):
                    r = staff.clients[caller].request(method, url, headers={"accept": accept})
                    where = f"{method} {url} as {caller} ({accept}) -> {r.status_code}"
                    if r.headers.get("x-content-type-options") != "nosniff":
                        wrong.append(f"{where}: no nosniff")
                    if r.headers.get("referrer-policy") != "same-origin":
                        wrong.append(f"{where}: Referrer-Policy {r.headers.get('referrer-policy')}")
                    policies = r.headers.get_list("content-security-policy")
                    if r.headers.get("content-type", "").startswith("text/html"):
                        seen["page"] += 1
                        if not policies or directives(policies[-1]) != expected_page:
                            wrong.append(f"{where}: page policy {policies}")
                    else:
                        seen["other"] += 1
                        if not policies or policies[-1] != NON_PAGE_POLICY:
                            wrong.append(f"{where}: policy {policies}")
    assert not wrong, "\n".join(wrong[:40])
    # The walk reached pages and JSON alike (a walk that met only 404s would prove little).
    assert seen["page"] >= 40 and seen["other"] >= 200, seen


def test_the_real_pages_are_pages_with_the_policy(staff):
    """Pages a person reads, each answering 200 as text/html with the page policy."""
    pages = {"student": ["/", "/assignments/toy", "/submissions/1"],
             "instructor": ["/staff", "/staff/submissions", "/staff/submissions/1",
                            "/staff/operations", "/staff/people", "/staff/lti",
                            "/staff/regrade-requests", "/staff/audit"],
             "anonymous": ["/login"]}
    for caller, paths in pages.items():
        for path in paths:
            r = staff.clients[caller].get(path, headers={"accept": "text/html"})
            assert r.status_code == 200, (caller, path, r.status_code)
            assert r.headers["content-type"].startswith("text/html"), path
            policy = directives(r.headers["content-security-policy"])
            assert policy["script-src"] == ["'self'"] and policy["frame-ancestors"] == [
                "'self'", *CANVAS], path
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["referrer-policy"] == "same-origin"
    # JSON answers: nosniff and the locked-down policy.
    me = staff.svc.client.get("/api/v1/me", headers=staff.svc.auth("alice"))
    assert me.status_code == 200 and me.headers["content-type"] == "application/json"
    assert me.headers["x-content-type-options"] == "nosniff"
    assert me.headers["content-security-policy"] == NON_PAGE_POLICY
    refused = staff.clients["student"].get("/staff/submissions",
                                           headers={"accept": "text/html"})
    assert refused.status_code == 403 and "frame-ancestors" in refused.headers[
        "content-security-policy"]


def test_the_api_docs_page_is_served_from_the_service_under_the_page_policy(staff):
    """Swagger UI comes from the service's static files (vendored from npm), never a CDN, and
    its page has no inline script: it runs under the policy every page has."""
    r = staff.svc.client.get("/api/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", r.text), "an inline script"
    sources = re.findall(r'(?:src|href)="([^"]+)"', r.text)
    assert sources and all(u.startswith("/static/swagger/") for u in sources), sources
    for u in sources:
        asset = staff.svc.client.get(u)
        assert asset.status_code == 200 and len(asset.content) > 300, u
    policy = directives(r.headers["content-security-policy"])
    assert policy["script-src"] == ["'self'"] and policy["frame-ancestors"] == [
        "'self'", *CANVAS]


def test_a_route_with_its_own_policy_keeps_it_and_gets_the_services_beside_it():
    """As the similarity report does: both policies are sent, so browsers enforce both."""
    app = FastAPI()
    own = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

    @app.get("/report")
    def report() -> HTMLResponse:
        return HTMLResponse("<p>report</p>", headers={"Content-Security-Policy": own,
                                                      "Referrer-Policy": "no-referrer"})

    @app.get("/data")
    def data() -> JSONResponse:
        return JSONResponse({"x": 1})

    app.add_middleware(SecurityHeaders, frame_origins=CANVAS)
    client = TestClient(app)
    r = client.get("/report")
    assert r.headers.get_list("content-security-policy") == [own, page_policy(CANVAS)]
    assert r.headers["referrer-policy"] == "no-referrer"  # a stricter choice is kept
    assert client.get("/data").headers.get_list("content-security-policy") == [NON_PAGE_POLICY]


def test_frame_ancestors_come_from_the_registered_platforms_only(tmp_path):
    """No LTI: only the service frames itself. A hostile or malformed registration value can
    add no directive. An invalid [lti] table leaves 'self' and the app still serves."""
    plain = make_service(build_course(tmp_path / "plain"), f"sqlite:///{tmp_path / 'p.sqlite'}")
    try:
        policy = directives(plain.client.get("/login").headers["content-security-policy"])
        assert policy["frame-ancestors"] == ["'self'"]
    finally:
        plain.db.close()

    course = build_course(tmp_path / "bad")
    with open(course / "course.toml", "a") as f:
        f.write('\n[lti]\nprivate_key = "x.pem"\n[[lti.platforms]]\nissuer = "x"\n')
    bad = make_service(course, f"sqlite:///{tmp_path / 'b.sqlite'}")
    try:
        r = bad.client.get("/login")
        assert r.status_code == 200
        assert directives(r.headers["content-security-policy"])["frame-ancestors"] == ["'self'"]
    finally:
        bad.db.close()

    class P:
        def __init__(self, issuer: str, login: str) -> None:
            self.issuer, self.auth_login_url = issuer, login

    hostile = [P("https://lms.example; script-src *", "https://lms.example/auth"),
               P("https://LMS.Example:8443/path?q", "javascript:alert(1)"),
               P("not a url", "http://127.0.0.1:9/x"),
               P("https://a.example 'unsafe-inline'", "https://[::1]:8000/x"),
               P("https://b.example,evil", "data:text/html,x")]
    assert platform_origins(hostile) == ("https://lms.example", "https://lms.example:8443",
                                         "http://127.0.0.1:9", "https://[::1]:8000")
    assert origin_of("https://lms.example;x") is None
    assert origin_of("https://user:pw@lms.example/") == "https://lms.example"


def test_no_template_holds_an_inline_script_or_an_event_handler():
    """The policy would stop them, so the page would break: behaviour lives in static/*.js."""
    inline_script = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
    handler = re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE)
    found = []
    templates = sorted(TEMPLATES.rglob("*.html"))
    assert len(templates) >= 20
    for path in templates:
        text = path.read_text()
        for rule, what in ((inline_script, "inline <script>"), (handler, "on*= handler"),
                           (re.compile(r"javascript:", re.IGNORECASE), "javascript: URL")):
            for m in rule.finditer(text):
                line = text.count("\n", 0, m.start()) + 1
                found.append(f"{path.relative_to(TEMPLATES)}:{line}: {what}")
    assert not found, "\n".join(found)
    # The test can fail: the exam page held both before its script moved to static/pages.js.
    assert inline_script.search("<script>var x;</script>")
    assert handler.search('<form onsubmit="return confirm(1)">')
