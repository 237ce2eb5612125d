"""`make screenshots`: PNGs of the staff pages (and the student feedback page) at 1280 px and at
phone width, written to docs/screenshots/.

It builds the demo course in a temporary folder, starts `autograder serve` on 127.0.0.1 with
one local worker, submits the demo samples as five students, waits for their grades, adds the
things a TA page shows (an extension, an accommodation, an override, a regrade, a regrade
request), logs in as the instructor in Debian's Chromium (Playwright, never
`playwright install`) and photographs each page of PAGES.

The same seeding serves the browser test (tests/service/test_staff_browser.py).

    python scripts/screenshots.py [--out docs/screenshots] [--keep DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PASSWORD = "staff demo password"
STAFF = {"grader": "grace@example.edu", "ta": "tom@example.edu",
         "instructor": "ines@example.edu"}
STUDENTS = [("alice", "Alice Liddell"), ("bob", "Bob Builder"), ("carol", "Carol Danvers"),
            ("dave", "Dave Bowman"), ("erin", "Erin Brockovich")]
#: What each student submits (a sample of solutions/softmax/samples).
#: alice's first attempt is superseded by her second while it waits (a newer one replaces it).
SUBMITS = [("alice", "correct.py"), ("alice", "buggy.py"), ("bob", "correct.py"),
           ("carol", "correct.py"), ("dave", "buggy.py"), ("erin", "correct.py")]
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}

#: The pages photographed: (file name, path). ``{submission}`` is a graded submission with a
#: regrade and a request, ``{request}`` that request. Another page adds its line here.
PAGES: list[tuple[str, str]] = [
    ("staff-home", "/staff"),
    ("submissions", "/staff/submissions"),
    ("submission", "/staff/submissions/{submission}"),
    ("regrade-requests", "/staff/regrade-requests?state=all"),
    ("regrade-request", "/staff/regrade-requests/{request}"),
    ("extensions", "/staff/extensions"),
    ("accommodations", "/staff/accommodations"),
    ("audit", "/staff/audit"),
    ("operations", "/staff/operations"),
    ("people", "/staff/people"),
    ("lti", "/staff/lti"),
]


@dataclass
class StaffDemo:
    """A running service over the demo course, with staff who have passwords and graded work."""

    tmp: Path
    root: Path
    url: str = ""
    proc: subprocess.Popen | None = None
    tokens: dict[str, str] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _open_db(root: Path):  # type: ignore[no-untyped-def]
    from autograder.service.app import open_database
    from autograder.service.settings import Settings

    return open_database(Settings(course_root=root))


def build(tmp: Path) -> StaffDemo:
    """The demo course with a release, a roster, staff with passwords and students' tokens."""
    from autograder.authoring.release import build_release
    from autograder.course import Course
    from autograder.demo import build_demo_course
    from autograder.service.auth import accept_invitation, create_invitation, issue_api_token
    from autograder.service.permissions import invite_staff
    from gradebook.csvfiles import RosterRow

    root = build_demo_course(tmp / "course")
    build_release(Course(root).assignment("softmax"))
    db = _open_db(root)
    try:
        db.gb.import_roster([RosterRow(i + 2, sid, name, f"{sid}@example.edu", "A" if i < 3 else "B")
                             for i, (sid, name) in enumerate(STUDENTS)])
        for role, email in STAFF.items():
            token = invite_staff(db, email, role, name=email.split("@")[0].title())
            accept_invitation(db, token, PASSWORD)
        demo = StaffDemo(tmp=tmp, root=root)
        demo.tokens = {sid: issue_api_token(db, sid) for sid, _ in STUDENTS}
        accept_invitation(db, create_invitation(db, "alice"), PASSWORD)
    finally:
        db.close()
    return demo


def start(demo: StaffDemo, timeout: float = 120.0) -> None:
    """`autograder serve` on a free loopback port, one worker."""
    import httpx

    port = _free_port()
    log = open(demo.tmp / "serve.log", "wb")
    demo.proc = subprocess.Popen(
        [sys.executable, "-m", "autograder.cli", "serve", "--course", str(demo.root), "--port",
         str(port), "--workers", "1"], cwd=demo.tmp, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    demo.url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{demo.url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if demo.proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the service did not start:\n"
                               + (demo.tmp / "serve.log").read_text(errors="replace")[-3000:])
        time.sleep(0.3)


def _wait_graded(demo: StaffDemo, timeout: float = 300.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = httpx.get(f"{demo.url}/healthz", timeout=5).json()["jobs"]
        if not jobs.get("queued") and not jobs.get("running"):
            return
        time.sleep(0.5)
    raise RuntimeError(f"grading did not finish in {timeout} s")


def seed(demo: StaffDemo) -> None:
    """Submit the samples through the API, wait for the grades, then add what the TA pages
    show: an extension, an accommodation, an override, a regrade and a regrade request."""
    import httpx

    from autograder.service import staff_views
    from autograder.service.models import ServiceUser

    samples = demo.root / "solutions" / "softmax" / "samples"
    for sid, sample in SUBMITS:
        r = httpx.post(f"{demo.url}/api/v1/assignments/softmax/submissions",
                       headers={"Authorization": f"Bearer {demo.tokens[sid]}"},
                       files={"files": ("softmax.py", (samples / sample).read_bytes())},
                       timeout=30)
        r.raise_for_status()
        demo.ids[sid] = r.json()["id"]  # the student's newest attempt
        time.sleep(0.3)
    _wait_graded(demo)
    db = _open_db(demo.root)
    try:
        ta, prof = STAFF["ta"], STAFF["instructor"]
        db.gb.grant_extension("dave", "softmax", days=3, reason="hospital visit (note on file)",
                              granted_by=ta)
        db.gb.set_accommodation("carol", time_factor=1.5, extra_minutes=10,
                                reason="disability services letter", set_by=prof)
        detail = staff_views.submission_detail(_Ctx(db), demo.ids["alice"])
        failing = [t for t in detail["tests"] if t["score"] < t["max_score"]]
        if failing:
            t = failing[0]
            db.gb.override_test("alice", "softmax", t["name"], float(t["max_score"]) / 2,
                                comment="partial credit: the gradient is right up to the "
                                        "regularisation term", by=STAFF["grader"])
        visible = {t["name"] for t in detail["tests"] if t["visibility"] in ("visible", "public")}
        with db.read() as s:
            alice_pk = s.query(ServiceUser).filter_by(login="alice").one().student_pk
        demo.ids["request"] = staff_views.open_regrade_request(
            db, submission_id=demo.ids["alice"], student_pk=alice_pk, login="alice",
            test_name=sorted(visible)[0] if visible else detail["tests"][0]["name"],
            body="I think my loss matches the reference; the tolerance looks too strict?",
            visible_tests=visible or {detail["tests"][0]["name"]})
        staff_views.reply_regrade_request(db, demo.ids["request"], author=STAFF["grader"],
                                          role="grader", body="Looking at it now.",
                                          resolve=False)
        staff_views.request_regrades(db, [demo.ids["alice"], demo.ids["bob"]], by=ta,
                                     reason="re-run after updating test tolerances")
    finally:
        db.close()
    demo.ids["submission"] = demo.ids["alice"]
    _wait_graded(demo)


class _Ctx:
    """The little of the app's ServiceContext that submission_detail reads."""

    def __init__(self, db) -> None:  # type: ignore[no-untyped-def]
        self.db = db


def login(page, url: str, who: str, password: str = PASSWORD,  # type: ignore[no-untyped-def]
          lands: str = "/staff") -> None:
    """Log in through the login form (staff land on /staff, students on /)."""
    page.goto(f"{url}/login")
    page.fill("#login", who)
    page.fill("#password", password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{url}{lands}")


def launch(playwright):  # type: ignore[no-untyped-def]
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


#: A long page (a submission with every test, its files and diff) is cut here: the PNGs stay small.
MAX_HEIGHT = 4000


def _photograph(page, target: Path, width: int) -> None:  # type: ignore[no-untyped-def]
    height = min(MAX_HEIGHT, page.evaluate("document.documentElement.scrollHeight"))
    page.screenshot(path=str(target), full_page=True,
                    clip={"x": 0, "y": 0, "width": width, "height": height})


def shoot(demo: StaffDemo, out: Path) -> list[Path]:
    """Log in as the instructor and photograph every page of PAGES at each width."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    written = []
    with sync_playwright() as p:
        browser = launch(p)
        try:
            for kind, (width, height) in WIDTHS.items():
                context = browser.new_context(viewport={"width": width, "height": height},
                                              device_scale_factor=1)
                page = context.new_page()
                login(page, demo.url, STAFF["instructor"])
                for name, path in PAGES:
                    page.goto(demo.url + path.format(**demo.ids))
                    page.wait_for_load_state("networkidle")
                    target = out / f"{name}-{kind}.png"
                    _photograph(page, target, width)
                    written.append(target)
                context.close()
                # the student's feedback page, with the regrade request thread
                student = browser.new_context(viewport={"width": width, "height": height})
                spage = student.new_page()
                login(spage, demo.url, "alice", lands="/")
                spage.goto(f"{demo.url}/submissions/{demo.ids['submission']}")
                target = out / f"student-feedback-{kind}.png"
                _photograph(spage, target, width)
                written.append(target)
                # the bottom of that page: asking staff about a test
                target = out / f"student-regrade-request-{kind}.png"
                spage.locator("#regrade-requests").screenshot(path=str(target))
                written.append(target)
                student.close()
        finally:
            browser.close()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--keep", type=Path, default=None,
                        help="build the course here and keep it (default: a temporary folder)")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).is_file():
        print(f"{CHROMIUM} is missing: install Debian's chromium package", file=sys.stderr)
        return 1
    tmp = args.keep or Path(tempfile.mkdtemp(prefix="ag-screens-"))
    tmp.mkdir(parents=True, exist_ok=True)
    demo = build(tmp)
    try:
        start(demo)
        t0 = time.monotonic()
        seed(demo)
        print(f"seeded in {time.monotonic() - t0:.0f} s: {demo.url}")
        for path in shoot(demo, args.out):
            print(path.relative_to(REPO) if path.is_relative_to(REPO) else path)
        # The mini-exam taken in the browser, on its own service whose clock is set inside the
        # exam's window (exam-*.png).
        from tests.service.test_exam_browser import shoot_exam

        for path in shoot_exam(args.out, tmp / "exam"):
            print(path.relative_to(REPO) if path.is_relative_to(REPO) else path)
    finally:
        demo.stop()
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
