"""The permission matrix: every staff route registered in the app (introspected, so routes other
modules add are covered too) against every caller: each staff role, a student, a user of another
course, and nobody. A route is refused (401 without login, 403 otherwise) exactly when the one
permission table says so."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.routing import APIRoute

from autograder.service.permissions import (PERMISSIONS, ROLES, STAFF_ROLES, action_of, can,
                                            iter_routes)
from autograder.service.auth import Principal
from tests.service.staff_support import CALLERS, StaffService, make_staff_service

STAFF_PREFIXES = ("/staff", "/api/v1/staff")


@pytest.fixture(scope="module")
def staff(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StaffService]:
    from tests.service.conftest import build_course

    root = tmp_path_factory.mktemp("perm")
    course = build_course(root / "course")
    out = make_staff_service(course, f"sqlite:///{root / 'service.sqlite'}")
    yield out
    out.db.close()


def staff_routes(app) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    """(route, method, action) for every staff route; fails on one without a declared action."""
    out = []
    for path, route in iter_routes(app.routes):
        if not path.startswith(STAFF_PREFIXES):
            continue
        assert isinstance(route, APIRoute), f"{path}: a staff path must be an API route"
        actions = [a for d in route.dependant.dependencies if (a := action_of(d.call))]
        assert len(actions) == 1, (f"{path} must declare exactly one permission with "
                                   f"Depends(require(...)); found {actions}")
        for method in sorted(route.methods - {"HEAD"}):
            out.append((path, method, actions[0]))
    return out


def concrete(path: str) -> str:
    """The route's path with its parameters filled (1 for ids, a word otherwise)."""
    return re.sub(r"\{(\w+)(:[^}]*)?\}",
                  lambda m: "1" if m.group(1).endswith("id") else "x", path)


def test_every_action_is_known_and_students_have_none():
    assert ROLES == ("student", "grader", "ta", "instructor")
    for action, roles in PERMISSIONS.items():
        assert roles <= STAFF_ROLES, action
        assert "instructor" in roles, f"instructors may do everything: {action}"
    with pytest.raises(KeyError):
        can(None, "no.such.action")


def test_graders_only_grade_and_tas_run_the_course():
    def who(role: str) -> Principal:
        return Principal(1, "x", role, None, "session")

    grader_may = {a for a in PERMISSIONS if can(who("grader"), a)}
    assert grader_may == {"submissions.view", "grades.override", "regrade_requests.answer"}
    ta_may = {a for a in PERMISSIONS if can(who("ta"), a)}
    assert {"submissions.regrade", "extensions.manage", "accommodations.manage",
            "operations.view", "similarity.run"} <= ta_may
    assert not ta_may & {"staff.invite", "roster.sync", "gradebook.export", "lti.passback.view"}
    assert all(can(who("instructor"), a) for a in PERMISSIONS)
    assert not any(can(who("student"), a) for a in PERMISSIONS)
    assert not any(can(None, a) for a in PERMISSIONS)


def test_the_app_has_the_ta_pages(staff):
    paths = {p for p, _, _ in staff_routes(staff.svc.client.app)}
    for path in ("/staff/submissions", "/staff/submissions/{submission_id}",
                 "/staff/operations", "/staff/audit", "/staff/regrade-requests",
                 "/staff/extensions", "/staff/accommodations", "/staff/people"):
        assert path in paths


def test_permission_matrix(staff):
    """Each caller against each staff route and method."""
    app = staff.svc.client.app
    routes = staff_routes(app)
    assert len(routes) >= 20
    wrong = []
    for path, method, action in routes:
        url = concrete(path)
        for caller in CALLERS:
            response = staff.clients[caller].request(method, url)
            code = response.status_code
            if caller == "anonymous":
                ok = code == 401
            elif caller in ("student", "other_course"):
                ok = code == 403
            elif caller in PERMISSIONS[action]:
                ok = code not in (401, 403) and code < 500
            else:
                ok = code == 403
            if not ok:
                wrong.append(f"{method} {url} as {caller} ({action}): {code} "
                             f"{response.text[:120]}")
    assert not wrong, "\n".join(wrong)


def test_a_browser_without_a_session_is_sent_to_the_login_page(staff):
    response = staff.clients["anonymous"].get("/staff/submissions?assignment=toy",
                                              headers={"accept": "text/html"})
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/staff/submissions%3Fassignment%3Dtoy"


def test_a_student_bearer_token_is_refused(staff):
    response = staff.clients["anonymous"].get("/api/v1/staff/submissions",
                                              headers=staff.svc.auth("bob"))
    assert response.status_code == 403
    assert "staff" in response.json()["detail"]


def test_a_cookie_post_without_the_csrf_token_is_refused(staff):
    client = staff.clients["instructor"]
    response = client.post("/staff/people/invite", data={"email": "new@x.edu", "role": "ta"},
                           headers={"X-CSRF-Token": ""})
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert "new@x.edu" not in {m.email for m in staff.db.gb.staff()}


def test_a_browser_refused_a_staff_page_gets_a_page_scripts_get_json(staff):
    page = staff.clients["student"].get("/staff/submissions", headers={"accept": "text/html"})
    assert page.status_code == 403 and page.headers["content-type"].startswith("text/html")
    assert "You may not open this page" in page.text and "<script" not in page.text
    script = staff.clients["student"].get("/staff/submissions")
    assert script.status_code == 403 and "detail" in script.json()
