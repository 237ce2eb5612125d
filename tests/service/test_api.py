"""The JSON API's contract: every status code, clear messages, and nothing stored on a refusal."""

from __future__ import annotations

import io
import zipfile

import pytest
import sqlalchemy as sa

from autograder.service import queue
from autograder.service.models import GradingJob, JobState
from gradebook import models as gm
from tests.service.conftest import CORRECT, make_service


def _stored(svc) -> tuple[int, int, int]:
    """(submissions, jobs, upload files on disk): what a refusal must leave unchanged."""
    with svc.db.read() as s:
        subs = s.scalar(sa.select(sa.func.count(gm.Submission.id)))
        jobs = s.scalar(sa.select(sa.func.count(GradingJob.id)))
    root = svc.settings.uploads_dir
    blobs = sum(1 for p in root.rglob("*") if p.is_file()) if root.exists() else 0
    return subs, jobs, blobs


def test_healthz_answers(service):
    r = service.client.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"


def test_me_and_assignments(service):
    me = service.client.get("/api/v1/me", headers=service.auth("alice")).json()
    assert me == {"id": "alice", "name": "Alice A", "slack_days_used": 0, "slack_days_left": 8}
    [toy] = service.client.get("/api/v1/assignments", headers=service.auth("alice")).json()
    assert toy["name"] == "toy" and toy["points"] == 4 and toy["modules"] == ["toy.py"]
    assert toy["due"].startswith("2030-01-01T00:00:00") and toy["submissions"] == 0


def test_submit_is_acknowledged_only_once_stored(service):
    r = service.submit("alice")
    assert r.status_code == 202, r.text
    body = r.json()
    assert set(body) >= {"id", "state", "received_at"} and body["state"] == "queued"
    with service.db.read() as s:
        sub = s.get(gm.Submission, body["id"])
        who = sub.student.student_id
        job = s.scalar(sa.select(GradingJob).where(GradingJob.submission_id == sub.id))
    assert who == "alice" and job.state == JobState.QUEUED
    [upload] = job.uploads
    assert (service.settings.uploads_dir / upload["sha256"][:2] / upload["sha256"]).read_bytes() \
        == CORRECT
    got = service.client.get(f"/api/v1/submissions/{body['id']}", headers=service.auth("alice"))
    assert got.json()["state"] == "queued" and got.json()["queue_position"] == 1
    listed = service.client.get("/api/v1/assignments/toy/submissions",
                                headers=service.auth("alice")).json()
    assert [x["id"] for x in listed] == [body["id"]]


def test_too_large_is_413_and_nothing_is_stored(course, sqlite_url):
    svc = make_service(course, sqlite_url, max_upload_bytes=2000)
    try:
        before = _stored(svc)
        r = svc.submit("alice", b"# padding\n" * 1000)
        assert r.status_code == 413 and "larger than" in r.json()["detail"]
        assert _stored(svc) == before
    finally:
        svc.db.close()


def test_too_many_files_is_413(course, sqlite_url):
    svc = make_service(course, sqlite_url, max_upload_files=3)
    try:
        files = [("files", (f"f{i}.py", b"x = 1\n")) for i in range(5)]
        r = svc.client.post("/api/v1/assignments/toy/submissions", headers=svc.auth("alice"),
                            files=files)
        assert r.status_code == 413 and "too many files" in r.json()["detail"]
        assert _stored(svc) == (0, 0, 0)
    finally:
        svc.db.close()


def test_bad_input_gets_a_clear_message_and_stores_nothing(service):
    c, h = service.client, service.auth("alice")
    cases = [
        (c.post("/api/v1/assignments/nope/submissions", headers=h,
                files={"files": ("toy.py", CORRECT)}), 404, "no assignment 'nope'"),
        (c.post("/api/v1/assignments/toy/submissions", headers=h,
                files={"file": ("toy.py", CORRECT)}), 422, "field 'files'"),
        (c.post("/api/v1/assignments/toy/submissions", headers=h, content=b"hello",
                ), 400, "multipart/form-data"),
        (c.post("/api/v1/assignments/toy/submissions", headers=h,
                files={"files": ("work.zip", b"PK\x03\x04 not really a zip")}), 422, "zip"),
        (c.post("/api/v1/assignments/toy/submissions", headers=h,
                files={"files": ("toy.py", b"")}), 422, "empty"),
        (c.post("/api/v1/assignments/toy/submissions", headers=h,
                files={"files": ("notes.txt", b"hi")}), 422, "submit a folder, a .zip"),
        (c.post("/api/v1/assignments/toy/submissions", headers=h,
                files={"files": ("..", CORRECT)}), 422, "rename the file"),
        (c.post("/api/v1/assignments/toy/submissions", headers=h,
                files={"files": ("a" * 300 + ".py", CORRECT)}), 422, "rename the file"),
        (c.post("/api/v1/assignments/toy/submissions", headers=h,
                files={"files": ("to\x1by.py", CORRECT)}), 422, "rename the file"),
        (c.get("/api/v1/submissions/abc", headers=h), 422, "submission_id"),
        (c.get("/api/v1/nowhere", headers=h), 404, "/api/v1"),
    ]
    for reply, status, words in cases:
        assert reply.status_code == status, (reply.status_code, reply.text)
        detail = reply.json()["detail"]
        assert isinstance(detail, str) and words in detail, detail
    assert _stored(service) == (0, 0, 0)


def test_a_zip_with_a_path_outside_is_refused(service):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../../evil.py", "x = 1")
    r = service.submit("alice", buf.getvalue(), name="hw.zip")
    assert r.status_code == 422 and "outside" in r.json()["detail"]
    assert _stored(service) == (0, 0, 0)


def test_a_zip_and_a_notebook_are_accepted(service):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("hw/toy.py", CORRECT)
    assert service.submit("alice", buf.getvalue(), name="hw.zip").status_code == 202
    nb = ('{"cells": [{"cell_type": "code", "metadata": {}, "source": ["def double(x):\\n",'
          ' "    return 2 * x\\n"], "outputs": [], "execution_count": null}], "metadata": {},'
          ' "nbformat": 4, "nbformat_minor": 5}')
    assert service.submit("bob", nb.encode(), name="toy.ipynb").status_code == 202


@pytest.mark.parametrize("headers, words", [
    ({}, "log in"),
    ({"Authorization": "Bearer ag_wrong"}, "not valid"),
    ({"Authorization": "Basic abc"}, "Bearer <token>"),
])
def test_without_valid_credentials_401(service, headers, words):
    for method, path in [("get", "/api/v1/me"), ("get", "/api/v1/assignments"),
                         ("post", "/api/v1/assignments/toy/submissions")]:
        r = getattr(service.client, method)(path, headers=headers)
        assert r.status_code == 401 and words in r.json()["detail"]
        assert r.headers["www-authenticate"] == "Bearer"
    assert _stored(service) == (0, 0, 0)


def test_another_students_submission_is_404(service):
    sid = service.submit("alice").json()["id"]
    r = service.client.get(f"/api/v1/submissions/{sid}", headers=service.auth("bob"))
    assert r.status_code == 404
    absent = service.client.get(f"/api/v1/submissions/{sid + 100}", headers=service.auth("bob"))
    # Someone else's submission reads exactly like one that does not exist.
    assert absent.status_code == 404
    assert absent.json()["detail"].replace(str(sid + 100), str(sid)) == r.json()["detail"]
    assert service.client.get("/api/v1/assignments/toy/submissions",
                              headers=service.auth("bob")).json() == []


def test_rate_limit_429_with_retry_after_and_system_errors_given_back(tmp_path, sqlite_url):
    from tests.service.conftest import build_course

    svc = make_service(build_course(tmp_path / "c", limit=2), sqlite_url)
    try:
        first = svc.submit("alice").json()["id"]
        assert svc.submit("alice").status_code == 202
        before = _stored(svc)
        r = svc.submit("alice")
        assert r.status_code == 429 and "2 submissions per hour" in r.json()["detail"]
        assert 3000 < int(r.headers["retry-after"]) <= 3601
        assert _stored(svc)[:2] == before[:2]
        assert svc.submit("bob").status_code == 202  # per student
        # The platform failing a job gives the attempt back: it no longer counts.
        with svc.db.write() as s:
            s.execute(sa.update(GradingJob).where(GradingJob.submission_id == first)
                      .values(state=JobState.SYSTEM_ERROR))
        assert svc.submit("alice").status_code == 202
    finally:
        svc.db.close()


def test_a_new_submission_supersedes_the_queued_one(service):
    first = service.submit("alice").json()["id"]
    second = service.submit("alice").json()["id"]
    h = service.auth("alice")
    old = service.client.get(f"/api/v1/submissions/{first}", headers=h).json()
    assert old["state"] == "superseded" and "newer submission" in old["message"]
    assert service.client.get(f"/api/v1/submissions/{second}", headers=h).json()["state"] \
        == "queued"


def test_queue_position_follows_the_claim_order(service):
    a = [service.submit("alice").json()["id"] for _ in range(1)]
    b = service.submit("bob").json()["id"]
    assert queue.claim(service.db, "w")  # alice's starts
    c = service.submit("carol").json()["id"]
    pos = lambda who, sid: service.client.get(f"/api/v1/submissions/{sid}",  # noqa: E731
                                              headers=service.auth(who)).json()
    assert pos("alice", a[0])["state"] == "running"
    assert pos("bob", b)["queue_position"] == 1 and pos("carol", c)["queue_position"] == 2
