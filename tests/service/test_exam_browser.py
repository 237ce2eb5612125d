"""A whole exam taken in a real browser: the course's own mini-exam (``miniexam1``, two
variants), the service in this process on 127.0.0.1 (uvicorn) with its clock under the test's
control, one real local grading worker, and Debian's Chromium through Playwright with the
page's clock under control too (``page.clock``), so no test sleeps through real minutes.

The student logs in, ticks the honour code, starts; the countdown shows the time left from the
server's clock and survives a reload; she uploads her variant's module, reads the feedback the
exam allows (public tests only, no score, no hidden test); at her end time the page says time
is up and the upload is disabled; the service finalises her attempt with no browser asking; an
instructor watches the live view and releases the results, and she sees her score.

:func:`walk_exam` also writes the screenshots of ``docs/screenshots/exam-*.png``
(``python scripts/screenshots.py`` calls it).
"""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.browser import chromium

pytestmark = [pytest.mark.needs_service("chromium"), pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "exam demo password"
INSTRUCTOR = "ines@example.edu"
UTC = dt.timezone.utc
#: During the mini-exam's window (2026-10-08 09:00-21:00, the course time zone).
START = dt.datetime(2026, 10, 8, 10, 0, tzinfo=UTC)
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}


def build_exam_course(root: Path) -> Path:
    """A course holding the real ``miniexam1`` (sources, solutions and release) and one student,
    alice, and an instructor, both with a password."""
    for top in ("assignments", "solutions", "release"):
        shutil.copytree(REPO / top / "miniexam1", root / top / "miniexam1",
                        ignore=shutil.ignore_patterns("__pycache__"))
    (root / "course.toml").write_text('name = "Deep Learning"\ntimezone = "UTC"\n')
    return root


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def exam_service(tmp: Path) -> Iterator[dict]:
    """The service over the exam course in this process (its clock a ManualClock at START),
    one real local worker, and the finaliser of the app's lifespan ticking every 0.2 s."""
    import uvicorn

    from autograder.service.app import create_app, open_database
    from autograder.service.auth import ensure_user, hash_password
    from autograder.service.models import ServiceUser
    from autograder.service.permissions import invite_staff
    from autograder.service.settings import ManualClock, Settings
    from autograder.service.workers import LocalWorkers
    from gradebook.csvfiles import RosterRow

    root = build_exam_course(tmp / "course")
    settings = Settings(course_root=root, workers=1, exam_finalise_every_s=0.2,
                        exam_secret="browser-test-secret")
    db = open_database(settings)
    db.gb.import_roster([RosterRow(2, "alice", "Alice Liddell", "alice@example.edu")])
    ensure_user(db, "alice")
    invite_staff(db, INSTRUCTOR, "instructor", name="Ines")
    with db.write() as s:
        for user in s.query(ServiceUser).filter(ServiceUser.course_id == db.course_id):
            user.password_hash = hash_password(PASSWORD)
    clock = ManualClock(START)
    app = create_app(settings, db=db, clock=clock)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True, name="exam-uvicorn")
    workers = LocalWorkers(settings)
    workers.start()
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        yield {"url": f"http://127.0.0.1:{port}", "clock": clock, "db": db, "root": root,
               "ctx": app.state.service}
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        workers.stop()
        db.close()


def login(page, url: str, who: str, lands: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{url}/login")
    page.fill("#login", who)
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{url}{lands}")


def _seconds(text: str) -> int:
    """'29:58' or '1:02:03' -> seconds."""
    parts = [int(p) for p in text.strip().split(":")]
    total = 0
    for p in parts:
        total = total * 60 + p
    return total


def _shot(page, out: Path | None, name: str) -> None:  # type: ignore[no-untyped-def]
    """Photograph the page at each width (back at desktop width afterwards)."""
    if out is None:
        return
    for kind, (w, h) in WIDTHS.items():
        page.set_viewport_size({"width": w, "height": h})
        height = min(4000, page.evaluate("document.documentElement.scrollHeight"))
        page.screenshot(path=str(out / f"exam-{name}-{kind}.png"), full_page=True,
                        clip={"x": 0, "y": 0, "width": w, "height": height})
    page.set_viewport_size({"width": WIDTHS["desktop"][0], "height": WIDTHS["desktop"][1]})


def walk_exam(browser, tmp: Path, out: Path | None = None) -> dict:  # type: ignore[no-untyped-def]
    """Take the mini-exam in ``browser`` from start to released results, asserting each step;
    with ``out``, photograph each page there. Returns what was seen."""
    import sqlalchemy as sa

    from autograder.exams import choose_variant
    from autograder.service.models import ExamAttempt

    seen: dict = {}
    with exam_service(tmp) as svc:
        url, clock = svc["url"], svc["clock"]
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        # The browser's own clock starts elsewhere on purpose: the countdown must follow the
        # server's clock, not the computer's.
        page.clock.install(time=dt.datetime(2026, 10, 8, 7, 13, tzinfo=UTC))
        login(page, url, "alice", "/")
        page.get_by_role("link", name="Mini-exam 1").click()
        page.wait_for_url(f"{url}/exams/miniexam1")
        assert page.locator("#start").is_visible()
        assert page.locator("#countdown").count() == 0
        _shot(page, out, "start")

        page.check("#honour-code")
        page.click("#start")
        page.wait_for_url(f"{url}/exams/miniexam1")
        countdown = page.locator("#countdown")
        page.clock.run_for(1000)
        left = _seconds(countdown.inner_text())
        assert 29 * 60 + 55 <= left <= 30 * 60, countdown.inner_text()
        variant = choose_variant("browser-test-secret", "alice", "miniexam1",
                                 ["leaky_relu", "dropout"])
        seen["variant"] = variant
        handout = page.locator("#handout").inner_text()
        word = {"leaky_relu": "leaky ReLU", "dropout": "dropout"}[variant]
        assert word in handout, handout[:300]
        assert "BEGIN SOLUTION" not in page.content()
        # The handout's formulas are drawn (MathML, typeset by Chromium), not shown as LaTeX.
        formula = page.locator("#handout math").first
        box = formula.bounding_box()
        assert formula.is_visible() and box and box["width"] > 0 and box["height"] > 0, box
        assert "$$" not in handout and "\\alpha" not in handout, handout[:300]
        seen["math_box"] = box
        _shot(page, out, "task")

        # Ten minutes pass, for the browser and for the server alike.
        clock.advance(minutes=10)
        page.clock.fast_forward("10:00")
        assert 19 * 60 + 50 <= _seconds(countdown.inner_text()) <= 20 * 60
        # A reload (or another computer) shows the same time left: it comes from the server.
        page.reload()
        page.clock.run_for(1000)
        assert 19 * 60 + 50 <= _seconds(page.locator("#countdown").inner_text()) <= 20 * 60

        # Upload the variant's module (the reference stands for a student's correct work).
        layer = REPO / "solutions/miniexam1/variants" / variant / "layer.py"
        page.set_input_files("#files-input", str(layer))
        page.click("#submit")
        page.wait_for_url("**/exams/miniexam1?submitted=*")
        assert "Received" in page.locator(".notice").first.inner_text()
        page.locator("#attempts a").first.click()
        page.wait_for_url("**/submissions/*")
        # HTMX polls the status every second: let the page's clock run while grading happens.
        deadline = time.monotonic() + 180
        while page.locator("#status[data-state=graded]").count() == 0:
            assert time.monotonic() < deadline, page.locator("#status").inner_text()
            page.clock.run_for(1000)
            time.sleep(0.3)
        status = page.locator("#status").inner_text()
        assert "after the exam" in status  # no score during the exam
        names = page.locator("#status .test .name").all_inner_texts()
        assert names and all("public" in n for n in names), names  # public tests only
        assert not [n for n in names if "hidden" in n]
        seen["feedback_tests"] = names
        _shot(page, out, "feedback")

        # The end: the browser's countdown reaches zero and the form closes.
        page.goto(f"{url}/exams/miniexam1")
        clock.advance(minutes=20, seconds=1)
        page.clock.fast_forward("20:01")
        assert page.locator("#countdown").inner_text() == "Time is up"
        assert page.locator("#files-input").is_disabled()
        assert page.locator("#time-up").is_visible()
        _shot(page, out, "time-up")
        # The student closes the browser; the service finalises the attempt by itself.
        context.close()
        deadline = time.monotonic() + 10
        while True:
            with svc["db"].read() as s:
                row = s.scalar(sa.select(ExamAttempt))
            if row.finalised_at is not None or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert row.finalised_at is not None and row.counted_submission_id is not None
        seen["counted"] = row.counted_submission_id

        # The instructor watches and releases.
        staff = browser.new_context(viewport={"width": 1280, "height": 900})
        spage = staff.new_page()
        login(spage, url, INSTRUCTOR, "/staff")
        spage.get_by_role("navigation", name="Staff").get_by_role("link", name="Exams").click()
        spage.get_by_role("link", name="Mini-exam 1").click()
        spage.wait_for_url(f"{url}/staff/exams/miniexam1")
        row_text = spage.locator('tr[data-student="alice"]').inner_text()
        assert "finished" in row_text and variant in row_text and "20 / 20" in row_text
        _shot(spage, out, "staff-live")
        spage.click("#release-form button")
        spage.wait_for_url("**/staff/exams/miniexam1?flash=*")
        assert "released" in spage.locator("#release-state").inner_text()
        staff.close()

        # Alice, on another computer, sees her score now.
        again = browser.new_context(viewport={"width": 1280, "height": 900})
        apage = again.new_page()
        login(apage, url, "alice", "/")
        apage.goto(f"{url}/exams/miniexam1")
        assert apage.locator("#countdown").inner_text() == "Finished"
        assert "counts" in apage.locator("#attempts").inner_text()
        assert "20 / 20" in apage.locator("#attempts").inner_text()
        _shot(apage, out, "released")
        apage.goto(f"{url}/submissions/{seen['counted']}")
        assert "20 / 20" in apage.locator("#score").inner_text()
        again.close()
    return seen


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    with chromium() as b:
        yield b


def test_a_whole_exam_taken_in_the_browser(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "shots"
    out.mkdir()
    seen = walk_exam(browser, tmp_path, out)
    assert seen["variant"] in ("leaky_relu", "dropout")
    assert sorted(p.name for p in out.glob("exam-*-desktop.png")) == [
        "exam-feedback-desktop.png", "exam-released-desktop.png", "exam-staff-live-desktop.png",
        "exam-start-desktop.png", "exam-task-desktop.png", "exam-time-up-desktop.png"]


def shoot_exam(out: Path, tmp: Path) -> list[Path]:
    """``scripts/screenshots.py``: take the mini-exam in Chromium and write its pages to ``out``
    as ``exam-*-{desktop,phone}.png``."""
    out.mkdir(parents=True, exist_ok=True)
    tmp.mkdir(parents=True, exist_ok=True)
    with chromium() as b:
        walk_exam(b, tmp, out)
    return sorted(out.glob("exam-*.png"))
