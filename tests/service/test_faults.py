"""Faults with real processes: `autograder serve` SIGKILLed right after a 202, a worker
SIGKILLed in the middle of a job, a frozen worker whose late result must be discarded, and a
job the platform fails three times. Every acknowledged submission ends graded, recorded once."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from autograder.errors import PlatformError
from autograder.service import queue
from autograder.service.auth import issue_api_token
from autograder.service.models import GradingJob, JobState
from autograder.service.workers import JobRunner
from gradebook import models as gm
from autograder.service.app import open_database
from tests.service.conftest import (CORRECT, ServeProcess, build_course, make_service,
                                    open_service_db, settings_for, wait_state)

pytestmark = pytest.mark.slow
TERMINAL = {"graded", "not_gradable", "system_error", "superseded"}


def _children(pid: int) -> dict[int, str]:
    """Child processes of ``pid`` with their command lines."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                found[int(entry)] = Path(f"/proc/{entry}/cmdline").read_bytes().decode(
                    errors="replace").replace("\0", " ")
        except (OSError, ValueError, IndexError):
            continue
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _job_row(db_url: str, course: Path, submission_id: int) -> tuple[GradingJob, int]:
    db = open_database(settings_for(course, db_url))
    try:
        with db.read() as s:
            job = s.scalar(sa.select(GradingJob).where(GradingJob.submission_id == submission_id))
            s.expunge(job)
            runs = s.scalar(sa.select(sa.func.count(gm.GradingRun.id))
                            .where(gm.GradingRun.submission_id == submission_id))
        return job, runs
    finally:
        db.close()


def _setup(tmp_path: Path, sleep_s: float = 0.0) -> tuple[Path, str, str]:
    course = build_course(tmp_path / "course", sleep_s=sleep_s)
    url = f"sqlite:///{tmp_path / 'service.sqlite'}"
    db = open_service_db(course, url)
    token = issue_api_token(db, "alice")
    db.close()
    return course, url, token


def test_sigkill_of_the_service_right_after_a_202(tmp_path):
    course, url, token = _setup(tmp_path)
    h = {"Authorization": f"Bearer {token}"}
    first = ServeProcess(course, url, workers=1).start()
    try:
        workers = list(_children(first.proc.pid))
        r = httpx.post(f"{first.url}/api/v1/assignments/toy/submissions", headers=h,
                       files={"files": ("toy.py", CORRECT)})
        assert r.status_code == 202
        first.kill()  # SIGKILL, right after the acknowledgement
        sid = r.json()["id"]
        deadline = time.monotonic() + 15
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(p) for p in workers), "workers outlived their service"
    finally:
        first.stop()
    second = ServeProcess(course, url, workers=1).start()
    try:
        with httpx.Client(base_url=second.url) as c:
            body = wait_state(c, h, sid, TERMINAL, timeout=120)
        assert body["state"] == "graded" and body["score"] == 1
        job, runs = _job_row(url, course, sid)
        assert runs == 1 and job.state == JobState.GRADED

        # The terminal client, from a release folder, against the same service.
        release = tmp_path / "release-toy"
        release.mkdir()
        (release / "assignment.toml").write_text(
            (course / "assignments/toy/assignment.toml").read_text())
        (release / "toy.py").write_bytes(CORRECT)
        from autograder.cli import main

        cwd = os.getcwd()
        os.chdir(release)
        try:
            out = CliRunner().invoke(main, ["submit", "toy", "--server", second.url,
                                            "--token", token, "--timeout", "120"])
        finally:
            os.chdir(cwd)
        assert out.exit_code == 0, out.output
        assert "attempt 2: 1 / 4" in out.output and "3 hidden tests" in out.output
        assert "CANARY" not in out.output
        bad = CliRunner().invoke(main, ["submit", "toy", str(release / "toy.py"), "--server",
                                        second.url, "--token", "ag_wrong", "--no-wait"])
        assert bad.exit_code == 1 and "not valid" in bad.output
    finally:
        second.stop()


def _running_job(url: str, course: Path, sid: int, timeout: float = 120) -> GradingJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job, _ = _job_row(url, course, sid)
        if job.state == JobState.RUNNING:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job of submission {sid} never started")


def _worker_pid(serve: ServeProcess, name: str) -> int:
    for pid, cmdline in _children(serve.proc.pid).items():
        if f"--name {name} " in cmdline + " ":
            return pid
    raise AssertionError(f"no worker process named {name}")


@pytest.mark.parametrize("how", ["sigkill", "sigstop"])
def test_a_worker_lost_mid_job_is_taken_over_and_recorded_once(tmp_path, how):
    # The public test sleeps 4 s on the trusted side: the job is surely mid-way when hit.
    course, url, token = _setup(tmp_path, sleep_s=4.0)
    h = {"Authorization": f"Bearer {token}"}
    serve = ServeProcess(course, url, workers=2, lease_s=3.0).start()
    try:
        r = httpx.post(f"{serve.url}/api/v1/assignments/toy/submissions", headers=h,
                       files={"files": ("toy.py", CORRECT)})
        sid = r.json()["id"]
        job = _running_job(url, course, sid)
        victim = _worker_pid(serve, job.lease_owner)
        time.sleep(0.5)
        hit = time.monotonic()
        os.kill(victim, signal.SIGKILL if how == "sigkill" else signal.SIGSTOP)
        try:
            with httpx.Client(base_url=serve.url) as c:
                body = wait_state(c, h, sid, TERMINAL, timeout=120)
            took = time.monotonic() - hit
            if how == "sigstop":
                os.kill(victim, signal.SIGCONT)  # it wakes up and reports a stale result
                time.sleep(6)
        finally:
            if how == "sigstop" and _alive(victim):
                os.kill(victim, signal.SIGCONT)
        assert body["state"] == "graded" and body["score"] == 1
        assert took < 60, f"taken over after {took:.0f} s"
        job, runs = _job_row(url, course, sid)
        assert runs == 1, "recorded more than once"
        assert (job.attempts, job.failures) == (2, 1)
        assert "stopped renewing its lease" in job.error
        assert "-try2-" in job.run_id  # the second attempt's result is the one kept
    finally:
        serve.stop()


def test_a_job_the_platform_fails_three_times_ends_system_error(tmp_path, monkeypatch):
    course = build_course(tmp_path / "course")
    svc = make_service(course, f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        sid = svc.submit("alice").json()["id"]
        runner = JobRunner(svc.settings, svc.db, "flaky")

        class Broken:
            def grade(self, *a, **k):
                raise PlatformError("the fork server died")

        monkeypatch.setattr(runner, "grader", lambda name: Broken())
        outcomes = [runner.grade(queue.claim(svc.db, "flaky")) for _ in range(3)]
        assert outcomes == ["failed (queued)", "failed (queued)", "failed (system_error)"]
        assert queue.claim(svc.db, "flaky") is None
        body = svc.client.get(f"/api/v1/submissions/{sid}", headers=svc.auth("alice")).json()
        assert body["state"] == "system_error" and "not counted" in body["message"]
        assert "fork server" not in repr(body)  # the platform's details are for staff
        # Given back: the student may submit again at once, and it is graded.
        assert svc.submit("alice").status_code == 202
    finally:
        svc.db.close()


def test_files_in_an_upload_are_never_imported_by_the_trusted_side(tmp_path):
    """An upload holding conftest.py, sitecustomize.py and a fake ``autograder`` package: the
    worker grades it normally and none of them runs on the trusted side (each would leave a
    marker file; the sandbox cannot write there anyway, so a marker means the grader ran it)."""
    import io
    import zipfile

    marker = tmp_path / "markers"
    marker.mkdir()
    payload = f"open({str(marker)!r} + '/' + __name__, 'w').write('ran')\n"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("toy.py", CORRECT)
        for name in ("conftest.py", "sitecustomize.py", "usercustomize.py",
                     "autograder/__init__.py", "pytest.py", "numpy.py"):
            zf.writestr(name, payload)
    course = build_course(tmp_path / "course")
    svc = make_service(course, f"sqlite:///{tmp_path / 'db.sqlite'}")
    runner = JobRunner(svc.settings, svc.db, "isolated")
    try:
        sid = svc.submit("alice", buf.getvalue(), name="work.zip").json()["id"]
        assert runner.run_once()
        body = svc.client.get(f"/api/v1/submissions/{sid}", headers=svc.auth("alice")).json()
        assert body["state"] == "graded" and body["tests"][0]["status"] == "passed", body
        assert list(marker.iterdir()) == []
    finally:
        runner.close()
        svc.db.close()


def test_stopping_the_service_mid_job_gives_the_job_back_uncounted(tmp_path):
    course, url, token = _setup(tmp_path, sleep_s=4.0)
    h = {"Authorization": f"Bearer {token}"}
    serve = ServeProcess(course, url, workers=1, lease_s=30.0).start()
    try:
        r = httpx.post(f"{serve.url}/api/v1/assignments/toy/submissions", headers=h,
                       files={"files": ("toy.py", CORRECT)})
        sid = r.json()["id"]
        _running_job(url, course, sid)
        time.sleep(0.5)
    finally:
        serve.stop()  # Ctrl-C: the worker is stopped mid-job
    job, runs = _job_row(url, course, sid)
    assert (job.state, job.failures, runs) == (JobState.QUEUED, 0, 0)
    again = ServeProcess(course, url, workers=1, lease_s=30.0).start()
    try:
        with httpx.Client(base_url=again.url) as c:
            body = wait_state(c, h, sid, TERMINAL, timeout=120)
        assert body["state"] == "graded"
        job, runs = _job_row(url, course, sid)
        assert (job.attempts, job.failures, runs) == (2, 0, 1)
    finally:
        again.stop()
