"""The distributed engine with real components: a real ``redis-server`` (our own, on a free
port, so the test can restart it), real ``autograder worker`` processes started in separate
folders standing for two machines, the real process sandbox, and real kills.

What must hold: every job is graded and recorded exactly once through a Redis restart and a
worker SIGKILLed mid-job (its job is taken over by the other machine once the lease lapses);
GPU jobs wait for a GPU worker without delaying any CPU job; lost messages are re-published.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.services import need

pytestmark = pytest.mark.needs_service("redis")

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "solutions" / "softmax" / "samples"


# --- a Redis server of our own ---------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """``redis-server`` on loopback, without persistence: a restart loses every message, as a
    crash of an unpersisted broker would."""

    def __init__(self, workdir: Path) -> None:
        self.port = _free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def redis_server(tmp_path):
    need("redis", shutil.which("redis-server") is not None,
         "redis-server is not installed (Debian package redis-server)")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


# --- a course the service grades -------------------------------------------------------------

STUDENTS = [f"s{i:02d}" for i in range(1, 31)]


@pytest.fixture
def service_course(tmp_path):
    """The softmax assignment released in a fresh course, a roster, the service's database."""
    from autograder.authoring.release import build_release
    from autograder.course import Course
    from autograder.demo import build_demo_course
    from autograder.service.database import ServiceDB
    from autograder.service.settings import Settings
    from gradebook.csvfiles import RosterRow

    root = build_demo_course(tmp_path / "course")
    course = Course(root)
    build_release(course.assignment("softmax"))
    settings = Settings(course_root=root)
    db = ServiceDB.open(settings.database_url(), course.config)
    db.gb.import_roster([RosterRow(i + 2, sid, f"Student {sid}", f"{sid}@example.edu")
                         for i, sid in enumerate(STUDENTS)])
    db.gb.sync_assignments(root)
    yield course, settings, db
    db.close()


def enqueue_sample(db, settings, course, student: str, sample: str, lane: str = "cpu",
                   import_s: float = 0.0) -> int:
    """Submit ``sample`` (correct.py / buggy.py) as ``student``, as the API does: staged for its
    content hash, then stored with its job in one transaction. ``import_s`` makes the module
    take that long to import (a job long enough to be caught mid-way). Returns the job id."""
    from autograder.service import queue
    from autograder.service.storage import UploadStore
    from autograder.submissions import content_hash, stage

    data = (SAMPLES / sample).read_bytes()
    if import_s:
        data = f"import time\ntime.sleep({import_s})\n".encode() + data
    assignment = course.assignment("softmax")
    with tempfile.TemporaryDirectory() as tmp:
        stage({"softmax.py": data}, Path(tmp) / "s", assignment.config.modules)
        digest = content_hash(Path(tmp) / "s")
    done = queue.enqueue(db, UploadStore(settings.uploads_dir), student=student,
                         assignment="softmax", uploads=[queue.Upload("softmax.py", data)],
                         content_hash=digest, received_at=dt.datetime.now(dt.timezone.utc),
                         lane=lane)
    return done.job_id


def jobs(db) -> list:
    from autograder.service.models import GradingJob

    with db.read() as s:
        return list(s.scalars(sa.select(GradingJob).order_by(GradingJob.id)))


def start_machine(name: str, tmp_path: Path, course, settings, broker: str,
                  lease_s: float = 4.0) -> subprocess.Popen:
    """``autograder worker`` in its own folder with its own copy of the course (a machine),
    sharing only the database and the upload store with the service."""
    machine = tmp_path / name
    shutil.copytree(course.root, machine / "course",
                    ignore=shutil.ignore_patterns("gradebook.sqlite*", "data"))
    env = {**os.environ, "AUTOGRADER_LEASE_S": str(lease_s), "PYTHONUNBUFFERED": "1"}
    log = open(machine / "worker.log", "wb")
    return subprocess.Popen(
        [sys.executable, "-m", "autograder.cli", "worker", "--broker", broker, "--name", name,
         "--concurrency", "1", "--course", str(machine / "course"),
         "--db", settings.database_url(), "--data", str(settings.uploads_dir.parent)],
        cwd=machine, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop_machine(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


# --- the tests -------------------------------------------------------------------------------

def test_sweeper_publishes_a_message_per_claimable_job_and_again_after_a_loss(
        redis_server, service_course):
    import redis

    from autograder.service.celery_engine import Sweeper, waiting_messages

    course, settings, db = service_course
    for sid, sample in zip(STUDENTS[:3], ["correct.py", "buggy.py", "correct.py"]):
        enqueue_sample(db, settings, course, sid, sample)
    enqueue_sample(db, settings, course, STUDENTS[3], "correct.py", lane="gpu")
    sweeper = Sweeper(db, redis_server.url)
    client = redis.Redis.from_url(redis_server.url)
    try:
        assert sweeper.tick() == 4
        assert waiting_messages(client) == {"cpu": 3, "gpu": 1, "regrade": 0}
        assert sweeper.tick() == 0, "a job that has its message gets no second one"
        redis_server.restart()  # every message is lost with it
        client = redis.Redis.from_url(redis_server.url)
        assert waiting_messages(client) == {"cpu": 0, "gpu": 0, "regrade": 0}
        deadline = time.monotonic() + 10
        while True:  # the sweeper's connection comes back by itself
            try:
                sent = sweeper.tick()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert sent == 4
        assert waiting_messages(client) == {"cpu": 3, "gpu": 1, "regrade": 0}
    finally:
        sweeper.stop()


def test_a_second_sweeper_stands_by_while_the_first_holds_the_lock(redis_server,
                                                                   service_course):
    from autograder.service.celery_engine import Sweeper

    course, settings, db = service_course
    enqueue_sample(db, settings, course, STUDENTS[0], "correct.py")
    first, second = Sweeper(db, redis_server.url), Sweeper(db, redis_server.url)
    try:
        assert first.tick() == 1
        enqueue_sample(db, settings, course, STUDENTS[1], "correct.py")
        assert second.tick() == 0, "only the lock holder publishes"
        assert first.tick() == 1
    finally:
        first.stop()
        second.stop()


@pytest.mark.slow
def test_two_machines_grade_every_job_once_through_a_redis_restart_and_a_worker_sigkill(
        redis_server, service_course, tmp_path):
    from autograder.service.models import JobState
    from gradebook import models as gm

    course, settings, db = service_course
    samples = ["correct.py", "buggy.py"]
    gpu_student, students = STUDENTS[0], iter(STUDENTS[1:])
    cpu_jobs: list[int] = []

    def submit_next() -> None:
        n = len(cpu_jobs)
        # Each job takes over a second, so A is not caught just as it records its result.
        cpu_jobs.append(enqueue_sample(db, settings, course, next(students), samples[n % 2],
                                       import_s=1.5))

    for _ in range(4):
        submit_next()
    gpu_job = enqueue_sample(db, settings, course, gpu_student, "correct.py", lane="gpu")
    a = start_machine("machine-a", tmp_path, course, settings, redis_server.url)
    b = start_machine("machine-b", tmp_path, course, settings, redis_server.url)
    try:
        def owners_of_graded() -> set[str]:
            return {j.lease_owner.split(":")[0] for j in jobs(db)
                    if j.state == JobState.GRADED and j.lease_owner}

        # Both machines grade (each keeps its sandbox warm), then A is killed mid-job. The
        # queue is kept topped up until then: however the two machines' start-up times fall,
        # A is sooner or later caught mid-job after both have graded (a fixed batch could be
        # drained by one machine before the other was up).
        def a_running_after_both_graded():
            current = jobs(db)
            running = [j for j in current if j.state == JobState.RUNNING
                       and j.lease_owner and j.lease_owner.split(":")[0] == "machine-a"]
            both = {"machine-a", "machine-b"} <= owners_of_graded()
            if running and both:
                return running[0].id
            if sum(j.state == JobState.QUEUED and j.id in cpu_jobs for j in current) < 2:
                submit_next()
            return None

        victim = wait_for(a_running_after_both_graded, 240, "both machines grading")
        # Each machine's worker process writes its heartbeat row: the operations page lists it.
        from autograder.service.staff_views import operations

        listed = {w["name"].split(":")[0]: w for w in operations(db)["workers"]}
        assert set(listed) == {"machine-a", "machine-b"}, listed
        assert all(w["level"] == "ok" and w["lanes"] == "cpu" for w in listed.values()), listed
        os.killpg(a.pid, signal.SIGKILL)
        a.wait()
        # The broker restarts too, losing every waiting message.
        redis_server.restart()

        def cpu_jobs_done() -> bool:
            return all(j.state in (JobState.GRADED, JobState.NOT_GRADABLE,
                                   JobState.SYSTEM_ERROR, JobState.SUPERSEDED)
                       for j in jobs(db) if j.id in cpu_jobs)

        wait_for(cpu_jobs_done, 300, "every CPU job to end", interval=0.5)
        final = {j.id: j for j in jobs(db)}
        logs = "\n".join((tmp_path / m / "worker.log").read_text(errors="replace")[-3000:]
                         for m in ("machine-a", "machine-b"))
        states = [(i, final[i].state, final[i].attempts, final[i].failures, final[i].message,
                   final[i].error[-600:]) for i in cpu_jobs]
        assert all(final[i].state == JobState.GRADED for i in cpu_jobs), (states, logs)
        # The killed job was taken over by B and counted as one platform failure.
        assert final[victim].attempts >= 2 and final[victim].failures >= 1
        assert final[victim].lease_owner.split(":")[0] == "machine-b"
        # Exactly one recorded result per submission, and the right scores.
        with db.read() as s:
            runs = s.execute(sa.select(gm.GradingRun.submission_id, sa.func.count())
                             .group_by(gm.GradingRun.submission_id)).all()
            by_sub = dict(runs)
            scores = {j.id: s.scalar(sa.select(gm.GradingRun.score)
                                     .where(gm.GradingRun.submission_id == j.submission_id))
                      for j in final.values() if j.id in cpu_jobs}
            max_score = s.scalar(sa.select(sa.func.max(gm.GradingRun.max_score)))
        assert all(by_sub[final[i].submission_id] == 1 for i in cpu_jobs), by_sub
        correct = [scores[i] for n, i in enumerate(cpu_jobs) if n % 2 == 0]
        buggy = [scores[i] for n, i in enumerate(cpu_jobs) if n % 2 == 1]
        assert len(set(correct)) == 1 and correct[0] >= 0.9 * max_score, (correct, max_score)
        assert all(x < correct[0] for x in buggy), (buggy, correct)
        # B's row counts what it graded (written every few seconds by its heartbeat thread).
        def b_row_counts_its_jobs() -> bool:
            graded_by_b = sum(1 for j in jobs(db) if j.state == JobState.GRADED
                              and j.lease_owner.split(":")[0] == "machine-b")
            rows = [w for w in operations(db)["workers"] if w["name"].startswith("machine-b:")]
            return bool(rows) and rows[0]["jobs_done"] >= graded_by_b > 0

        wait_for(b_row_counts_its_jobs, 30, "machine B's heartbeat row to count its jobs")
        # No GPU worker ran: the GPU job still waits, and it held up no CPU job.
        assert final[gpu_job].state == JobState.QUEUED
    finally:
        stop_machine(a, signal.SIGKILL)
        stop_machine(b)


def test_worker_command_refuses_bad_options_with_a_message(redis_server, service_course):
    from click.testing import CliRunner

    from autograder.cli import main

    course, settings, _db = service_course
    runner = CliRunner()
    r = runner.invoke(main, ["worker", "--queues", "tpu", "--course", str(course.root),
                             "--broker", redis_server.url])
    assert r.exit_code != 0 and "--queues takes cpu and/or gpu" in r.output
    r = runner.invoke(main, ["worker", "--queues", "gpu", "--course", str(course.root),
                             "--broker", redis_server.url], env={"AUTOGRADER_GPUS": ""})
    assert r.exit_code != 0 and "has no GPU" in r.output
    r = runner.invoke(main, ["worker", "--course", str(course.root),
                             "--broker", f"redis://127.0.0.1:{_free_port()}/0"])
    assert r.exit_code != 0 and "cannot reach the broker" in r.output
    assert "Traceback" not in r.output
