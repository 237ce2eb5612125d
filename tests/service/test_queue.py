"""The durable queue on SQLite and PostgreSQL: leases, exactly-once results, late results
discarded, platform failures ending system_error, supersede, fairness, the regrade lane, and
claims that stay safe when many workers claim at once."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
import sqlalchemy as sa

from autograder.results import GradingResult, Outcome, TestResult
from autograder.service import queue
from autograder.service.models import GradingJob, JobState
from autograder.service.storage import UploadStore
from gradebook import models as gm
from tests.service.conftest import CORRECT, open_service_db

UTC = dt.timezone.utc


@pytest.fixture
def db(course, db_url):
    database = open_service_db(course, db_url)
    yield database
    database.close()


@pytest.fixture
def store(tmp_path):
    return UploadStore(tmp_path / "uploads")


def _submit(db, store, student="alice", data=CORRECT) -> queue.Enqueued:
    return queue.enqueue(db, store, student=student, assignment="toy",
                         uploads=[queue.Upload("toy.py", data)], content_hash="h-" + student,
                         received_at=dt.datetime.now(UTC))


def _result(job: queue.ClaimedJob, score: float = 1.0) -> GradingResult:
    return GradingResult(assignment="toy", submission=str(job.submission_id),
                         tests=(TestResult("t", score, 4.0, Outcome.PASSED),), backend="process",
                         content_hash="", identity=job.identity, run_id=job.run_id)


def _runs(db, submission_id: int) -> int:
    with db.read() as s:
        return s.scalar(sa.select(sa.func.count(gm.GradingRun.id))
                        .where(gm.GradingRun.submission_id == submission_id))


def _job(db, job_id: int) -> GradingJob:
    with db.read() as s:
        job = s.get(GradingJob, job_id)
        s.expunge(job)
        return job


def test_claim_complete_records_once(db, store):
    sub = _submit(db, store)
    job = queue.claim(db, "w1", lease_s=30)
    assert job is not None and job.job_id == sub.job_id and job.identity.student == "alice"
    assert job.identity.received_at == sub.received_at.isoformat()
    assert queue.claim(db, "w2") is None  # held
    assert queue.heartbeat(db, job.job_id, job.token, 30)
    assert queue.complete(db, job.job_id, job.token, _result(job))
    assert not queue.complete(db, job.job_id, job.token, _result(job))  # once
    assert not queue.heartbeat(db, job.job_id, job.token, 30)
    assert _runs(db, sub.submission_id) == 1 and _job(db, job.job_id).state == JobState.GRADED


def test_lapsed_lease_is_taken_over_and_the_late_result_discarded(db, store):
    sub = _submit(db, store)
    first = queue.claim(db, "dead-worker", lease_s=0.5)
    time.sleep(0.7)
    second = queue.claim(db, "w2", lease_s=30)
    assert second is not None and second.job_id == first.job_id and second.token != first.token
    assert not queue.heartbeat(db, first.job_id, first.token)  # the old holder learns it lost
    assert not queue.complete(db, first.job_id, first.token, _result(first, 0.0))  # discarded
    assert queue.complete(db, second.job_id, second.token, _result(second, 1.0))
    assert _runs(db, sub.submission_id) == 1
    job = _job(db, sub.job_id)
    assert (job.state, job.attempts, job.failures) == (JobState.GRADED, 2, 1)
    with db.read() as s:
        assert s.scalar(sa.select(gm.GradingRun.score)) == 1.0


def test_three_platform_failures_end_system_error(db, store):
    sub = _submit(db, store)
    states = []
    for _ in range(3):
        job = queue.claim(db, "w", lease_s=30)
        states.append(queue.fail(db, job.job_id, job.token, "sandbox broke", max_failures=3))
    assert states == [JobState.QUEUED, JobState.QUEUED, JobState.SYSTEM_ERROR]
    assert queue.claim(db, "w") is None
    job = _job(db, sub.job_id)
    assert "not counted" in job.message and "sandbox broke" in job.error
    assert _runs(db, sub.submission_id) == 0


def test_workers_dying_three_times_end_system_error(db, store):
    sub = _submit(db, store)
    for _ in range(3):
        assert queue.claim(db, "doomed", lease_s=0.2) is not None
        time.sleep(0.3)
    assert queue.claim(db, "w") is None
    assert _job(db, sub.job_id).state == JobState.SYSTEM_ERROR


def test_supersede_only_queued_jobs(db, store):
    a1 = _submit(db, store)
    a2 = _submit(db, store, data=b"def double(x):\n    return x * 2\n")
    assert _job(db, a1.job_id).state == JobState.SUPERSEDED
    running = queue.claim(db, "w")
    assert running.job_id == a2.job_id
    a3 = _submit(db, store, data=b"def double(x):\n    return x + x\n")
    assert _job(db, a2.job_id).state == JobState.RUNNING  # a running job finishes
    assert _job(db, a3.job_id).state == JobState.QUEUED


def test_fewest_recent_jobs_first_and_regrades_last(db, store):
    # A's five submissions are queued by hand (supersede would fold them into one).
    jobs_a = []
    for i in range(5):
        jobs_a.append(_submit(db, store, data=f"# {i}\n".encode() + CORRECT))
        with db.write() as s:  # un-supersede: five distinct queued jobs for A
            s.execute(sa.update(GradingJob).where(GradingJob.student_pk == _job(db, jobs_a[0].job_id).student_pk)
                      .values(state=JobState.QUEUED))
    b = _submit(db, store, student="bob")
    graded = _submit(db, store, student="carol")
    regrade = queue.enqueue_regrade(db, graded.submission_id)
    order = []
    while (job := queue.claim(db, "w", lease_s=30)) is not None:
        order.append(job.job_id)
        queue.complete(db, job.job_id, job.token, _result(job))
    assert order[0] == jobs_a[0].job_id
    assert order[1] == b.job_id  # B's one job goes before A's second
    assert order[-1] == regrade  # the low-priority lane waits for every submission
    assert set(order[:-1]) == {j.job_id for j in jobs_a} | {b.job_id, graded.job_id}


def test_concurrent_claims_hand_each_job_out_once(db, store):
    for i, who in enumerate(["alice", "bob", "carol"] * 4):
        queue.enqueue(db, store, student=who, assignment="toy",
                      uploads=[queue.Upload("toy.py", f"# {i}\n".encode())],
                      content_hash=f"h{i}", received_at=dt.datetime.now(UTC))
    with db.read() as s:
        queued = s.scalar(sa.select(sa.func.count()).where(GradingJob.state == JobState.QUEUED))
    claimed: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        try:
            while (job := queue.claim(db, f"w{n}", lease_s=30)) is not None:
                with lock:
                    claimed.append(job.job_id)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(claimed) == len(set(claimed)) == queued


def test_release_gives_the_job_back_uncounted(db, store):
    sub = _submit(db, store)
    job = queue.claim(db, "w")
    assert queue.release(db, job.job_id, job.token)
    again = queue.claim(db, "w2")
    assert again.job_id == sub.job_id
    assert _job(db, sub.job_id).failures == 0
