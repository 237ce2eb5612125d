"""LTI 1.3 against a fake LMS on 127.0.0.1 (tests/support/fake_lms.py): the OIDC launch logs
people in with the right roles and refuses forged id_tokens; grade passback sends the counted
score once, survives 429, 500 and a dropped connection, and never sends a score twice; the
roster sync adds the LMS's members; the status page shows each student's state to instructors
and refuses students."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from fastapi.testclient import TestClient

from autograder.results import GradingResult, Outcome, SubmissionIdentity, TestResult
from autograder.service.lti.config import generate_private_key, load_lti, public_jwk
from autograder.service.lti.models import LtiPassback, LtiUser
from autograder.service.lti.passback import refresh, schedule_passback, send_pending
from autograder.service.lti.people import service_role
from autograder.service.models import ServiceUser
from gradebook import models as gm
from tests.service.conftest import CORRECT, Service, build_course, make_service, open_service_db
from tests.support.fake_lms import (CONTENT_DEVELOPER, INSTRUCTOR, LEARNER, MENTOR,
                                    TEACHING_ASSISTANT, FakeLMS, auto_post_form, new_key)

UTC = dt.timezone.utc


@dataclass
class Lti:
    svc: Service
    lms: FakeLMS
    course: Path

    @property
    def db(self):  # type: ignore[no-untyped-def]
        return self.svc.db

    def cfg(self):  # type: ignore[no-untyped-def]
        return load_lti(self.course, self.db.gb.config)

    def browser(self) -> TestClient:
        """A browser of its own (its own cookies)."""
        return TestClient(self.svc.client.app)

    def login(self, browser: TestClient, login_hint: str, link: str) -> dict[str, str]:
        """Third-party initiated login; returns the OIDC auth request's parameters."""
        r = browser.get("/lti/login", params={
            "iss": self.lms.url, "login_hint": login_hint, "lti_message_hint": link,
            "target_link_uri": "http://testserver/lti/launch", "client_id": self.lms.client_id,
            "lti_deployment_id": self.lms.deployment_id}, follow_redirects=False)
        assert r.status_code == 302, r.text
        location = r.headers["location"]
        assert location.startswith(self.lms.url + "/auth?")
        return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}

    def launch(self, login_hint: str, link: str = "rl-toy",
               browser: TestClient | None = None) -> tuple[TestClient, httpx.Response]:
        """The whole flow, as a browser: login, the LMS's auth endpoint, the id_token POST."""
        browser = browser or self.browser()
        auth = self.login(browser, login_hint, link)
        page = httpx.get(f"{self.lms.url}/auth", params=auth)
        assert page.status_code == 200, page.text
        action, fields = auto_post_form(page.text)
        assert action.endswith("/lti/launch")
        return browser, browser.post("/lti/launch", data=fields, follow_redirects=False)

    def record(self, student: str, passed: int, *, attempt_files: bytes = CORRECT) -> int:
        """A graded result of ``toy`` for ``student`` in the gradebook: ``passed`` of its four
        1-point tests; returns the submission id."""
        received = dt.datetime.now(UTC)
        sub = self.db.gb.record_submission(student, "toy", {"toy.py": attempt_files + 
                                                             str(time.time()).encode()}, received)
        tests = tuple(TestResult(f"test_{i}", 1.0 if i < passed else 0.0, 1.0,
                                 Outcome.PASSED if i < passed else Outcome.FAILED)
                      for i in range(4))
        result = GradingResult(assignment="toy", submission=str(sub.id), tests=tests,
                               backend="process", identity=sub.identity,
                               run_id=f"run-{sub.id}")
        self.db.gb.record_result(sub.id, result, result.run_id)
        return sub.id

    def passback(self, submission_id: int) -> None:
        thread = schedule_passback(self.db, self.course, submission_id)
        assert thread is not None
        thread.join(60)
        assert not thread.is_alive()


def _lti_table(lms: FakeLMS) -> str:
    p = lms.platform_config()
    return (
        '\n[lti]\nprivate_key = "secrets/lti.pem"\n'
        '[lti.passback]\nattempts = 5\nbackoff_s = 0.05\nmax_wait_s = 3\ntimeout_s = 5\n'
        '[[lti.platforms]]\n'
        + "".join(f"{k} = {json.dumps(v)}\n" for k, v in p.items()))


def _setup(tmp_path: Path, url: str) -> Iterator[Lti]:
    course = build_course(tmp_path / "course")
    pem = generate_private_key(course / "secrets" / "lti.pem")
    with FakeLMS(public_jwk(pem)) as lms:
        with open(course / "course.toml", "a") as f:
            f.write(_lti_table(lms))
        lms.add_user("alice", roles=[LEARNER], name="Alice A", email="alice@x.edu",
                     sourcedid="alice")
        lms.add_user("bob", roles=[LEARNER], name="Bob B", email="BOB@x.edu")
        lms.add_user("prof", roles=[INSTRUCTOR], name="Prof P", email="prof@x.edu")
        lms.add_user("tara", roles=[INSTRUCTOR, TEACHING_ASSISTANT], name="Tara T",
                     email="tara@x.edu")
        lms.add_link("rl-toy", title="Toy", custom={"assignment": "toy"}, with_lineitem="toy")
        svc = make_service(course, url)
        try:
            yield Lti(svc, lms, course)
        finally:
            svc.db.close()


@pytest.fixture
def lti(tmp_path: Path) -> Iterator[Lti]:
    """The course and the fake LMS on SQLite (the flow once on PostgreSQL: lti_both)."""
    yield from _setup(tmp_path, f"sqlite:///{tmp_path / 'lti.sqlite'}")


@pytest.fixture
def lti_both(tmp_path: Path, db_url: str) -> Iterator[Lti]:
    yield from _setup(tmp_path, db_url)


def _user(lti: Lti, sub: str) -> ServiceUser:
    with lti.db.read() as s:
        return s.scalar(sa.select(ServiceUser).join(LtiUser, LtiUser.user_id == ServiceUser.id)
                        .where(LtiUser.sub == sub))


def _rows(lti: Lti) -> list[LtiPassback]:
    with lti.db.read() as s:
        return list(s.scalars(sa.select(LtiPassback).order_by(LtiPassback.id)))


def _csrf(browser: TestClient, page: str = "/staff/lti") -> str:
    r = browser.get(page)
    assert r.status_code == 200, r.text
    return re.search(r'name="csrf_token" value="([^"]+)"', r.text).group(1)  # type: ignore[union-attr]


# -- launch ------------------------------------------------------------------------------------

def test_learner_launch_logs_in_the_roster_student_on_the_linked_assignment(lti):
    browser, r = lti.launch("alice")
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/assignments/toy"
    me = browser.get("/api/v1/me")
    assert me.status_code == 200 and me.json()["id"] == "alice", me.text
    user = _user(lti, "lms-alice")
    assert (user.login, user.role) == ("alice", "student")
    assert browser.get("/staff/lti").status_code == 403


def test_a_learner_is_matched_by_email_in_any_case(lti):
    browser, r = lti.launch("bob")  # no sourcedid; BOB@x.edu in the LMS, bob@x.edu here
    assert r.status_code == 303
    assert browser.get("/api/v1/me").json()["id"] == "bob"


def test_an_unknown_learner_joins_the_roster(lti):
    lti.lms.add_user("dave", roles=[LEARNER], name="Dave <D>", email="dave@x.edu")
    browser, r = lti.launch("dave")
    assert r.status_code == 303
    assert browser.get("/api/v1/me").json()["id"] == "dave@x.edu"
    assert "dave@x.edu" in {s.student_id for s in lti.db.gb.students()}


def test_instructor_and_ta_launch_with_their_roles(lti):
    prof, r = lti.launch("prof")
    assert r.status_code == 303 and r.headers["location"].startswith("/staff/lti")
    assert _user(lti, "lms-prof").role == "instructor"
    page = prof.get("/staff/lti")
    assert page.status_code == 200 and "LMS grade passback" in page.text
    tara, r = lti.launch("tara")
    assert r.status_code == 303
    assert _user(lti, "lms-tara").role == "ta"  # the TA sub-role wins over Instructor
    assert tara.get("/staff/lti").status_code == 403  # passback is for instructors
    assert {m.email: m.role for m in lti.db.gb.staff()} == {"prof@x.edu": "instructor",
                                                            "tara@x.edu": "ta"}


def test_a_mentor_is_refused_and_a_content_developer_only_grades(lti):
    lti.lms.add_user("mum", roles=[MENTOR], email="mum@x.edu")
    _, r = lti.launch("mum")
    assert r.status_code == 403 and "Mentor" in r.text
    assert "ag_session" not in r.cookies
    lti.lms.add_user("cd", roles=[CONTENT_DEVELOPER], email="cd@x.edu")
    _, r = lti.launch("cd")
    assert r.status_code == 303 and _user(lti, "lms-cd").role == "grader"


def test_role_mapping_reads_context_roles_only():
    inst = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Instructor"
    assert service_role([LEARNER, inst]) == "student"  # Canvas's institution role is ignored
    assert service_role([TEACHING_ASSISTANT]) == "ta"
    assert service_role([INSTRUCTOR]) == "instructor"
    assert service_role(["Learner"]) == "student"  # LTI 1.1 short names
    assert service_role([MENTOR]) is None
    assert service_role([]) is None


# -- forged launches ---------------------------------------------------------------------------

def _forge(lti: Lti, **token_kw) -> tuple[TestClient, httpx.Response]:
    browser = lti.browser()
    auth = lti.login(browser, "alice", "rl-toy")
    user, link = lti.lms.users["alice"], lti.lms.links["rl-toy"]
    token = lti.lms.id_token(user, link, auth["nonce"], **token_kw)
    return browser, browser.post("/lti/launch", data={"id_token": token, "state": auth["state"]},
                                 follow_redirects=False)


def test_a_token_signed_with_another_key_is_refused(lti):
    other_pem, _ = new_key()
    browser, r = _forge(lti, key_pem=other_pem)  # the platform's kid, the wrong key
    assert r.status_code == 403 and "could not be verified" in r.text
    assert "ag_session" not in browser.cookies
    assert browser.get("/api/v1/me").status_code == 401


@pytest.mark.parametrize("forgery", [
    {"aud": "someone-else"},
    {"aud": ["someone-else", FakeLMS.client_id]},
    {"issuer": "http://127.0.0.1:1"},
    {"deployment_id": "deployment-unknown"},
    {"exp_in": -60},
])
def test_a_token_for_another_audience_issuer_deployment_or_expired_is_refused(lti, forgery):
    browser, r = _forge(lti, **forgery)
    assert r.status_code == 403, (forgery, r.status_code, r.text[:300])
    assert "ag_session" not in browser.cookies


def test_a_replayed_nonce_is_refused(lti):
    browser = lti.browser()
    auth = lti.login(browser, "alice", "rl-toy")
    action, fields = auto_post_form(httpx.get(f"{lti.lms.url}/auth", params=auth).text)
    first = browser.post("/lti/launch", data=fields, follow_redirects=False)
    assert first.status_code == 303
    replay = lti.browser()  # an attacker with the captured POST (and even the state cookie)
    replay.cookies.update({k: v for k, v in browser.cookies.items() if k.startswith("lti1p3")})
    again = replay.post("/lti/launch", data=fields, follow_redirects=False)
    assert again.status_code == 403 and "Nonce" in again.text
    # A second token carrying the used nonce is refused as well.
    token = lti.lms.id_token(lti.lms.users["alice"], lti.lms.links["rl-toy"], auth["nonce"])
    third = browser.post("/lti/launch", data={"id_token": token, "state": auth["state"]},
                         follow_redirects=False)
    assert third.status_code == 403


def test_a_launch_without_the_login_state_is_refused(lti):
    auth = lti.login(lti.browser(), "alice", "rl-toy")
    stranger = lti.browser()  # never went through the login: no state cookie
    token = lti.lms.id_token(lti.lms.users["alice"], lti.lms.links["rl-toy"], auth["nonce"])
    r = stranger.post("/lti/launch", data={"id_token": token, "state": auth["state"]},
                      follow_redirects=False)
    assert r.status_code == 403 and "State" in r.text


# -- grade passback ----------------------------------------------------------------------------

def test_passback_sends_the_counted_score_once(lti):
    lti.launch("alice")
    sid = lti.record("alice", passed=3)
    lti.passback(sid)
    assert len(lti.lms.scores) == 1
    score = lti.lms.scores[0]
    assert score["userId"] == "lms-alice"
    assert (score["scoreGiven"], score["scoreMaximum"]) == (3.0, 4.0)
    assert (score["activityProgress"], score["gradingProgress"]) == ("Completed", "FullyGraded")
    assert score["lineitem"] == lti.lms.links["rl-toy"].lineitem
    with lti.db.read() as s:
        recorded = s.scalar(sa.select(gm.GradingRun.recorded_at))
    assert dt.datetime.fromisoformat(score["timestamp"]) == recorded.replace(
        microsecond=recorded.microsecond // 1000 * 1000)
    [row] = _rows(lti)
    assert (row.state, row.sent_score_given, row.attempts) == ("sent", 3.0, 1)
    # The same score again (a regrade that changes nothing): nothing is sent.
    again = lti.record("alice", passed=3)
    assert schedule_passback(lti.db, lti.course, again) is not None
    time.sleep(0.5)
    assert refresh(lti.db) == []
    assert send_pending(lti.db, lti.cfg()).sent == 0
    assert len(lti.lms.scores) == 1 and len(lti.lms.score_calls()) == 1
    # A better score is sent, once.
    lti.passback(lti.record("alice", passed=4))
    assert [s["scoreGiven"] for s in lti.lms.scores] == [3.0, 4.0]
    assert lti.lms.results[(score["lineitem"], "lms-alice")]["scoreGiven"] == 4.0


def test_launch_passback_and_roster_sync_on_both_databases(lti_both):
    lti = lti_both
    browser, r = lti.launch("alice")
    assert r.status_code == 303 and browser.get("/api/v1/me").json()["id"] == "alice"
    lti.lms.fail_next_scores("500")
    lti.passback(lti.record("alice", passed=2))
    lti.passback(lti.record("alice", passed=2))
    assert [(s["userId"], s["scoreGiven"]) for s in lti.lms.scores] == [("lms-alice", 2.0)]
    assert [c.status for c in lti.lms.score_calls()] == [500, 204]
    lti.lms.add_user("erin", roles=[LEARNER], email="erin@x.edu", sourcedid="erin")
    from autograder.service.lti.roster import sync_roster

    report = sync_roster(lti.db, lti.cfg())
    assert report.students_added == ["erin"] and report.staff == {
        "prof@x.edu": "instructor", "tara@x.edu": "ta"}


def test_a_link_without_a_line_item_gets_one_tagged_with_the_assignment(lti):
    lti.lms.lineitems.clear()  # the LMS course has no grade column yet
    lti.lms.add_link("rl-plain", custom={"assignment": "toy"})  # and made none for the link
    lti.launch("alice", "rl-plain")
    [item] = [i for i in lti.lms.lineitems.values() if i.get("resourceLinkId") == "rl-plain"]
    assert (item["tag"], item["scoreMaximum"], item["resourceId"]) == ("toy", 4.0, "toy")
    lti.launch("bob", "rl-plain")  # found by its tag, not made twice
    assert list(lti.lms.lineitems) == [item["id"]]
    lti.passback(lti.record("alice", passed=1))
    assert [(s["lineitem"], s["scoreGiven"]) for s in lti.lms.scores] == [(item["id"], 1.0)]


def test_a_link_naming_no_assignment_opens_the_list_and_tells_staff(lti):
    lti.lms.add_link("rl-typo", custom={"assignment": "toyy"})
    _, r = lti.launch("alice", "rl-typo")
    assert r.status_code == 303 and r.headers["location"] == "/"
    _, r = lti.launch("prof", "rl-typo")
    assert "toyy" in unquote(r.headers["location"]) and "names no assignment" in unquote(
        r.headers["location"])


def test_passback_survives_429_then_500_then_a_dropped_connection(lti):
    lti.launch("alice")
    lti.lms.fail_next_scores("429", "500", "drop")
    lti.passback(lti.record("alice", passed=2))
    calls = lti.lms.score_calls()
    assert [c.status for c in calls] == [429, 500, 0, 204]
    assert calls[1].at - calls[0].at >= 0.95  # Retry-After: 1 honoured
    assert len(lti.lms.scores) == 1 and lti.lms.scores[0]["scoreGiven"] == 2.0
    [row] = _rows(lti)
    assert (row.state, row.attempts, row.error) == ("sent", 4, "")


def test_scheduling_never_waits_for_the_lms(lti):
    lti.launch("alice")
    lti.lms.retry_after = "2"
    lti.lms.fail_next_scores("429")
    sid = lti.record("alice", passed=2)
    started = time.monotonic()
    thread = schedule_passback(lti.db, lti.course, sid)
    assert time.monotonic() - started < 0.5  # the worker goes back to grading at once
    assert thread is not None and thread.is_alive()
    thread.join(30)
    assert [c.status for c in lti.lms.score_calls()] == [429, 204]


def test_passback_gives_up_with_the_reason_and_send_all_tries_again(lti):
    lti.launch("alice")
    lti.lms.fail_next_scores(*["503"] * 5)
    lti.passback(lti.record("alice", passed=1))
    [row] = _rows(lti)
    assert row.state == "failed" and row.attempts == 5
    assert "gave up after 5 tries" in row.error and "HTTP 503" in row.error
    assert lti.lms.scores == []
    prof, _ = lti.launch("prof")
    page = prof.get("/staff/lti")
    assert "failed" in page.text and "gave up after 5 tries" in page.text
    r = prof.post("/staff/lti/send-all", data={"csrf_token": _csrf(prof)},
                  follow_redirects=False)
    assert r.status_code == 303
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not lti.lms.scores:
        time.sleep(0.05)
    assert [s["scoreGiven"] for s in lti.lms.scores] == [1.0]
    time.sleep(0.2)
    assert _rows(lti)[0].state == "sent"


def test_a_refused_score_fails_at_once(lti):
    lti.launch("alice")
    lti.lms.fail_next_scores("403")
    lti.passback(lti.record("alice", passed=1))
    [row] = _rows(lti)
    assert (row.state, row.attempts) == ("failed", 1) and "HTTP 403" in row.error


def test_a_worker_that_records_a_result_schedules_the_passback(lti):
    """The real hook: a grading worker completes the job, and the LMS gets the score."""
    from autograder.service.workers import JobRunner

    lti.launch("alice")
    sub = lti.svc.submit("alice").json()
    runner = JobRunner(lti.svc.settings, lti.db, "lti-worker")
    try:
        assert runner.run_once()
    finally:
        runner.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not lti.lms.scores:
        time.sleep(0.1)
    view = lti.svc.client.get(f"/api/v1/submissions/{sub['id']}", headers=lti.svc.auth("alice"))
    assert view.json()["state"] == "graded"
    # CORRECT passes the public test (1 point) and fails the three hidden ones.
    assert [(s["userId"], s["scoreGiven"], s["scoreMaximum"]) for s in lti.lms.scores] == [
        ("lms-alice", 1.0, 4.0)]


def test_no_lti_no_passback(tmp_path):
    course = build_course(tmp_path / "plain")
    db = open_service_db(course, f"sqlite:///{tmp_path / 'plain.sqlite'}")
    try:
        assert schedule_passback(db, course, 1) is None
    finally:
        db.close()


# -- roster sync (NRPS) ------------------------------------------------------------------------

def test_roster_sync_adds_the_lms_members(lti):
    lti.lms.add_user("erin", roles=[LEARNER], name="Erin E", email="erin@x.edu",
                     sourcedid="erin")
    lti.lms.add_user("gone", roles=[LEARNER], name="Gone G", email="carol@x.edu",
                     status="Inactive")
    lti.lms.add_user("mum", roles=[MENTOR], email="mum@x.edu")
    prof, _ = lti.launch("prof")
    r = prof.post("/staff/lti/roster-sync", data={"csrf_token": _csrf(prof)},
                  follow_redirects=False)
    assert r.status_code == 303, r.text
    assert "Roster synced: 1 students added" in unquote(r.headers["location"])
    students = {s.student_id: s for s in lti.db.gb.students()}
    assert students["erin"].name == "Erin E" and students["erin"].status == "active"
    assert students["carol"].status == "dropped"  # matched by e-mail, inactive in the LMS
    assert {m.email: m.role for m in lti.db.gb.staff()} == {"prof@x.edu": "instructor",
                                                            "tara@x.edu": "ta"}
    assert _user(lti, "lms-erin").login == "erin"
    assert _user(lti, "lms-bob").login == "bob"
    assert _user(lti, "lms-mum") is None
    # Synced students get their scores back without ever launching.
    lti.passback(lti.record("bob", passed=2))
    assert [(s["userId"], s["scoreGiven"]) for s in lti.lms.scores] == [("lms-bob", 2.0)]


def test_roster_sync_is_for_instructors(lti):
    tara, _ = lti.launch("tara")
    r = tara.post("/staff/lti/roster-sync", data={"csrf_token": _csrf(tara, "/staff")},
                  follow_redirects=False)
    assert r.status_code == 403
    assert "erin" not in {s.student_id for s in lti.db.gb.students()}


# -- the status page ---------------------------------------------------------------------------

def test_status_page_lists_each_students_state_and_refuses_students(lti):
    alice, _ = lti.launch("alice")
    lti.launch("bob")
    lti.passback(lti.record("alice", passed=3))
    lti.lms.fail_next_scores("400")
    lti.passback(lti.record("bob", passed=1))
    prof, _ = lti.launch("prof")
    page = prof.get("/staff/lti")
    assert page.status_code == 200
    students = page.text.split("<h2>Students</h2>", 1)[1]
    rows = re.findall(r"<tr>\s*<td>(\w+).*?<span class=\"pill[^\"]*\">(\w+)</span>", students,
                      re.S)
    assert rows == [("alice", "sent"), ("bob", "failed")]
    api = prof.get("/api/v1/staff/lti/passback").json()["passback"]
    assert {(p["student"], p["state"], p["score"]) for p in api} == {
        ("alice", "sent", 3.0), ("bob", "failed", 1.0)}
    assert alice.get("/staff/lti").status_code == 403
    assert alice.get("/api/v1/staff/lti/passback").status_code == 403
    assert alice.post("/staff/lti/send-all").status_code == 403
    assert lti.svc.client.get("/api/v1/staff/lti/passback",
                              headers=lti.svc.auth("carol")).status_code == 403


# -- configuration, keys, schema ---------------------------------------------------------------

def test_jwks_serves_the_public_key_only(lti):
    keys = lti.svc.client.get("/lti/jwks").json()["keys"]
    assert keys == [lti.lms.tool_jwk]
    assert "d" not in keys[0] and "p" not in keys[0]


def test_a_missing_tool_key_is_a_message_for_staff_at_launch_and_jwks_not_a_traceback(lti):
    browser = lti.browser()
    auth = lti.login(browser, "alice", "rl-toy")
    token = lti.lms.id_token(lti.lms.users["alice"], lti.lms.links["rl-toy"], auth["nonce"])
    (lti.course / "secrets" / "lti.pem").unlink()  # deleted after the login, before the launch
    r = browser.post("/lti/launch", data={"id_token": token, "state": auth["state"]},
                     follow_redirects=False)
    assert r.status_code == 500
    assert "LTI is misconfigured" in r.text and "autograder lti keygen" in r.text, r.text
    assert "Traceback" not in r.text
    jwks = lti.svc.client.get("/lti/jwks")
    assert jwks.status_code == 500 and "autograder lti keygen" in jwks.json()["detail"]


def test_bad_lti_config_says_what_to_fix(tmp_path):
    from autograder.config import ConfigError, load_course

    course = build_course(tmp_path / "c")
    with open(course / "course.toml", "a") as f:
        f.write('\n[lti]\nprivate_key = "nope.pem"\n[[lti.platforms]]\nissuer = "x"\n'
                'deployment_ids = []\nauth_login_url = "ftp://x"\nauth_token_url = "http://t"\n'
                'key_set_url = "http://k"\nclientid = "typo"\n')
    with pytest.raises(ConfigError) as err:
        load_lti(course, load_course(course))
    text = str(err.value)
    assert "platforms.0.client_id" in text and "platforms.0.clientid: unknown key" in text
    assert "ftp://x" in text and "deployment_ids" in text
    good = tmp_path / "good"
    build_course(good)
    with open(good / "course.toml", "a") as f:
        f.write('\n[lti]\nprivate_key = "nope.pem"\n[[lti.platforms]]\nissuer = "x"\n'
                'client_id = "c"\ndeployment_ids = ["d"]\nauth_login_url = "http://a"\n'
                'auth_token_url = "http://t"\nkey_set_url = "http://k"\n')
    with pytest.raises(ConfigError, match="autograder lti keygen"):
        load_lti(good, load_course(good)).private_key_pem()


def test_cli_keygen_and_show_config(tmp_path):
    from autograder.cli import main

    course = build_course(tmp_path / "c")
    runner = CliRunner()
    made = runner.invoke(main, ["lti", "keygen", "--course", str(course)])
    assert made.exit_code == 0, made.output
    key = course / "secrets" / "lti-private.pem"
    assert key.stat().st_mode & 0o777 == 0o600
    again = runner.invoke(main, ["lti", "keygen", "--course", str(course)])
    assert again.exit_code == 1 and "exists" in again.output
    missing = runner.invoke(main, ["lti", "show-config", "--course", str(course)])
    assert missing.exit_code == 1 and "no [lti] table" in missing.output
    with open(course / "course.toml", "a") as f:
        f.write('\n[lti]\nconfig_file = "lti.json"\n')
    (course / "lti.json").write_text(json.dumps({
        "private_key": "secrets/lti-private.pem",
        "platforms": [{"issuer": "https://lms.example", "client_id": "c1",
                       "deployment_ids": ["d1"], "auth_login_url": "https://lms.example/a",
                       "auth_token_url": "https://lms.example/t",
                       "key_set_url": "https://lms.example/k"}]}))
    shown = runner.invoke(main, ["lti", "show-config", "--course", str(course), "--url",
                                 "https://grader.example.edu"])
    assert shown.exit_code == 0, shown.output
    assert "https://grader.example.edu/lti/launch" in shown.output
    assert "https://grader.example.edu/lti/jwks" in shown.output
    assert "client id c1" in shown.output and '"kty": "RSA"' in shown.output


def test_migration_0007_matches_the_models(tmp_path, db_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from autograder.service.lti import models as lti_models
    from gradebook.models import Base

    tables = {m.__tablename__ for m in (lti_models.LtiContext, lti_models.LtiLink,
                                        lti_models.LtiUser, lti_models.LtiPassback,
                                        lti_models.LtiLaunchState)}
    db = open_service_db(build_course(tmp_path / "m"), db_url)
    try:
        with db.gb.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, Base.metadata)
            assert tables <= set(conn.dialect.get_table_names(conn))
    finally:
        db.close()
    mine = [d for d in diff if any(
        getattr(getattr(x, "table", None), "name", None) in tables
        or getattr(x, "name", None) in tables or x in tables
        for part in (d if isinstance(d, list) else [d]) for x in part[1:])]
    assert mine == []


def test_an_exam_score_waits_for_staff_to_release_the_results(lti):
    """A passback shows the student a score: an exam's or a quiz's waits for the release."""
    from autograder.service.models import ExamRelease

    lti.launch("alice")
    with lti.db.write() as s:
        s.execute(sa.update(gm.Assignment).where(gm.Assignment.name == "toy")
                  .values(kind="quiz"))
    lti.passback(lti.record("alice", passed=3))
    assert lti.lms.scores == []
    with lti.db.write() as s:
        apk = s.scalar(sa.select(gm.Assignment.id).where(gm.Assignment.name == "toy"))
        s.add(ExamRelease(assignment_pk=apk, released_at=dt.datetime.now(dt.timezone.utc),
                          released_by="prof"))
    refresh(lti.db)
    send_pending(lti.db, lti.cfg())
    assert [s["scoreGiven"] for s in lti.lms.scores] == [3.0]
