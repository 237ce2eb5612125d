"""The student's pages in a real browser: Playwright for Python driving Debian's Chromium
(``/usr/bin/chromium``; never ``playwright install``) against ``autograder serve`` started as a
real process on loopback, grading in its local warm workers.

A student sets a password through the invitation, logs out and in, uploads, watches the state
change without reloading the page, and reads the feedback; a ``<script>`` that the student's
code puts into its output is shown as text and never runs.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.browser import chromium

pytestmark = [pytest.mark.needs_service("chromium"), pytest.mark.slow]

PASSWORD = "correct horse battery"

# Student code whose error message is HTML: the feedback must show it, never run it.
HOSTILE_SOFTMAX = '''
import numpy as np

PAYLOAD = "<script>window.__pwned = 1; document.title = 'pwned'</script><img src=x onerror=\\"window.__pwned = 2\\">"


def softmax_loss_naive(W, X, y, reg):
    print(PAYLOAD)
    raise ValueError(PAYLOAD)


def softmax_loss_vectorized(W, X, y, reg):
    print(PAYLOAD)
    raise ValueError(PAYLOAD)
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """``autograder serve`` on a free port over a fresh course with one student (alice), and
    her invitation token."""
    import httpx

    from autograder.authoring.release import build_release
    from autograder.course import Course
    from autograder.demo import build_demo_course
    from autograder.service.app import open_database
    from autograder.service.auth import create_invitation
    from autograder.service.settings import Settings
    from gradebook.csvfiles import RosterRow

    tmp = tmp_path_factory.mktemp("browser")
    root = build_demo_course(tmp / "course")
    build_release(Course(root).assignment("softmax"))
    db = open_database(Settings(course_root=root))
    db.gb.import_roster([RosterRow(2, "alice", "Alice Liddell", "alice@example.edu"),
                         RosterRow(3, "bob", "Bob Builder", "bob@example.edu")])
    invitation = create_invitation(db, "alice")
    db.close()
    port = _free_port()
    log = open(tmp / "serve.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "autograder.cli", "serve", "--course", str(root), "--port",
         str(port), "--workers", "1"], cwd=tmp, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError("the service did not start:\n"
                                 + (tmp / "serve.log").read_text(errors="replace")[-3000:])
        time.sleep(0.3)
    yield {"url": url, "invitation": invitation, "root": root, "tmp": tmp}
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _upload(page, path: Path) -> None:
    page.set_input_files("#files", str(path))
    page.get_by_role("button", name="Submit").click()
    page.wait_for_url("**/submissions/*")


def test_a_student_logs_in_uploads_watches_the_state_and_reads_feedback(browser, service):
    url = service["url"]
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    # The invitation: set a password, which logs her in.
    page.goto(f"{url}/invite/{service['invitation']}")
    assert "alice" in page.inner_text("main")
    page.fill("#password", PASSWORD)
    page.fill("#confirm", PASSWORD)
    page.get_by_role("button", name="Set password").click()
    page.wait_for_url(f"{url}/")
    assert "Your assignments" in page.inner_text("h1")
    # Log out, then in again with the password.
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/login")
    page.fill("#login", "alice")
    page.fill("#password", "wrong password!")
    page.get_by_role("button", name="Log in").click()
    assert "wrong login or password" in page.inner_text("main")
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{url}/")
    table = page.inner_text("table")
    assert "Softmax classifier" in table and "not submitted" in table
    assert "Slack days left" in page.inner_text("main")

    page.get_by_role("link", name="Softmax classifier").click()
    page.wait_for_url("**/assignments/softmax")
    sample = service["root"] / "solutions" / "softmax" / "samples" / "correct.py"
    upload = service["tmp"] / "upload" / "softmax.py"
    upload.parent.mkdir(exist_ok=True)
    shutil.copy(sample, upload)
    _upload(page, upload)
    # The page changes state by itself: no reload (the marker survives), htmx swaps the status.
    page.evaluate("window.__same_page = true")
    first = page.get_attribute("#status", "data-state")
    assert first in ("queued", "running", "graded")
    # A function, not an expression: Playwright evals a string expression on each poll, which
    # the page's Content-Security-Policy (no 'unsafe-eval') refuses.
    page.wait_for_function(
        "() => document.querySelector('#status').dataset.state === 'graded'", timeout=180_000)
    assert page.evaluate("window.__same_page") is True, "the page was reloaded"
    score = page.inner_text("#score")
    got, _, total = score.partition("/")
    assert float(total) > 0 and float(got) >= 0.9 * float(total), score  # the correct sample
    # Whether it counts and its late days: as the API says (the demo course's due date may be
    # past, so these are not fixed numbers); the page's session cookie reads the API too.
    api = page.request.get(f"{url}/api/v1/submissions/{page.url.rsplit('/', 1)[1]}").json()
    assert page.inner_text("#counts") == ("yes" if api["counts"] else "no")
    assert page.inner_text("#late-days") == str(api["late_days"])
    tests = page.locator("article.test")
    assert tests.count() >= 3
    assert "passed" in tests.first.inner_text()
    # Polling stopped: the final fragment has no trigger.
    assert page.get_attribute("#status", "hx-trigger") is None
    # The attempt is listed on the assignment page.
    page.goto(f"{url}/assignments/softmax")
    assert "#1" in page.inner_text("table") and "graded" in page.inner_text("table")
    page.close()


def test_a_script_in_student_output_is_shown_and_never_runs(browser, service):
    url = service["url"]
    context = browser.new_context()
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{url}/login")
    page.fill("#login", "alice")
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{url}/")
    page.goto(f"{url}/assignments/softmax")
    hostile = service["tmp"] / "hostile" / "softmax.py"
    hostile.parent.mkdir(exist_ok=True)
    hostile.write_text(HOSTILE_SOFTMAX)
    _upload(page, hostile)
    page.wait_for_function(
        "() => ['graded', 'not_gradable'].includes("
        "document.querySelector('#status').dataset.state)", timeout=180_000)
    text = page.inner_text("#status")
    assert "<script>window.__pwned = 1" in text, "the payload is shown as text"
    assert page.evaluate("window.__pwned") is None
    assert page.title() != "pwned" and not dialogs
    # No element was made from the payload: it is text inside the output, not markup.
    assert page.locator("#status script").count() == 0
    assert page.locator("#status img").count() == 0
    context.close()


def test_pages_fit_a_phone_and_forms_refuse_a_missing_csrf_token(browser, service):
    import httpx

    url = service["url"]
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    page = context.new_page()
    page.goto(f"{url}/login")
    page.fill("#login", "alice")
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{url}/")
    for path in ("/", "/assignments/softmax"):
        page.goto(f"{url}{path}")
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{path} scrolls sideways on a phone by {overflow}px"
    # Every input has a label a screen reader can announce.
    unlabeled = page.evaluate("""[...document.querySelectorAll('input:not([type=hidden])')]
        .filter(i => !(i.labels && i.labels.length)).map(i => i.name)""")
    assert unlabeled == []
    context.close()
    # A cross-site form post carries the cookies but cannot know the token.
    r = httpx.post(f"{url}/login", data={"login": "alice", "password": PASSWORD})
    assert r.status_code == 403 and "CSRF" in r.text
    # Another student's submission does not exist for you.
    with httpx.Client(base_url=url) as client:
        page_html = client.get("/login").text
        token = page_html.split('name="csrf_token" value="')[1].split('"')[0]
        r = client.post("/login", data={"login": "alice", "password": PASSWORD,
                                        "csrf_token": token, "next": "/"})
        assert r.status_code == 303
        assert client.get("/submissions/999999").status_code == 404
