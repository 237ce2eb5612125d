"""Fixtures for the grading service: a tiny course whose hidden tests carry canary strings, a
database on SQLite and on PostgreSQL, an app with a test client, and a real `autograder serve`
subprocess on a free loopback port."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.services import empty_database

REPO = Path(__file__).resolve().parents[2]
UTC = dt.timezone.utc

# Strings that must never reach a student before their test's visibility allows.
CANARIES = {
    "hidden": ("CANARYHIDDENNAME", "CANARYHIDDENMESSAGE", "CANARYHIDDENOUTPUT"),
    "after_due_date": ("CANARYDUENAME", "CANARYDUEMESSAGE", "CANARYDUEOUTPUT"),
    "after_published": ("CANARYPUBNAME", "CANARYPUBMESSAGE", "CANARYPUBOUTPUT"),
}

PUBLIC_TESTS = '''
import pytest

@pytest.mark.points(1)
def test_double(student):
    assert student.double(2) == 4, "double(2) should be 4: return 2 * x"
'''

HIDDEN_TEMPLATE = '''
@pytest.mark.points(1)
@pytest.mark.visibility("{visibility}")
def test_{name}(student):
    student.shout("{output}")  # a hidden input the student's code prints: the test's output
    assert student.double(5) == 11, "{message}"
'''

SHOUT = "\n\ndef shout(s):\n    print(s)\n"
REFERENCE = "def double(x):\n    # BEGIN SOLUTION\n    return 2 * x\n    # END SOLUTION\n" + SHOUT
CORRECT = b"def double(x):\n    return 2 * x\n" + SHOUT.encode()
WRONG = b"def double(x):\n    return x + 2 + 1\n" + SHOUT.encode()


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))


def build_course(root: Path, *, due: str = "2030-01-01T00:00:00", limit: int | None = None,
                 published: str | None = None, sleep_s: float = 0.0) -> Path:
    """A course with assignment ``toy`` (module toy.py): one public test and one always-failing
    hidden test of each non-public visibility, whose name, message and output are canaries.
    ``sleep_s`` makes the public test sleep on the trusted side (a job that takes a while)."""
    _write(root / "course.toml", 'name = "svc-test"\ntimezone = "UTC"\n')
    service = ""
    if limit is not None or published is not None:
        service = "[service]\n"
        service += f"max_submissions_per_hour = {limit}\n" if limit is not None else ""
        service += f"grades_published = {published}\n" if published is not None else ""
    _write(root / "assignments/toy/assignment.toml",
           f'name = "toy"\nmodules = ["toy"]\ndue = {due}\npoints = 4\n'
           f'[resources]\ntest_time_limit_s = 20\ntime_limit_s = 60\nmemory_mb = 512\n{service}')
    public = PUBLIC_TESTS
    if sleep_s:
        public = public.replace("def test_double(student):\n",
                                f"def test_double(student):\n    import time\n"
                                f"    time.sleep({sleep_s})\n")
    _write(root / "assignments/toy/tests/test_public.py", public)
    _write(root / "solutions/toy/toy.py", REFERENCE)
    hidden = "import pytest\n" + "".join(
        HIDDEN_TEMPLATE.format(visibility=v, name=n, message=msg, output=out)
        for v, (n, msg, out) in CANARIES.items())
    _write(root / "solutions/toy/tests/test_hidden.py", hidden)
    _write(root / "roster.csv", "id,name,email,section\nalice,Alice A,alice@x.edu,A\n"
                                "bob,Bob B,bob@x.edu,A\ncarol,Carol C,carol@x.edu,B\n")
    return root


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: an SQLite file, or a fresh PostgreSQL schema dropped afterwards."""
    with empty_database(request.param, tmp_path, "service") as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'service.sqlite'}"


def settings_for(course: Path, db_url: str, **kw):  # type: ignore[no-untyped-def]
    from autograder.service.settings import Settings

    kw.setdefault("workers", 1)
    return Settings(course_root=course, db_url=db_url, **kw)


def open_service_db(course: Path, db_url: str):  # type: ignore[no-untyped-def]
    """The service database with the course's assignments synced and its roster imported."""
    from autograder.service.app import open_database
    from gradebook.csvfiles import parse_roster

    db = open_database(settings_for(course, db_url))
    db.gb.import_roster(parse_roster(course / "roster.csv"))
    return db


@dataclass
class Service:
    """An app with a test client and a token per student."""

    client: object
    db: object
    settings: object
    tokens: dict[str, str]

    def auth(self, student: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[student]}"}

    def submit(self, student: str, data: bytes = CORRECT, name: str = "toy.py",
               assignment: str = "toy"):  # type: ignore[no-untyped-def]
        return self.client.post(f"/api/v1/assignments/{assignment}/submissions",
                                headers=self.auth(student), files={"files": (name, data)})


def make_service(course: Path, db_url: str, **settings_kw) -> Service:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from autograder.service.app import create_app
    from autograder.service.auth import issue_api_token

    db = open_service_db(course, db_url)
    settings = settings_for(course, db_url, **settings_kw)
    client = TestClient(create_app(settings, db=db))
    tokens = {s: issue_api_token(db, s) for s in ("alice", "bob", "carol")}
    return Service(client, db, settings, tokens)


@pytest.fixture
def course(tmp_path: Path) -> Path:
    return build_course(tmp_path / "course")


@pytest.fixture
def service(course: Path, sqlite_url: str) -> Iterator[Service]:
    svc = make_service(course, sqlite_url)
    yield svc
    svc.db.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServeProcess:
    """`autograder serve` as a real subprocess on 127.0.0.1 (its own process group)."""

    def __init__(self, course: Path, db_url: str, workers: int = 1, lease_s: float = 3.0,
                 log: Path | None = None) -> None:
        self.course, self.db_url, self.workers, self.lease_s = course, db_url, workers, lease_s
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log or course / f"serve-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> ServeProcess:
        cmd = [sys.executable, "-m", "autograder.cli", "serve", "--host", "127.0.0.1",
               "--port", str(self.port), "--workers", str(self.workers),
               "--course", str(self.course), "--db", self.db_url,
               "--lease-seconds", str(self.lease_s)]
        out = open(self.log, "ab")
        self.proc = subprocess.Popen(cmd, cwd=self.course, stdout=out, stderr=out,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"serve did not answer in {timeout} s: {self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the service process only (its workers notice and stop)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.proc is not None:
            try:  # anything of its group still alive (a worker) goes too
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def wait_state(client, headers: dict, submission_id: int, states: set[str],  # type: ignore[no-untyped-def]
               timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        body = client.get(f"/api/v1/submissions/{submission_id}", headers=headers).json()
        if body.get("state") in states:
            return body
        time.sleep(0.1)
    raise AssertionError(f"submission {submission_id} still {body} after {timeout} s")
