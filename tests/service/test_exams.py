"""Timed exams on the grading service, with the service's clock under the test's control (a
``ManualClock`` in the app): starting (terms, password, network list, the same attempt again),
ends_at with accommodations and overrides, work judged on receipt at the end to the second,
the finaliser, what a student sees during and after the exam, the stored variant through a
regrade, one session per student, and the staff's live view, extension and release.

The exam here is a toy (``midterm``: variants ``double`` and ``triple`` of one function) whose
hidden tests carry canary strings, so "never visible during the exam" is checked on every byte.
"""

from __future__ import annotations

import datetime as dt
import textwrap
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from autograder.exams import choose_variant
from autograder.service.models import ExamAttempt, GradingJob
from autograder.service.settings import ManualClock
from tests.service.conftest import build_course, make_service

UTC = dt.timezone.utc
OPENS = dt.datetime(2026, 10, 8, 9, 0, tzinfo=UTC)
CLOSES = dt.datetime(2026, 10, 8, 21, 0, tzinfo=UTC)
SECRET = "test-course-secret"
CANARIES = ("CANARYEXAMHIDDENNAME", "CANARYEXAMHIDDENMESSAGE", "CANARYEXAMHIDDENOUTPUT")
FACTOR = {"double": 2, "triple": 3}


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))


def build_exam_course(root: Path, *, password: str = "", networks: tuple[str, ...] = (),
                      results: str = "after_release", public_visible: bool = True) -> Path:
    """The service test course plus exam ``midterm`` (module answer.py, function ``f``): variant
    ``double`` wants ``2 * x``, ``triple`` wants ``3 * x``; each has a public test (1 point) and
    a hidden test (2 points) whose name, message and output are canaries."""
    build_course(root)
    nets = ", ".join(f'"{n}"' for n in networks)
    _write(root / "assignments/midterm/assignment.toml", f'''
        name = "midterm"
        title = "Midterm"
        kind = "exam"
        points = 3
        modules = ["answer"]

        [exam]
        opens = 2026-10-08T09:00:00
        closes = 2026-10-08T21:00:00
        duration_minutes = 60
        password = "{password}"
        allowed_networks = [{nets}]
        results = "{results}"
        public_tests_visible = {"true" if public_visible else "false"}

        [variants.double]
        title = "Midterm (A): double"

        [variants.triple]
        title = "Midterm (B): triple"

        [resources]
        test_time_limit_s = 20
        time_limit_s = 60
        memory_mb = 512
        ''')
    for v, k in FACTOR.items():
        _write(root / f"assignments/midterm/variants/{v}/tests/test_{v}_public.py", f'''
            import pytest

            @pytest.mark.points(1)
            def test_{v}_of_two(student):
                assert student.f(2) == {2 * k}, "f(2) should be {2 * k}"
            ''')
        _write(root / f"solutions/midterm/variants/{v}/answer.py",
               f"def f(x):\n    # BEGIN SOLUTION\n    return {k} * x\n    # END SOLUTION\n\n\n"
               f"def shout(s):\n    print(s)\n")
        _write(root / f"solutions/midterm/variants/{v}/tests/test_{v}_hidden.py", f'''
            import pytest

            @pytest.mark.points(2)
            @pytest.mark.visibility("hidden")
            def test_{v}_{CANARIES[0]}(student):
                student.shout("{CANARIES[2]}")
                assert student.f(5) == {5 * k}, "{CANARIES[1]}"
            ''')
    return root


def answer(variant: str, right: bool = True) -> bytes:
    """answer.py for ``variant``: right passes everything; wrong passes only the public test
    (f(2) right, f(5) wrong), printing what the hidden test asks it to."""
    k = FACTOR[variant]
    body = f"return {k} * x" if right else f"return {2 * k} if x == 2 else -1"
    return f"def f(x):\n    {body}\n\n\ndef shout(s):\n    print(s)\n".encode()


class Exam:
    """A service over the exam course, with a manual clock and a token per student."""

    def __init__(self, root: Path, db_url: str, **course_kw: object) -> None:
        build_exam_course(root, **course_kw)  # type: ignore[arg-type]
        self.svc = make_service(root, db_url, exam_secret=SECRET)
        self.clock = ManualClock(OPENS + dt.timedelta(hours=1))
        self.ctx.clock = self.clock

    @property
    def ctx(self):  # type: ignore[no-untyped-def]
        return self.svc.client.app.state.service

    @property
    def db(self):  # type: ignore[no-untyped-def]
        return self.svc.db

    def start(self, student: str, client: TestClient | None = None, **body: object):
        return (client or self.svc.client).post("/api/v1/assignments/midterm/start",
                                                headers=self.svc.auth(student), json=body)

    def submit(self, student: str, data: bytes | None = None):  # type: ignore[no-untyped-def]
        return self.svc.client.post("/api/v1/assignments/midterm/submissions",
                                    headers=self.svc.auth(student),
                                    files={"files": ("answer.py", data or b"def f(x):\n  pass\n")})

    def variant(self, student: str) -> str:
        return choose_variant(SECRET, student, "midterm", ["double", "triple"])

    def attempt(self, student: str) -> ExamAttempt:
        from gradebook import models as gm

        with self.db.read() as s:
            row = s.scalar(sa.select(ExamAttempt).join(
                gm.Student, gm.Student.id == ExamAttempt.student_pk)
                .where(gm.Student.student_id == student))
        assert row is not None
        return row

    def grade_all(self) -> int:
        from autograder.service.workers import JobRunner

        runner = JobRunner(self.svc.settings, self.db, "exam-test-worker")
        n = 0
        try:
            while runner.run_once():
                n += 1
        finally:
            runner.close()
        return n

    def submissions_stored(self) -> int:
        from gradebook import models as gm

        with self.db.read() as s:
            return s.scalar(sa.select(sa.func.count(gm.Submission.id))) or 0

    def close(self) -> None:
        self.db.close()


@pytest.fixture
def exam(tmp_path: Path, sqlite_url: str):  # type: ignore[no-untyped-def]
    e = Exam(tmp_path / "course", sqlite_url)
    yield e
    e.close()


def _at(iso: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(iso)
    assert moment.tzinfo is not None, f"{iso} has no offset"
    return moment


# --- starting ----------------------------------------------------------------------------------

def test_start_returns_the_times_and_the_variant_task_and_again_the_same_attempt(
        tmp_path: Path, db_url: str) -> None:
    exam = Exam(tmp_path / "course", db_url)
    try:
        now = exam.clock.now()
        first = exam.start("alice")
        assert first.status_code == 201, first.text
        body = first.json()
        assert _at(body["started_at"]) == now
        assert _at(body["ends_at"]) == now + dt.timedelta(minutes=60)
        assert _at(body["now"]) == now and body["seconds_left"] == 3600
        v = exam.variant("alice")
        assert body["task"]["variant"] == v and body["task"]["modules"] == ["answer.py"]
        assert body["task"]["title"] == {"double": "Midterm (A): double",
                                         "triple": "Midterm (B): triple"}[v]
        assert exam.attempt("alice").variant == v  # stored with the attempt

        # A reload ten minutes later, then "another computer" (a session cookie, no token).
        exam.clock.advance(minutes=10)
        again = exam.start("alice")
        assert again.status_code == 200
        assert again.json()["started_at"] == body["started_at"]
        assert again.json()["ends_at"] == body["ends_at"]
        assert again.json()["seconds_left"] == 3000
        from autograder.service.auth import (CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE,
                                             ensure_user, open_session)

        other = TestClient(exam.svc.client.app)
        other.cookies.set(SESSION_COOKIE, open_session(exam.db, ensure_user(exam.db, "alice")))
        refused = other.post("/api/v1/assignments/midterm/start", json={})
        assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
        other.cookies.set(CSRF_COOKIE, "tok")
        third = other.post("/api/v1/assignments/midterm/start", json={},
                           headers={CSRF_HEADER: "tok"})
        assert third.status_code == 200 and third.json()["ends_at"] == body["ends_at"]
        got = other.get("/api/v1/assignments/midterm/attempt")
        assert got.status_code == 200 and got.json()["started_at"] == body["started_at"]
    finally:
        exam.close()


def test_a_time_factor_of_one_and_a_half_gives_90_of_60_minutes(exam: Exam) -> None:
    exam.db.gb.set_accommodation("bob", time_factor=1.5, reason="letter", set_by="ta")
    body = exam.start("bob").json()
    assert _at(body["ends_at"]) - _at(body["started_at"]) == dt.timedelta(minutes=90)
    plain = exam.start("alice").json()
    assert _at(plain["ends_at"]) - _at(plain["started_at"]) == dt.timedelta(minutes=60)


def test_the_end_is_capped_by_closes_plus_the_students_window_extension(exam: Exam) -> None:
    exam.clock.set(CLOSES - dt.timedelta(minutes=20))
    late = exam.start("alice").json()
    assert _at(late["ends_at"]) == CLOSES  # 20 minutes left of the window, not 60
    exam.db.gb.set_accommodation("bob", time_factor=1.5, extra_minutes=10)
    exam.db.gb.set_exam_override("bob", "midterm", window_extension_minutes=30, set_by="ta")
    extended = exam.start("bob").json()
    assert _at(extended["ends_at"]) == CLOSES + dt.timedelta(minutes=30)


@pytest.mark.parametrize("moment,words", [
    (OPENS - dt.timedelta(seconds=1), "opens at 2026-10-08 09:00"),
    (CLOSES, "closed at 2026-10-08 21:00"),
    (CLOSES + dt.timedelta(days=1), "closed at"),
])
def test_before_opens_and_after_closes_starting_is_refused(exam: Exam, moment: dt.datetime,
                                                          words: str) -> None:
    exam.clock.set(moment)
    r = exam.start("alice")
    assert r.status_code == 403 and words in r.json()["detail"], r.text
    assert exam.svc.client.get("/api/v1/assignments/midterm/attempt",
                               headers=exam.svc.auth("alice")).status_code == 404


def test_a_wrong_password_is_refused_and_the_right_one_starts(tmp_path: Path,
                                                              sqlite_url: str) -> None:
    exam = Exam(tmp_path / "course", sqlite_url, password="blue-heron")
    try:
        for given in ({}, {"password": "Blue-heron"}, {"password": ""}):
            r = exam.start("alice", **given)
            assert r.status_code == 403 and "wrong exam password" in r.json()["detail"]
        assert exam.start("alice", password="blue-heron").status_code == 201
        # Not released to students: the assignments list does not carry it.
        listed = exam.svc.client.get("/api/v1/assignments", headers=exam.svc.auth("alice"))
        assert "blue-heron" not in listed.text
    finally:
        exam.close()


def test_a_student_outside_the_network_list_cannot_start(tmp_path: Path,
                                                         sqlite_url: str) -> None:
    exam = Exam(tmp_path / "course", sqlite_url, networks=("10.20.0.0/16",))
    app = exam.svc.client.app
    try:
        outside = TestClient(app, client=("192.168.1.7", 5000))
        r = exam.start("alice", client=outside)
        assert r.status_code == 403
        assert "exam room's network" in r.json()["detail"] and "192.168.1.7" in r.json()["detail"]
        # A forged X-Forwarded-For from a peer that is not a trusted proxy changes nothing.
        r = outside.post("/api/v1/assignments/midterm/start", json={},
                         headers={**exam.svc.auth("alice"), "X-Forwarded-For": "10.20.1.1"})
        assert r.status_code == 403
        inside = TestClient(app, client=("10.20.4.2", 5000))
        assert exam.start("alice", client=inside).status_code == 201
        assert exam.attempt("alice").client_address == "10.20.4.2"
    finally:
        exam.close()


def test_behind_a_trusted_proxy_the_forwarded_address_is_checked(tmp_path: Path,
                                                                 sqlite_url: str) -> None:
    from dataclasses import replace

    exam = Exam(tmp_path / "course", sqlite_url, networks=("10.20.0.0/16",))
    ctx = exam.ctx
    ctx.settings = replace(ctx.settings, trusted_proxies=("127.0.0.1",))
    try:
        proxy = TestClient(exam.svc.client.app, client=("127.0.0.1", 5000))
        far = proxy.post("/api/v1/assignments/midterm/start", json={},
                         headers={**exam.svc.auth("alice"),
                                  "X-Forwarded-For": "10.20.9.9, 203.0.113.5"})
        # The proxy appended the address it saw (203.0.113.5); the student wrote the first one.
        assert far.status_code == 403 and "203.0.113.5" in far.json()["detail"]
        near = proxy.post("/api/v1/assignments/midterm/start", json={},
                          headers={**exam.svc.auth("bob"), "X-Forwarded-For": "10.20.9.9"})
        assert near.status_code == 201
    finally:
        exam.close()


def test_the_api_is_for_students_and_homework_is_not_started(exam: Exam) -> None:
    r = exam.svc.client.post("/api/v1/assignments/toy/start", headers=exam.svc.auth("alice"))
    assert r.status_code == 409 and "not a timed exam" in r.json()["detail"]
    r = exam.svc.client.post("/api/v1/assignments/nope/start", headers=exam.svc.auth("alice"))
    assert r.status_code == 404
    assert exam.svc.client.post("/api/v1/assignments/midterm/start").status_code == 401


# --- work judged on receipt ------------------------------------------------------------------------

def test_one_second_before_the_end_is_accepted_and_one_second_after_is_refused(
        tmp_path: Path, db_url: str) -> None:
    exam = Exam(tmp_path / "course", db_url)
    try:
        ends = _at(exam.start("alice").json()["ends_at"])
        exam.clock.set(ends - dt.timedelta(seconds=1))
        ok = exam.submit("alice", answer(exam.variant("alice")))
        assert ok.status_code == 202, ok.text
        assert _at(ok.json()["received_at"]) == ends - dt.timedelta(seconds=1)
        stored = exam.submissions_stored()
        exam.clock.set(ends + dt.timedelta(seconds=1))
        late = exam.submit("alice", answer(exam.variant("alice")))
        assert late.status_code == 403
        assert "exam time ended" in late.json()["detail"] and "1 s after" in late.json()["detail"]
        assert exam.submissions_stored() == stored  # nothing of the refused upload is kept
        exam.clock.set(ends)  # the end itself is already too late
        assert exam.submit("alice").status_code == 403
    finally:
        exam.close()


def test_work_before_the_start_is_refused(exam: Exam) -> None:
    r = exam.submit("alice", answer("double"))
    assert r.status_code == 403 and "start the exam first" in r.json()["detail"]
    assert exam.submissions_stored() == 0


def test_after_handing_in_early_nothing_is_accepted_and_it_cannot_start_again(exam: Exam) -> None:
    exam.start("alice")
    assert exam.submit("alice", answer(exam.variant("alice"))).status_code == 202
    exam.clock.advance(minutes=5)
    done = exam.svc.client.post("/api/v1/assignments/midterm/finish",
                                headers=exam.svc.auth("alice"))
    assert done.status_code == 200 and done.json()["state"] == "finished"
    assert done.json()["counted_submission"] is not None
    exam.clock.advance(seconds=1)
    assert exam.submit("alice").status_code == 403
    again = exam.start("alice")
    assert again.status_code == 409 and "already finished" in again.json()["detail"]


# --- the finaliser ---------------------------------------------------------------------------------

def test_the_last_submission_counts_after_the_browser_closed(exam: Exam) -> None:
    from autograder.service.exams import finalise_due

    exam.start("alice")
    first = exam.submit("alice", answer(exam.variant("alice"), right=False)).json()["id"]
    exam.clock.advance(minutes=30)
    second = exam.submit("alice", answer(exam.variant("alice"))).json()["id"]
    assert second != first
    # Nobody asks anything any more; the service's clock passes the end.
    exam.clock.advance(minutes=31)
    assert exam.attempt("alice").finalised_at is None
    assert finalise_due(exam.db, exam.svc.settings.course_root, exam.clock.now()) == 1
    row = exam.attempt("alice")
    assert row.finalised_at == exam.clock.now() and row.finalised_by == "time"
    assert row.counted_submission_id == second
    # Idempotent: a second run (or a second service) changes nothing.
    exam.clock.advance(seconds=20)
    assert finalise_due(exam.db, exam.svc.settings.course_root, exam.clock.now()) == 0
    assert exam.attempt("alice").finalised_at == row.finalised_at


def test_the_services_own_finaliser_runs_within_seconds(tmp_path: Path, sqlite_url: str) -> None:
    from dataclasses import replace

    exam = Exam(tmp_path / "course", sqlite_url)
    exam.ctx.settings = replace(exam.ctx.settings, exam_finalise_every_s=0.1)
    try:
        with TestClient(exam.svc.client.app) as client:  # runs the app's lifespan
            r = client.post("/api/v1/assignments/midterm/start", headers=exam.svc.auth("bob"))
            assert r.status_code == 201
            sub = client.post("/api/v1/assignments/midterm/submissions",
                              headers=exam.svc.auth("bob"),
                              files={"files": ("answer.py", answer(exam.variant("bob")))})
            assert sub.status_code == 202
            exam.clock.advance(minutes=61)
            deadline = time.monotonic() + 10
            while exam.attempt("bob").finalised_at is None and time.monotonic() < deadline:
                time.sleep(0.05)
            row = exam.attempt("bob")
            assert row.finalised_at is not None, "the lifespan's finaliser did not run"
            assert row.counted_submission_id == sub.json()["id"]
    finally:
        exam.close()


def test_a_student_given_more_time_is_not_finalised_at_the_old_end(exam: Exam) -> None:
    from autograder.service.exams import finalise_due

    old_end = _at(exam.start("alice").json()["ends_at"])
    exam.db.gb.set_exam_override("alice", "midterm", extra_minutes=15, set_by="cli")
    exam.clock.set(old_end + dt.timedelta(minutes=1))
    assert finalise_due(exam.db, exam.svc.settings.course_root, exam.clock.now()) == 0
    assert exam.attempt("alice").ends_at == old_end + dt.timedelta(minutes=15)
    assert exam.submit("alice", answer(exam.variant("alice"))).status_code == 202


# --- what the student sees -------------------------------------------------------------------------

def _every_student_byte(exam: Exam, student: str) -> str:
    """Every response a student can get about their exam work: the API and the pages."""
    from autograder.service.auth import SESSION_COOKIE, ensure_user, open_session

    c, h = exam.svc.client, exam.svc.auth(student)
    texts = [c.get("/api/v1/assignments/midterm/submissions", headers=h).text,
             c.get("/api/v1/assignments", headers=h).text,
             c.get("/api/v1/assignments/midterm/attempt", headers=h).text]
    browser = TestClient(c.app)
    browser.cookies.set(SESSION_COOKIE, open_session(exam.db, ensure_user(exam.db, student)))
    texts.append(browser.get("/exams/midterm").text)
    texts.append(browser.get("/").text)
    for sub in c.get("/api/v1/assignments/midterm/submissions", headers=h).json():
        texts.append(c.get(f"/api/v1/submissions/{sub['id']}", headers=h).text)
        texts.append(browser.get(f"/submissions/{sub['id']}").text)
        texts.append(browser.get(f"/submissions/{sub['id']}/status").text)
    return "\n".join(texts)


def test_hidden_tests_are_never_visible_during_the_exam_and_results_wait_for_release(
        exam: Exam) -> None:
    exam.start("alice")
    v = exam.variant("alice")
    sub = exam.submit("alice", answer(v, right=False)).json()["id"]
    assert exam.grade_all() == 1
    # The canaries are in the stored result (so the check below can fail)...
    from gradebook import models as gm

    with exam.db.read() as s:
        stored = str(s.scalar(sa.select(gm.GradingRun.result)))
    assert all(c in stored for c in CANARIES)
    # ...and in nothing a student can read during the exam.
    during = _every_student_byte(exam, "alice")
    assert not [c for c in CANARIES if c in during]
    view = exam.svc.client.get(f"/api/v1/submissions/{sub}", headers=exam.svc.auth("alice")).json()
    assert view["state"] == "graded" and view["score"] is None
    assert [t["name"].split("::")[-1] for t in view["tests"]] == [f"test_{v}_of_two"]
    assert view["hidden_tests"]["count"] == 0 and "after the exam" in view["results_withheld"]

    # After the end, before the release: still no score, still no hidden test.
    exam.clock.advance(minutes=61)
    after = _every_student_byte(exam, "alice")
    assert not [c for c in CANARIES if c in after]
    assert exam.svc.client.get(f"/api/v1/submissions/{sub}",
                               headers=exam.svc.auth("alice")).json()["score"] is None
    # Released: the score, the hidden test counted but never named.
    from autograder.service.exams import release_results

    release_results(exam.ctx, "midterm", "prof@x.edu")
    view = exam.svc.client.get(f"/api/v1/submissions/{sub}", headers=exam.svc.auth("alice")).json()
    assert view["score"] == 1 and view["max_score"] == 3
    assert view["hidden_tests"] == {"count": 1, "score": 0.0, "max_score": 2.0}
    released = _every_student_byte(exam, "alice")
    assert not [c for c in CANARIES if c in released]


def test_without_public_feedback_nothing_is_shown_and_immediately_means_at_the_end(
        tmp_path: Path, sqlite_url: str) -> None:
    exam = Exam(tmp_path / "course", sqlite_url, results="immediately", public_visible=False)
    try:
        exam.start("bob")
        sub = exam.submit("bob", answer(exam.variant("bob"))).json()["id"]
        assert exam.grade_all() == 1
        h = exam.svc.auth("bob")
        view = exam.svc.client.get(f"/api/v1/submissions/{sub}", headers=h).json()
        assert view["tests"] == [] and view["score"] is None
        assert "No feedback is shown during it" in view["results_withheld"]
        listed = exam.svc.client.get("/api/v1/assignments/midterm/submissions", headers=h).json()
        assert listed[0]["score"] is None
        exam.clock.advance(minutes=60)  # bob's end: results = "immediately"
        view = exam.svc.client.get(f"/api/v1/submissions/{sub}", headers=h).json()
        assert view["score"] == 3 and "results_withheld" not in view
        listed = exam.svc.client.get("/api/v1/assignments/midterm/submissions", headers=h).json()
        assert listed[0]["score"] == 3
    finally:
        exam.close()


# --- variants --------------------------------------------------------------------------------------

def test_the_variant_of_a_student_is_the_same_after_a_regrade(exam: Exam) -> None:
    from dataclasses import replace

    from autograder.service import queue

    exam.start("alice")
    v = exam.variant("alice")
    sub = exam.submit("alice", answer(v)).json()["id"]
    assert exam.grade_all() == 1
    # The course secret changes (or a variant is added): the choice now says otherwise...
    new_secret = next(f"rotated-{i}" for i in range(100)
                      if choose_variant(f"rotated-{i}", "alice", "midterm",
                                        ["double", "triple"]) != v)
    exam.svc.settings = replace(exam.svc.settings, exam_secret=new_secret)
    exam.ctx.settings = exam.svc.settings
    # ...but the regrade grades the stored variant, with its own tests, to full marks.
    job_id = queue.enqueue_regrade(exam.db, sub)
    claimed = queue.claim(exam.db, "peek", lanes=("cpu",))
    assert claimed is not None and claimed.job_id == job_id and claimed.variant == v
    queue.release(exam.db, claimed.job_id, claimed.token)
    assert exam.grade_all() == 1
    from gradebook import models as gm

    with exam.db.read() as s:
        runs = list(s.scalars(sa.select(gm.GradingRun).where(gm.GradingRun.submission_id == sub)
                              .order_by(gm.GradingRun.id)))
        jobs = list(s.scalars(sa.select(GradingJob).where(GradingJob.submission_id == sub)))
    assert len(runs) == 2 and all(j.state == "graded" for j in jobs)
    for run in runs:
        names = {t["name"].split("::")[-1] for t in run.result["tests"]}
        assert names == {f"test_{v}_of_two", f"test_{v}_{CANARIES[0]}"}
        assert run.score == 3
    assert exam.attempt("alice").variant == v


def test_variants_spread_and_the_worker_warm_up_skips_exams_with_variants(exam: Exam,
                                                                          capsys) -> None:
    from autograder.service.workers import JobRunner

    chosen = {exam.variant(s) for s in ("alice", "bob", "carol")}
    assert chosen <= {"double", "triple"}
    runner = JobRunner(exam.svc.settings, exam.db, "warm-test")
    try:
        runner.warm_up()
        assert ("toy", None) in runner.graders
        assert not [k for k in runner.graders if k[0] == "midterm"]
    finally:
        runner.close()
    assert "not warmed" not in capsys.readouterr().err


# --- sessions ------------------------------------------------------------------------------------

def test_one_active_session_per_student_during_the_exam(exam: Exam) -> None:
    from autograder.service.auth import SESSION_COOKIE, hash_password, login
    from autograder.service.models import ServiceUser

    with exam.db.write() as s:
        for user in s.scalars(sa.select(ServiceUser)):
            user.password_hash = hash_password("a long password")

    def session_ok(token: str) -> bool:
        c = TestClient(exam.svc.client.app)
        c.cookies.set(SESSION_COOKIE, token)
        return c.get("/api/v1/me").status_code == 200

    before_a = login(exam.db, "alice", "a long password")
    before_b = login(exam.db, "alice", "a long password")
    assert session_ok(before_a) and session_ok(before_b)  # no exam running: two browsers
    exam.start("alice")
    during = login(exam.db, "alice", "a long password")
    assert session_ok(during)
    assert not session_ok(before_a) and not session_ok(before_b)
    # Bob's sessions are his own business.
    bob1 = login(exam.db, "bob", "a long password")
    login(exam.db, "bob", "a long password")
    assert session_ok(bob1)


# --- staff ---------------------------------------------------------------------------------------

@pytest.fixture
def staffed(tmp_path: Path, sqlite_url: str):  # type: ignore[no-untyped-def]
    from tests.service.staff_support import make_staff_service

    root = build_exam_course(tmp_path / "course")
    staff = make_staff_service(root, sqlite_url)
    clock = ManualClock(OPENS + dt.timedelta(hours=1))
    ctx = staff.svc.client.app.state.service
    ctx.clock = clock
    from dataclasses import replace

    ctx.settings = staff.svc.settings = replace(staff.svc.settings, exam_secret=SECRET)
    yield staff, clock
    staff.db.close()


def test_staff_live_view_extension_release_and_per_variant_statistics(staffed) -> None:
    staff, clock = staffed
    svc = staff.svc
    ta, instructor = staff.clients["ta"], staff.clients["instructor"]
    for s in ("alice", "bob"):
        assert svc.client.post("/api/v1/assignments/midterm/start",
                               headers=svc.auth(s)).status_code == 201
    variants = {s: choose_variant(SECRET, s, "midterm", ["double", "triple"])
                for s in ("alice", "bob")}
    svc.submit("alice", answer(variants["alice"]), "answer.py", "midterm")
    svc.submit("bob", answer(variants["bob"], right=False), "answer.py", "midterm")
    assert staff.grade_all() == 2
    clock.advance(minutes=20)

    page = ta.get("/staff/exams/midterm")
    assert page.status_code == 200
    assert 'data-student="alice"' in page.text and "0:40:00" in page.text  # time left
    assert "not started" in page.text  # carol
    live = ta.get("/api/v1/staff/exams/midterm").json()
    by = {r["login"]: r for r in live["students"]}
    assert by["alice"]["state"] == "running" and by["alice"]["left_s"] == 2400
    assert by["alice"]["submissions"] == 1 and by["carol"]["state"] == "not started"
    stats = {v["variant"]: v for v in live["variants"]}
    for s, v in variants.items():
        assert stats[v]["started"] >= 1
    if variants["alice"] != variants["bob"]:
        assert stats[variants["alice"]]["mean"] == 3 and stats[variants["bob"]]["mean"] == 1
    else:
        assert stats[variants["alice"]]["mean"] == 2 and stats[variants["alice"]]["graded"] == 2
    assert "Exams" in ta.get("/staff").text

    # Extend bob by 15 minutes on the spot: his end moves, the audit log says who and why.
    old_end = _at(svc.client.get("/api/v1/assignments/midterm/attempt",
                                 headers=svc.auth("bob")).json()["ends_at"])
    r = ta.post("/staff/exams/midterm/extend", data={"student": "bob", "minutes": "15",
                                                     "reason": "fire alarm"})
    assert r.status_code == 303 and "flash" in r.headers["location"]
    new_end = _at(svc.client.get("/api/v1/assignments/midterm/attempt",
                                 headers=svc.auth("bob")).json()["ends_at"])
    assert new_end - old_end == dt.timedelta(minutes=15)
    audit = [a for a in svc.db.gb.audit(student="bob") if a.action == "exam override set"]
    assert audit and audit[-1].actor == "ta@x.edu" and audit[-1].reason == "fire alarm"
    clock.set(old_end + dt.timedelta(minutes=5))  # past his old end, inside the new one
    assert svc.submit("bob", answer(variants["bob"]), "answer.py", "midterm").status_code == 202
    assert svc.submit("alice", answer(variants["alice"]), "answer.py",
                      "midterm").status_code == 403

    # Only instructors release; a grader does not even watch.
    assert ta.post("/staff/exams/midterm/release").status_code == 403
    assert staff.clients["grader"].get("/staff/exams/midterm").status_code == 403
    assert staff.clients["student"].get("/staff/exams").status_code == 403
    sub = svc.client.get("/api/v1/assignments/midterm/submissions",
                         headers=svc.auth("alice")).json()[0]["id"]
    assert svc.client.get(f"/api/v1/submissions/{sub}",
                          headers=svc.auth("alice")).json()["score"] is None
    assert instructor.post("/staff/exams/midterm/release").status_code == 303
    assert svc.client.get(f"/api/v1/submissions/{sub}",
                          headers=svc.auth("alice")).json()["score"] == 3
    assert [a for a in svc.db.gb.audit() if a.action == "exam results released"]
    assert "released" in instructor.get("/staff/exams").text


def test_the_exam_pages_render_the_task_countdown_and_start_form(exam: Exam) -> None:
    from autograder.service.auth import (CSRF_COOKIE, SESSION_COOKIE, ensure_user,
                                         open_session)

    browser = TestClient(exam.svc.client.app, follow_redirects=False)
    browser.cookies.set(SESSION_COOKIE, open_session(exam.db, ensure_user(exam.db, "carol")))
    browser.cookies.set(CSRF_COOKIE, "tok")
    home = browser.get("/")
    assert 'href="/exams/midterm"' in home.text
    assert browser.get("/assignments/midterm").headers["location"] == "/exams/midterm"
    page = browser.get("/exams/midterm")
    assert page.status_code == 200 and 'id="start"' in page.text and 'id="countdown"' not in page.text
    # Without the honour code ticked: not started.
    r = browser.post("/exams/midterm/start", data={"csrf_token": "tok"})
    assert r.status_code == 422 and "honour code" in r.text
    r = browser.post("/exams/midterm/start", data={"csrf_token": "tok", "honour_code": "1"})
    assert r.status_code == 303
    assert exam.attempt("carol").honour_code_accepted_at == exam.clock.now()
    page = browser.get("/exams/midterm").text
    assert 'id="countdown"' in page and f'data-server-now="{exam.clock.now().isoformat()}"' in page
    assert 'id="upload-form"' in page
