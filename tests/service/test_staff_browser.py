"""Each staff role walks through its pages in a real browser: Playwright for Python driving
Debian's Chromium (``/usr/bin/chromium``; never ``playwright install``) against
``autograder serve`` over the demo course, seeded as ``make screenshots`` seeds it (five
students' graded submissions, an extension, an accommodation, an override, a regrade, a regrade
request).

* a grader reads a submission (hidden tests included), overrides a test with a comment, answers
  a regrade request, and is refused the operations page;
* a TA filters the submissions without a reload (HTMX), regrades one and watches the change
  appear, grants an extension, and reads the operations page;
* an instructor invites a grader, reads the audit log, and the pages fit a phone.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from tests.support.services import need

pytestmark = [pytest.mark.needs_service("chromium"), pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]


def _screens():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("screenshots", REPO / "scripts/screenshots.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["screenshots"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


screens = _screens()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):  # type: ignore[no-untyped-def]
    need("chromium", Path(screens.CHROMIUM).is_file(),
         f"{screens.CHROMIUM} is missing (Debian package chromium)")
    d = screens.build(tmp_path_factory.mktemp("staffbrowser"))
    try:
        screens.start(d)
        screens.seed(d)
        yield d
    finally:
        d.stop()


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need("chromium", False, "the playwright package is not installed (pip install -e '.[dev]')")
        raise
    with sync_playwright() as p:
        b = screens.launch(p)
        yield b
        b.close()


def _page(browser, demo, role: str, width: int = 1280):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.dialogs = dialogs
    screens.login(page, demo.url, screens.STAFF[role])
    return page


def _nav_to(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """Follow a link of the staff navigation bar."""
    page.get_by_role("navigation", name="Staff").get_by_role("link", name=name).click()
    page.wait_for_load_state()


def _nav(page) -> set[str]:  # type: ignore[no-untyped-def]
    return {a.strip() for a in page.locator("nav.staff-nav a").all_inner_texts()}


def test_grader_grades(browser, demo):
    url = demo.url
    page = _page(browser, demo, "grader")
    assert _nav(page) == {"Submissions", "Regrade requests"}
    _nav_to(page, "Submissions")
    page.wait_for_url("**/staff/submissions")
    assert page.locator("#submissions tbody tr").count() == len(screens.SUBMITS)
    page.goto(f"{url}/staff/submissions/{demo.ids['dave']}")
    tests = page.locator("article.test")
    assert tests.count() >= 3
    # every test, hidden ones too, each with its visibility
    visibilities = " ".join(page.locator("article.test .pill").all_inner_texts())
    assert "hidden" in visibilities or "after_due_date" in visibilities
    assert page.locator(".code .highlight").count() >= 1
    assert page.locator("table.diff").count() >= 1
    # override a failing test: the comment is required by the form and by the server
    first = tests.first
    first.locator("summary").click()
    first.get_by_label("New score").fill("0.5")
    first.get_by_role("button", name="Save override").click()
    assert page.url.endswith(f"/staff/submissions/{demo.ids['dave']}"), "sent without comment"
    first.get_by_label("Comment").fill("accepted after discussion in office hours")
    first.get_by_role("button", name="Save override").click()
    page.wait_for_url("**flash=*")
    assert "score set to 0.5" in page.inner_text("main")
    assert "accepted after discussion in office hours" in page.inner_text("main")
    # answer the regrade request
    _nav_to(page, "Regrade requests")
    page.locator("table a.mono").first.click()
    assert "tolerance looks too strict" in page.inner_text("main")
    page.get_by_label("Answer").fill("The tolerance is 1e-6 on purpose; see the handout.")
    page.get_by_role("button", name="Send and resolve").click()
    page.wait_for_url("**flash=*")
    assert "Answered and resolved" in page.inner_text("main")
    # not a grader's pages
    response = page.goto(f"{url}/staff/operations")
    assert response is not None and response.status == 403
    assert not page.dialogs
    page.context.close()


def test_ta_filters_regrades_and_runs_the_course(browser, demo):
    url = demo.url
    page = _page(browser, demo, "ta")
    assert {"Submissions", "Extensions", "Accommodations", "Audit log",
            "Operations"} <= _nav(page)
    assert "Staff & roster" not in _nav(page)
    page.goto(f"{url}/staff/submissions")
    page.evaluate("window.__same_page = true")
    page.get_by_label("Student").fill("bob")
    # Functions, not expressions: Playwright evals a string expression on each poll, which the
    # page's Content-Security-Policy (no 'unsafe-eval') refuses.
    page.wait_for_function("() => document.querySelectorAll('#submissions tbody tr').length === 1")
    assert "bob" in page.inner_text("#submissions tbody")
    page.get_by_label("Late").select_option("on_time")
    page.wait_for_function("() => location.search.includes('late=on_time')")
    assert page.evaluate("window.__same_page") is True, "filtering reloaded the page"
    assert "late=on_time" in page.url and "student=bob" in page.url
    # regrade bob's submission and watch the result appear without reloading
    page.goto(f"{url}/staff/submissions/{demo.ids['bob']}")
    before = page.locator(".regrade").count()
    page.get_by_role("button", name="Regrade this submission").click()
    page.wait_for_url("**flash=*")
    page.evaluate("window.__same_page = true")
    page.wait_for_function(
        f"() => document.querySelectorAll('.regrade[data-state=graded]').length === {before + 1}",
        timeout=180_000)
    assert page.evaluate("window.__same_page") is True
    assert "→" in page.locator(".regrade").first.inner_text()
    # an extension
    _nav_to(page, "Extensions")
    page.get_by_label("Student").fill("erin")
    page.get_by_label("Days later").fill("2")
    page.get_by_label("Reason").fill("family emergency")
    page.get_by_role("button", name="Grant").click()
    page.wait_for_url("**flash=*")
    assert "erin may submit softmax until" in page.inner_text("main")
    # operations: the service's worker is alive
    _nav_to(page, "Operations")
    assert page.locator("#workers .level-ok").count() >= 1
    assert "recording" in page.inner_text("#phases")
    page.context.close()


def test_instructor_invites_audits_and_the_pages_fit_a_phone(browser, demo):
    url = demo.url
    page = _page(browser, demo, "instructor")
    assert {"Staff & roster", "Operations", "Audit log"} <= _nav(page)
    _nav_to(page, "Staff & roster")
    page.get_by_label("E-mail").fill("new.grader@example.edu")
    page.get_by_label("Role").select_option("grader")
    page.get_by_role("button", name="Invite").click()
    link = page.get_by_label("Invitation link for new.grader@example.edu").input_value()
    assert "/invite/" in link
    _nav_to(page, "Audit log")
    audit = page.inner_text("#audit")
    for seen in ("extension granted", "accommodation set", "test score overridden",
                 "staff.invite"):
        assert seen in audit, seen
    page.context.close()
    # a phone: no page scrolls sideways as a whole (wide tables scroll in their own box)
    phone = _page(browser, demo, "instructor", width=390)
    for path in ("/staff/submissions", f"/staff/submissions/{demo.ids['alice']}",
                 "/staff/operations", "/staff/audit", "/staff/people"):
        phone.goto(url + path)
        overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"{path} is {overflow}px wider than the phone"
    phone.context.close()
