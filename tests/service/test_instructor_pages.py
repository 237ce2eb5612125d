"""The instructor pages: the gradebook table with its derivations and downloads (each parsed
back), statistics with plots, and the similarity report run as a background job from its page,
with pairs marked reviewed; and a short walk through them in Debian's Chromium."""

from __future__ import annotations

import csv
import datetime as dt
import io
import time

import pytest

from autograder.results import GradingResult, Outcome, SubmissionIdentity, TestResult
from tests.service.conftest import ServeProcess
from tests.service.staff_support import STAFF_EMAIL, make_staff_service
from tests.support.browser import chromium

UTC = dt.timezone.utc
TESTS = {"test_double": 1.0, "test_hidden": 1.0, "test_after_due_date": 1.0,
         "test_after_published": 1.0}

# Enough code for fingerprints: one student's work, a renamed copy of it, and someone else's.
ORIGINAL = '''
import numpy as np


def double(x):
    values = np.asarray(x, dtype=float)
    doubled = values * 2.0
    total = float(np.sum(doubled))
    if total > 1e6:
        raise ValueError("too large")
    return doubled if doubled.ndim else float(doubled)


def shout(s):
    message = str(s).upper()
    for part in message.split():
        print(part, end=" ")
    print()
'''
COPY = (ORIGINAL.replace("values", "arr").replace("doubled", "twice").replace("total", "acc")
        .replace("message", "msg").replace("part", "word"))
OWN = '''
def double(x):
    return x + x


def shout(s):
    print(s)
'''


def _result(student: str, attempt: int, passed: set[str], duration: float = 0.5) -> GradingResult:
    tests = tuple(TestResult(name, pts if name in passed else 0.0, pts,
                             Outcome.PASSED if name in passed else Outcome.FAILED,
                             duration_s=duration) for name, pts in TESTS.items())
    return GradingResult(assignment="toy", submission=f"{student}-{attempt}", tests=tests,
                         backend="process", identity=SubmissionIdentity(student, attempt, ""),
                         run_id=f"{student}-{attempt}")


@pytest.fixture
def staff(course, sqlite_url):  # type: ignore[no-untyped-def]
    svc = make_staff_service(course, sqlite_url)
    gb = svc.db.gb
    when = dt.datetime(2029, 12, 1, tzinfo=UTC)
    plan = {"alice": [{"test_double"}, set(TESTS)], "bob": [set(TESTS)],
            "carol": [set(), {"test_double"}]}
    for student, attempts in plan.items():
        for n, passed in enumerate(attempts, start=1):
            sub = gb.record_submission(student, "toy", {"toy.py": f"# {student} {n}\n".encode()},
                                       when + dt.timedelta(hours=n))
            gb.record_result(sub.id, _result(student, sub.attempt, passed), f"run-{student}-{n}")
    yield svc
    svc.db.close()


def test_the_gradebook_table_links_every_number_to_its_derivation(staff):
    page = staff.clients["instructor"].get("/staff/gradebook")
    assert page.status_code == 200, page.text
    html = page.text
    for student in ("alice", "bob", "carol"):
        assert f'href="/staff/gradebook/{student}#final"' in html
        assert f'href="/staff/gradebook/{student}#slack"' in html
    assert 'href="/staff/gradebook/alice#categories"' in html
    assert "Final %" in html and "Slack left" in html and "Late penalties" in html
    explain = staff.clients["instructor"].get("/staff/gradebook/alice")
    assert explain.status_code == 200
    for anchor in ("final", "categories", "slack", "penalties", "assessment-toy"):
        assert f'id="{anchor}"' in explain.text, anchor
    assert staff.clients["instructor"].get("/staff/gradebook/nobody").status_code == 404


def test_gradebook_pages_are_for_instructors(staff):
    for caller in ("ta", "grader", "student", "other_course"):
        assert staff.clients[caller].get("/staff/gradebook").status_code == 403, caller
        assert staff.clients[caller].get(
            "/staff/gradebook/download/export.csv").status_code == 403, caller
    assert staff.clients["anonymous"].get("/staff/gradebook").status_code in (303, 401)


def test_the_downloads_parse_back(staff):
    from openpyxl import load_workbook

    client = staff.clients["instructor"]
    got = client.get("/staff/gradebook/download/export.csv")
    assert got.status_code == 200 and "attachment" in got.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(got.text)))
    assert [r["student_id"] for r in rows] == ["alice", "bob", "carol"]
    assert {"final grade %", "letter", "slack days used", "slack days left", "toy"} <= set(rows[0])
    assert float(rows[1]["toy"]) == 4.0  # bob passed every test

    canvas = list(csv.reader(io.StringIO(
        client.get("/staff/gradebook/download/export-canvas.csv").text)))
    assert canvas[0][:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert canvas[1][0].strip() == "Points Possible"
    assert {row[2] for row in canvas[2:]} == {"alice", "bob", "carol"}

    xlsx = client.get("/staff/gradebook/download/export.xlsx")
    assert xlsx.headers["content-type"].startswith("application/vnd.openxmlformats")
    book = load_workbook(io.BytesIO(xlsx.content), read_only=True)
    sheet = list(book["Gradebook"].iter_rows(values_only=True))
    assert list(sheet[0]) == list(rows[0])
    assert [r[0] for r in sheet[1:]] == ["alice", "bob", "carol"]
    assert client.get("/staff/gradebook/download/export.pdf").status_code == 404


def test_statistics_page_numbers_and_cached_plots(staff):
    client = staff.clients["instructor"]
    page = client.get("/staff/stats/toy")
    assert page.status_code == 200, page.text
    html = page.text
    assert "test_double" in html and "point-biserial" in html
    # test_double: first attempts alice P, bob P, carol F -> 66.7; last: all pass -> 100.0
    assert "66.7" in html and "100.0" in html
    for plot in ("distribution.png", "pass-rates.png", "discrimination.png"):
        assert f"/staff/stats/toy/{plot}" in html
        first = client.get(f"/staff/stats/toy/{plot}")
        assert first.status_code == 200 and first.headers["content-type"] == "image/png"
        assert first.content.startswith(b"\x89PNG")
    cache = client.app.state.instructor_png_cache
    size = len(cache)
    again = client.get("/staff/stats/toy/discrimination.png")
    assert again.content == first.content and len(cache) == size  # the same numbers: drawn once
    assert client.get("/staff/stats/toy/nothing.png").status_code == 404
    index = client.get("/staff/stats")
    assert index.status_code == 200 and 'href="/staff/stats/toy"' in index.text
    assert staff.clients["ta"].get("/staff/stats/toy").status_code == 403


def _wait_done(client, timeout: float = 180.0) -> str:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get("/staff/similarity/toy/status")
        assert status.status_code == 200
        if status.headers.get("hx-refresh") == "true":
            return status.text
        assert 'hx-trigger="every 2s"' in status.text  # still polling
        time.sleep(0.5)
    raise AssertionError("the similarity run did not end")


def test_similarity_runs_in_the_background_and_pairs_are_marked_reviewed(staff):
    svc = staff.svc
    for student, code in (("alice", ORIGINAL), ("bob", COPY), ("carol", OWN)):
        assert svc.submit(student, code.encode()).status_code == 202
    ta = staff.clients["ta"]
    page = ta.get("/staff/similarity/toy")
    assert page.status_code == 200 and "Run similarity check" in page.text
    assert staff.clients["grader"].post("/staff/similarity/toy/run").status_code == 403
    started = ta.post("/staff/similarity/toy/run")
    assert started.status_code == 303
    status = _wait_done(ta)
    assert "pair(s) at or above" in status, status
    page = ta.get("/staff/similarity/toy").text
    assert "alice" in page and "bob" in page and "Mark reviewed" in page
    assert "carol" not in page.split('id="pairs"')[1]  # own work: not flagged

    pairs = list(csv.DictReader(io.StringIO(ta.get("/staff/similarity/toy/pairs.csv").text)))
    top = pairs[0]
    assert {top["a"], top["b"]} == {"alice", "bob"} and float(top["similarity"]) >= 0.9
    report = ta.get("/staff/similarity/toy/report")
    assert report.status_code == 200 and "default-src 'none'" in report.headers[
        "content-security-policy"]
    assert "Ranked pairs" in report.text

    marked = ta.post("/staff/similarity/toy/review",
                     data={"a": top["b"], "b": top["a"], "note": "<b>same study group</b>",
                           "csrf_token": "x"})
    assert marked.status_code == 303, marked.text
    page = ta.get("/staff/similarity/toy").text
    assert f"reviewed</span> by {STAFF_EMAIL['ta']}" in page
    assert "&lt;b&gt;same study group&lt;/b&gt;" in page and "<b>same study" not in page
    bad = ta.post("/staff/similarity/toy/review", data={"a": "alice", "b": "carol"})
    assert bad.status_code == 422
    assert staff.clients["student"].get("/staff/similarity/toy").status_code == 403


# --- in a real browser ---------------------------------------------------------------------

@pytest.mark.needs_service("chromium")
@pytest.mark.slow
def test_instructor_pages_in_chromium(course, tmp_path):
    from autograder.service.auth import SESSION_COOKIE, open_session
    from autograder.service.models import ServiceUser
    from autograder.service.permissions import invite_staff
    from tests.service.conftest import open_service_db

    url = f"sqlite:///{tmp_path / 'browser.sqlite'}"
    db = open_service_db(course, url)
    invite_staff(db, "prof@x.edu", "instructor")
    gb = db.gb
    when = dt.datetime(2029, 12, 1, tzinfo=UTC)
    for i, (student, passed) in enumerate((("alice", set(TESTS)), ("bob", {"test_double"}))):
        sub = gb.record_submission(student, "toy", {"toy.py": b"x = 1\n"}, when)
        gb.record_result(sub.id, _result(student, sub.attempt, passed), f"b-{i}")
    with db.read() as s:
        prof = s.query(ServiceUser).filter_by(login="prof@x.edu").one().id
    session = open_session(db, prof)
    db.close()
    server = ServeProcess(course, url, workers=0).start()
    try:
        with chromium() as browser:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.add_cookies([{"name": SESSION_COOKIE, "value": session,
                                  "url": server.url}])
            page = context.new_page()
            page.goto(f"{server.url}/staff/gradebook")
            assert page.locator("table.gradebook tbody tr").count() == 3
            page.locator('a[href="/staff/gradebook/alice#final"]').first.click()
            page.wait_for_url("**/staff/gradebook/alice#final")
            assert page.locator("section#final").is_visible()
            page.goto(f"{server.url}/staff/stats/toy")
            # A function: a string expression is eval'd on each poll, which the CSP refuses.
            page.wait_for_function("() => [...document.images].every(i => i.complete)")
            widths = page.eval_on_selector_all("img.plot", "els => els.map(e => e.naturalWidth)")
            assert len(widths) == 3 and all(w > 300 for w in widths)
            page.goto(f"{server.url}/staff/similarity/toy")
            assert page.get_by_role("button", name="Run similarity check").is_visible()
    finally:
        server.stop()
