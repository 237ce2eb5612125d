"""The TA pages' content: the submissions filter, hidden tests shown to staff only, student
files highlighted and escaped, the diff against the release stub, regrades in the low-priority
lane showing what changed, overrides that need a comment and are audited, the regrade request
thread, operations, staff invitations and the roster upload. Submissions are graded for real
(the process sandbox, a worker in this process)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from autograder.service import queue, staff_views
from autograder.service.models import PRIORITY_REGRADE, GradingJob, WorkerHeartbeat
from tests.service.conftest import CORRECT, WRONG, build_course
from tests.service.staff_support import CSRF, StaffService, make_staff_service

UTC = dt.timezone.utc
SCRIPT = b"<script>alert('pwned')</script>"
ALICE_FILE = WRONG + b"\n# " + SCRIPT + b"\n"
STUB = "def double(x):\n    raise NotImplementedError\n"


@pytest.fixture(scope="module")
def staff(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StaffService]:
    """alice (wrong, with a <script> in a comment) and bob (correct) submitted late to toy
    (due 2020); bob has an extension, so his submission is on time; both graded."""
    root = tmp_path_factory.mktemp("staffpages")
    course = build_course(root / "course", due="2020-01-01T00:00:00")
    (course / "release/toy").mkdir(parents=True)
    (course / "release/toy/toy.py").write_text(STUB)
    out = make_staff_service(course, f"sqlite:///{root / 'service.sqlite'}")
    assert out.svc.submit("alice", ALICE_FILE).status_code == 202
    assert out.svc.submit("bob", CORRECT).status_code == 202
    out.db.gb.grant_extension("bob", "toy", due=dt.datetime(2031, 1, 1, tzinfo=UTC),
                              reason="medical", granted_by="prof@x.edu")
    assert out.grade_all() == 2
    yield out
    out.db.close()


def _id(staff: StaffService, student: str) -> int:
    rows = staff_views.submission_rows(staff.db, staff_views.SubmissionFilter(student=student))
    return rows[-1]["id"]


def _students_in(html: str) -> set[str]:
    return set(re.findall(r'href="/staff/submissions/\d+">(\w+)</a>', html))


def test_submissions_filter(staff):
    ta = staff.clients["ta"]
    page = ta.get("/staff/submissions").text
    assert _students_in(page) == {"alice", "bob"}
    assert _students_in(ta.get("/staff/submissions?student=ali").text) == {"alice"}
    assert _students_in(ta.get("/staff/submissions?late=late").text) == {"alice"}
    assert _students_in(ta.get("/staff/submissions?late=on_time").text) == {"bob"}
    assert _students_in(ta.get("/staff/submissions?score_min=1").text) == {"bob"}
    assert _students_in(ta.get("/staff/submissions?score_max=0.5&assignment=toy").text) == {"alice"}
    assert _students_in(ta.get("/staff/submissions?state=queued").text) == set()
    assert _students_in(ta.get("/staff/submissions?state=graded").text) == {"alice", "bob"}
    # HTMX asks for the table alone when a filter changes
    fragment = ta.get("/staff/submissions?student=bob",
                      headers={"HX-Request": "true", "HX-Target": "results"}).text
    assert "<html" not in fragment and _students_in(fragment) == {"bob"}
    bad = ta.get("/staff/submissions?score_min=lots")
    assert bad.status_code == 200 and "is not a number" in bad.text
    api = ta.get("/api/v1/staff/submissions?late=late").json()
    assert [r["student"] for r in api] == ["alice"] and api[0]["late_days"] > 0


def test_hidden_tests_are_shown_to_staff_only(staff):
    sid = _id(staff, "alice")
    page = staff.clients["grader"].get(f"/staff/submissions/{sid}").text
    for canary in ("CANARYHIDDENNAME", "CANARYHIDDENMESSAGE", "CANARYHIDDENOUTPUT"):
        assert canary in page
    student_page = staff.clients["student"].get(f"/submissions/{sid}").text
    assert "CANARYHIDDEN" not in student_page
    assert "test_double" in student_page


def test_student_files_are_highlighted_and_escaped(staff):
    sid = _id(staff, "alice")
    page = staff.clients["grader"].get(f"/staff/submissions/{sid}").text
    assert SCRIPT.decode() not in page, "a <script> from a student's file reached the page"
    assert "&lt;script&gt;alert(" in page
    code = page.split('aria-label="toy.py with syntax highlighting"')[1].split("</table>")[0]
    assert 'class="highlight"' in code and '<span class="k">def</span>' in code


def test_diff_against_the_release_stub(staff):
    sid = _id(staff, "alice")
    side = staff.clients["grader"].get(f"/staff/submissions/{sid}").text
    assert "release stub toy.py" in side and 'class="diff_add"' in side
    assert "raise&nbsp;NotImplementedError" in side  # the stub's line, shown as removed
    unified = staff.clients["grader"].get(f"/staff/submissions/{sid}?diff=unified").text
    assert '<span class="del">-    raise NotImplementedError</span>' in unified
    assert '<span class="add">+    return x + 2 + 1</span>' in unified
    assert "+# &lt;script&gt;" in unified


def test_override_needs_a_comment_and_is_audited(staff):
    sid = _id(staff, "alice")
    ta = staff.clients["ta"]
    refused = ta.post(f"/staff/submissions/{sid}/override",
                      data={"test": "test_public.py::test_double", "score": "1", "comment": " "})
    assert refused.status_code == 303 and "error=" in refused.headers["location"]
    assert "comment" in ta.get(refused.headers["location"]).text
    assert not [e for e in staff.db.gb.audit(student="alice") if "override" in e.action]
    ok = ta.post(f"/staff/submissions/{sid}/override",
                 data={"test": "test_public.py::test_double", "score": "1",
                       "comment": "off by one in the <b>spec</b>"})
    assert ok.status_code == 303 and "flash=" in ok.headers["location"]
    page = ta.get(f"/staff/submissions/{sid}").text
    assert "off by one in the &lt;b&gt;spec&lt;/b&gt;" in page
    audit = ta.get("/staff/audit?student=alice").text
    row = audit.split('<tbody>')[1]
    assert "ta@x.edu" in row and "alice" in row and "test_double" in row
    assert "off by one in the &lt;b&gt;spec&lt;/b&gt;" in row
    # graders may override too, but not read the audit log
    assert staff.clients["grader"].get("/staff/audit").status_code == 403


def test_regrade_after_a_test_fix_shows_what_changed(staff):
    """Fix the hidden test of CANARYHIDDENNAME (double(5) == 10), regrade the assignment:
    bob's score goes up by that test's point; a student's new submission goes first."""
    hidden = staff.svc.settings.course_root / "solutions/toy/tests/test_hidden.py"
    original = hidden.read_text()
    fixed = original.replace("def test_CANARYHIDDENNAME(student):\n"
                             "    student.shout(\"CANARYHIDDENOUTPUT\")  # a hidden input the "
                             "student's code prints: the test's output\n"
                             "    assert student.double(5) == 11",
                             "def test_CANARYHIDDENNAME(student):\n"
                             "    assert student.double(5) == 10")
    assert fixed != original
    hidden.write_text(fixed)
    try:
        bob = _id(staff, "bob")
        before = staff_views.submission_detail(staff.svc.client.app.state.service, bob)["score"]
        r = staff.clients["ta"].post("/staff/regrades", data={"assignment": "toy",
                                                              "reason": "fixed hidden test"})
        assert r.status_code == 303 and r.headers["location"].startswith("/staff/regrades/")
        batch_url = r.headers["location"]
        # a student's submission made now is claimed before the regrades
        assert staff.svc.submit("carol", CORRECT).status_code == 202
        with staff.db.read() as s:
            lanes = {j.priority for j in s.scalars(sa.select(GradingJob).where(
                GradingJob.state == "queued"))}
        assert PRIORITY_REGRADE in lanes
        first = queue.claim(staff.db, "probe")
        assert first is not None and first.identity.student == "carol"
        queue.release(staff.db, first.job_id, first.token)
        pending = staff.clients["ta"].get(batch_url).text
        assert "still to grade" in pending and 'hx-trigger="every 2s"' in pending
        staff.grade_all()
        page = staff.clients["ta"].get(batch_url).text
        assert "All graded." in page and "hx-trigger" not in page
        after = staff_views.submission_detail(staff.svc.client.app.state.service, bob)["score"]
        assert after == before + 1
        row = page.split(f'href="/staff/submissions/{bob}">bob</a>')[1].split("</tr>")[0]
        assert f"{before:g} / 4" in row and f"{after:g} / 4" in row
        assert "test_CANARYHIDDENNAME</span> 0 → 1" in row
        detail = staff.clients["grader"].get(f"/staff/submissions/{bob}").text
        assert f"{before:g} / 4</span> → <span class=\"up\">{after:g} / 4" in detail
    finally:
        hidden.write_text(original)


def test_regrade_request_thread(staff, monkeypatch):
    sid = _id(staff, "alice")
    student = staff.clients["student"]
    page = student.get(f"/submissions/{sid}").text
    assert "Ask staff" in page
    # only a test the student can see
    hidden = student.post(f"/submissions/{sid}/regrade-request",
                          data={"csrf_token": CSRF, "test": "test_hidden.py::test_CANARYHIDDENNAME", "body": "?"})
    assert hidden.status_code == 422 and "CANARYHIDDEN" not in hidden.text
    asked = student.post(f"/submissions/{sid}/regrade-request",
                         data={"csrf_token": CSRF, "test": "test_public.py::test_double",
                               "body": "my double is <i>right</i>"})
    assert asked.status_code == 303
    again = student.post(f"/submissions/{sid}/regrade-request",
                         data={"csrf_token": CSRF, "test": "test_public.py::test_double", "body": "again"})
    assert again.status_code == 422 and "already asked" in again.text
    grader = staff.clients["grader"]
    listing = grader.get("/staff/regrade-requests").text
    rid = int(re.search(r'/staff/regrade-requests/(\d+)', listing).group(1))
    thread = grader.get(f"/staff/regrade-requests/{rid}").text
    assert "my double is &lt;i&gt;right&lt;/i&gt;" in thread
    r = grader.post(f"/staff/regrade-requests/{rid}/reply",
                    data={"body": "It returns x + 3; see the message.", "resolve": "1"})
    assert r.status_code == 303
    assert "resolved" in grader.get(f"/staff/regrade-requests/{rid}").text
    assert f"/staff/regrade-requests/{rid}" not in grader.get("/staff/regrade-requests").text
    mine = student.get(f"/submissions/{sid}").text
    assert "It returns x + 3" in mine and "grader@x.edu (staff)" in mine
    assert any(e.action == "regrade request resolved" for e in staff.db.gb.audit("alice"))
    # another student cannot post to alice's attempt (404, as for reading it)
    other = staff.clients["anonymous"].post(
        f"/submissions/{sid}/regrade-request", headers=staff.svc.auth("bob"),
        data={"csrf_token": CSRF, "test": "test_public.py::test_double", "body": "x"})
    assert other.status_code == 404
    assert len(staff_views.regrade_requests(staff.db, submission_id=sid)) == 1
    # the window the course sets: closed
    monkeypatch.setattr(staff_views, "regrade_request_days", lambda config: 0.0)
    late = staff_views.request_window(staff.db, sid)[1]
    assert late is not None and late < dt.datetime.now(UTC)
    closed = student.post(f"/submissions/{sid}/regrade-request",
                          data={"csrf_token": CSRF, "test": "test_public.py::test_double", "body": "late"})
    assert closed.status_code == 422 and "closed on" in closed.text


def test_regrade_request_days_is_read_from_course_toml():
    class Config:
        service = {"regrade_request_days": 3}

    assert staff_views.regrade_request_days(Config()) == 3.0
    assert staff_views.regrade_request_days(object()) == staff_views.DEFAULT_REGRADE_REQUEST_DAYS
    Config.service = {"regrade_request_days": "a week"}
    with pytest.raises(Exception, match="regrade_request_days"):
        staff_views.regrade_request_days(Config())


def test_operations_page(staff):
    ta = staff.clients["ta"]
    ops = ta.get("/api/v1/staff/operations").json()
    assert {l["lane"] for l in ops["lanes"]} >= {"cpu", "gpu"}
    phases = {p["phase"]: p for p in ops["phases"]}
    assert set(phases) == {"queued", "preparing", "running", "recording"}
    assert all(phases[p]["count"] >= 2 and phases[p]["p95_s"] >= phases[p]["p50_s"]
               for p in phases)
    assert phases["running"]["p50_s"] > 0
    now = dt.datetime.now(UTC)
    with staff.db.write() as s:
        s.add(WorkerHeartbeat(name="slow", lanes="cpu", started_at=now,
                              heartbeat_at=now - dt.timedelta(seconds=60), jobs_done=0))
        s.add(WorkerHeartbeat(name="dead", lanes="gpu", started_at=now,
                              heartbeat_at=now - dt.timedelta(seconds=300), jobs_done=0))
    workers = {w["name"]: w["level"] for w in ta.get("/api/v1/staff/operations").json()["workers"]}
    assert workers["slow"] == "warning" and workers["dead"] == "critical"
    assert workers["test-worker"] == "ok"
    page = ta.get("/staff/operations").text
    assert 'level-critical">critical' in page and "p95" in page
    assert staff.clients["grader"].get("/staff/operations").status_code == 403


def test_percentiles_and_levels():
    assert staff_views.percentile([], 50) is None
    assert staff_views.percentile([3, 1, 2], 50) == 2
    assert staff_views.percentile(list(range(1, 101)), 95) == 95
    assert staff_views.heartbeat_level(29) == "ok"
    assert staff_views.heartbeat_level(31) == "warning"
    assert staff_views.heartbeat_level(121) == "critical"
    assert staff_views.heartbeat_level(None) == "critical"


def test_extensions_and_accommodations_pages(staff):
    ta = staff.clients["ta"]
    r = ta.post("/staff/extensions", data={"student": "carol", "assignment": "toy",
                                           "days": "2", "reason": "flu"})
    assert r.status_code == 303 and "flash=" in r.headers["location"]
    assert "carol" in ta.get("/staff/extensions").text
    r = ta.post("/staff/extensions", data={"student": "carol", "assignment": "toy", "days": "2"})
    assert "error=" in r.headers["location"]
    r = ta.post("/staff/accommodations", data={"student": "carol", "time_factor": "1.5",
                                               "extra_minutes": "10", "reason": "letter"})
    assert r.status_code == 303 and "flash=" in r.headers["location"]
    assert "× 1.5" in ta.get("/staff/accommodations").text
    bad = ta.post("/staff/accommodations", data={"student": "carol", "time_factor": "0.5",
                                                 "reason": "x"})
    assert "error=" in bad.headers["location"]
    actions = {e.action for e in staff.db.gb.audit(student="carol")}
    assert any("extension" in a for a in actions) and any("accommodation" in a for a in actions)


def test_instructor_invites_staff_and_imports_the_roster(staff):
    prof = staff.clients["instructor"]
    r = prof.post("/staff/people/invite", data={"email": "new.ta@x.edu", "role": "grader"})
    assert r.status_code == 200
    link = re.search(r'value="(http://[^"]+/invite/[^"]+)"', r.text).group(1)
    token = link.rsplit("/", 1)[1]
    assert staff.clients["anonymous"].get(f"/invite/{token}").status_code == 200
    assert ("new.ta@x.edu", "grader") in {(m.email, m.role) for m in staff.db.gb.staff()}
    assert "error=" in prof.post("/staff/people/invite",
                                 data={"email": "not an email", "role": "ta"}).headers["location"]
    csv = b"id,name,email,section\ndave,Dave D,dave@x.edu,C\n"
    r = prof.post("/staff/people/roster", files={"roster": ("roster.csv", csv, "text/csv")})
    assert r.status_code == 303 and "1+added" in r.headers["location"]
    assert "dave" in {s.student_id for s in staff.db.gb.students()}
    bad = prof.post("/staff/people/roster",
                    files={"roster": ("roster.csv", b"who,what\n1,2\n", "text/csv")})
    assert bad.status_code == 303 and "error=" in bad.headers["location"]
    # TAs cannot invite
    assert staff.clients["ta"].post("/staff/people/invite",
                                    data={"email": "x@x.edu", "role": "ta"}).status_code == 403


def test_staff_navigation_follows_the_role(staff):
    grader_nav = staff.clients["grader"].get("/staff").text
    assert 'href="/staff/submissions"' in grader_nav
    assert 'href="/staff/operations"' not in grader_nav
    prof_nav = staff.clients["instructor"].get("/staff").text
    assert 'href="/staff/operations"' in prof_nav and 'href="/staff/people"' in prof_nav


def test_cli_staff_invite(tmp_path: Path, sqlite_url: str):
    from click.testing import CliRunner

    from autograder.cli import main
    from autograder.service.app import open_database
    from autograder.service.auth import accept_invitation
    from tests.service.conftest import settings_for

    course = build_course(tmp_path / "course")
    runner = CliRunner()
    out = runner.invoke(main, ["staff", "invite", "ta2@x.edu", "--role", "ta", "--course",
                               str(course), "--db", sqlite_url])
    assert out.exit_code == 0, out.output
    token = out.output.strip().rsplit("/invite/", 1)[1]
    db = open_database(settings_for(course, sqlite_url))
    try:
        user_id = accept_invitation(db, token, "a long password")
        assert ("ta2@x.edu", "ta") in {(m.email, m.role) for m in db.gb.staff()}
        assert user_id > 0
    finally:
        db.close()
    bad = runner.invoke(main, ["staff", "invite", "nobody", "--role", "ta", "--course",
                               str(course), "--db", sqlite_url])
    assert bad.exit_code == 1 and "not an e-mail address" in bad.output
    assert "Traceback" not in bad.output


def test_staff_queries_on_both_databases(course, db_url):
    """The list, regrades, requests and operations queries on SQLite and PostgreSQL (no
    grading: queued work is enough for each query to run)."""
    staff = make_staff_service(course, db_url)
    try:
        assert staff.svc.submit("alice", WRONG).status_code == 202
        assert staff.svc.submit("bob", CORRECT).status_code == 202
        rows = staff_views.submission_rows(staff.db, staff_views.SubmissionFilter(
            assignment="toy", student="o", state="queued", late="on_time"))
        assert [r["student"] for r in rows] == ["bob"]
        batch = staff_views.request_regrades(staff.db, [rows[0]["id"]], by="ta", reason="x")
        assert [r["state"] for r in staff_views.regrade_changes(staff.db, batch=batch)] == ["queued"]
        assert staff_views.regrade_requests(staff.db, state="open") == []
        ops = staff_views.operations(staff.db)
        cpu = next(lane for lane in ops["lanes"] if lane["lane"] == "cpu")
        assert cpu == {"lane": "cpu", "students": 2, "regrades": 1, "running": 0}
        assert ops["oldest"]["student"] == "alice"
        listing = staff.clients["ta"].get("/staff/submissions?student=bob")
        assert listing.status_code == 200 and "bob" in listing.text
    finally:
        staff.db.close()


def test_staff_of_the_gradebook_get_their_role_when_the_service_opens(course, sqlite_url):
    from autograder.service.models import ServiceUser
    from tests.service.conftest import open_service_db

    db = open_service_db(course, sqlite_url)
    db.gb.add_staff("pat@x.edu", "grader")
    db.close()
    db = open_service_db(course, sqlite_url)
    try:
        db.gb.add_staff("pat@x.edu", "ta")  # promoted: the next start syncs the role
        with db.read() as s:
            assert s.query(ServiceUser).filter_by(login="pat@x.edu").one().role == "grader"
    finally:
        db.close()
    db = open_service_db(course, sqlite_url)
    try:
        with db.read() as s:
            user = s.query(ServiceUser).filter_by(login="pat@x.edu").one()
        assert (user.role, user.student_pk) == ("ta", None)
    finally:
        db.close()
