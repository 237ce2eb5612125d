"""Visibility: a student never reads a hidden test's name, message or output before its
visibility allows. Graded for real (the process sandbox), then every byte of every response is
searched for the canary strings the hidden tests carry."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from autograder.service import api
from autograder.service.auth import Principal
from autograder.service.feedback import is_visible, student_view
from autograder.service.workers import JobRunner
from tests.service.conftest import CANARIES, WRONG, build_course, make_service

UTC = dt.timezone.utc
T = dt.datetime(2030, 1, 1, tzinfo=UTC)


def _canaries(*visibilities: str) -> list[bytes]:
    return [c.encode() for v in visibilities for c in CANARIES[v]]


def test_is_visible_by_time():
    due, pub = T, T + dt.timedelta(days=30)
    before, between, after = T - dt.timedelta(seconds=1), T + dt.timedelta(days=1), pub
    assert all(is_visible("visible", now=n, due=due, published=pub) for n in (before, after))
    assert not any(is_visible("hidden", now=n, due=due, published=pub)
                   for n in (before, between, after))
    assert [is_visible("after_due_date", now=n, due=due, published=pub)
            for n in (before, between, after)] == [False, True, True]
    assert [is_visible("after_published", now=n, due=due, published=pub)
            for n in (before, between, after)] == [False, False, True]
    assert not is_visible("after_published", now=after, due=due, published=None)
    assert not is_visible("something-new", now=after, due=due, published=pub)


def test_folded_tests_keep_their_points_but_nothing_else():
    result = {"score": 3, "max_score": 5, "output": "", "tests": [
        {"name": "pub", "score": 1, "max_score": 1, "visibility": "visible", "output": "ok"},
        {"name": "SECRET", "score": 2, "max_score": 4, "visibility": "hidden",
         "output": "SECRET out"}]}
    view = student_view(result, now=T, due=T, published=None)
    assert [t["name"] for t in view["tests"]] == ["pub"]
    assert view["hidden_tests"] == {"count": 1, "score": 2.0, "max_score": 4.0}
    assert "SECRET" not in repr(view)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """One real grading of a wrong submission: every hidden test fails with its canaries."""
    root = tmp_path_factory.mktemp("vis")
    course = build_course(root / "course", due="2030-01-01T00:00:00",
                          published="2031-01-01T00:00:00")
    svc = make_service(course, f"sqlite:///{root / 'db.sqlite'}")
    sid = svc.submit("alice", WRONG).json()["id"]
    runner = JobRunner(svc.settings, svc.db, "test-worker")
    try:
        assert runner.run_once()
    finally:
        runner.close()
    yield svc, sid
    svc.db.close()


def test_graded_result_really_holds_the_canaries(graded):
    # Guard: the search below proves something only if the stored result has them.
    svc, sid = graded
    with svc.db.read() as s:
        from gradebook import models as gm
        stored = json.dumps(s.query(gm.GradingRun.result).one()[0]).encode()
    for canary in _canaries("hidden", "after_due_date", "after_published"):
        assert canary in stored, canary


def test_no_response_leaks_a_hidden_test_before_its_time(graded):
    svc, sid = graded
    c, h = svc.client, svc.auth("alice")
    replies = [c.get(f"/api/v1/submissions/{sid}", headers=h),
               c.get("/api/v1/assignments/toy/submissions", headers=h),
               c.get("/api/v1/assignments", headers=h), c.get("/api/v1/me", headers=h),
               c.get(f"/api/v1/submissions/{sid}", headers=svc.auth("bob"))]
    body = replies[0].json()
    assert body["state"] == "graded" and body["score"] == 0 and body["max_score"] == 4
    assert [t["name"] for t in body["tests"]] == ["test_public.py::test_double"]
    assert body["hidden_tests"] == {"count": 3, "score": 0.0, "max_score": 3.0}
    assert body["late_days"] == 0 and body["counts"] is True
    for reply in replies:
        everything = reply.content + repr(reply.headers).encode()
        for canary in _canaries("hidden", "after_due_date", "after_published"):
            assert canary not in everything, (canary, reply.request.url)


def test_after_the_due_date_and_after_publication(graded):
    svc, sid = graded
    ctx = svc.client.app.state.service
    with svc.db.read() as s:
        from autograder.service.models import ServiceUser
        user = s.query(ServiceUser).filter_by(login="alice").one()
        who = Principal(user.id, "alice", "student", user.student_pk, "token")
    after_due = repr(api.describe(ctx, who, sid, now=T + dt.timedelta(days=1))).encode()
    for canary in _canaries("after_due_date"):
        assert canary in after_due
    for canary in _canaries("hidden", "after_published"):
        assert canary not in after_due
    published = repr(api.describe(ctx, who, sid, now=T + dt.timedelta(days=400))).encode()
    for canary in _canaries("after_due_date", "after_published"):
        assert canary in published
    for canary in _canaries("hidden"):
        assert canary not in published
