"""Per-test statistics of one assignment (gradebook/stats.py), on data whose answers are
worked out by hand."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from gradebook.stats import (GradedAttempt, TestRun, best_of, draw_discrimination,
                             draw_pass_rates, percentile, png_bytes, point_biserial,
                             rest_of_score, per_test_statistics)

T0 = dt.datetime(2026, 9, 1, tzinfo=dt.timezone.utc)


def _attempt(student: str, n: int, *tests: tuple[str, str, float]) -> GradedAttempt:
    """tests: (name, outcome, duration); t1 is worth 2 points, t2 1 point."""
    worth = {"t1": 2.0, "t2": 1.0}
    runs = tuple(TestRun(name, outcome, worth[name] if outcome == "passed" else 0.0,
                         worth[name], duration) for name, outcome, duration in tests)
    return GradedAttempt(student, n, T0 + dt.timedelta(hours=n), sum(r.score for r in runs),
                         sum(r.max_score for r in runs), runs)


P, F = "passed", "failed"
DATA = [
    _attempt("s1", 1, ("t1", F, 0.1), ("t2", P, 1.0)),
    _attempt("s1", 2, ("t1", P, 0.2), ("t2", P, 1.0)),
    _attempt("s2", 1, ("t1", P, 0.3), ("t2", F, 1.0)),
    _attempt("s3", 1, ("t1", "timeout", 20.0), ("t2", "error", 1.0)),
    _attempt("s3", 2, ("t1", F, 0.4), ("t2", F, 1.0)),
    _attempt("s3", 3, ("t1", F, 0.5), ("t2", P, 1.0)),
    _attempt("s4", 1, ("t1", P, 0.6), ("t2", P, 1.0)),
    # a fault of the platform: in grader_errors only, never a pass or a failure
    _attempt("s4", 2, ("t1", "grader_error", 0.0), ("t2", P, 1.0)),
]


def _stats():
    return {s.test: s for s in per_test_statistics(reversed(DATA))}  # order of input irrelevant


def test_pass_rates_on_first_last_and_best_attempt():
    t1, t2 = _stats()["t1"], _stats()["t2"]
    # t1 first: s1 F, s2 P, s3 F (timeout), s4 P; last: s1 P, s2 P, s3 F, s4 P (its attempt
    # 2 is a grader error, so its last counted one is attempt 1); best: s3's best is attempt 3.
    assert (t1.students, t1.pass_first, t1.pass_last, t1.pass_best) == (4, 50.0, 75.0, 75.0)
    assert (t2.pass_first, t2.pass_last, t2.pass_best) == (50.0, 75.0, 75.0)


def test_attempts_to_first_pass_and_never_passed():
    t1 = _stats()["t1"]
    assert t1.attempts_to_pass_mean == round(4 / 3, 2)  # s1 on its 2nd, s2 and s4 on their 1st
    assert t1.attempts_to_pass_median == 1.0
    assert t1.never_passed == 1  # s3


def test_runtimes_timeouts_and_errors():
    t1, t2 = _stats()["t1"], _stats()["t2"]
    assert t1.runs == 8 and t1.grader_errors == 1
    durations = [0.1, 0.2, 0.3, 20.0, 0.4, 0.5, 0.6]  # the grader error's is left out
    assert t1.runtime_p50_s == pytest.approx(0.4)
    assert t1.runtime_p95_s == pytest.approx(np.percentile(durations, 95))
    assert (t1.timeouts, t1.errors) == (1, 0)
    assert (t2.timeouts, t2.errors, t2.grader_errors) == (0, 1, 0)


def test_discrimination_is_the_point_biserial_with_the_rest_of_the_score():
    # Last counted attempts: s1 a2 (t1 P, rest 1), s2 a1 (P, rest 0), s3 a3 (F, rest 1),
    # s4 a1 (P, rest 1): r = (M1 - M0) / s * sqrt(pq) = (2/3 - 1) / s * s = -1/3.
    assert _stats()["t1"].discrimination == pytest.approx(-1 / 3, abs=1e-3)


def test_point_biserial_equals_pearson_and_is_none_without_spread():
    rng = np.random.default_rng(0)
    passed = rng.random(40) < 0.6
    rest = rng.random(40) + passed * 0.3
    assert point_biserial(passed, rest) == pytest.approx(np.corrcoef(passed, rest)[0, 1])
    assert point_biserial([True, True, True], [0.1, 0.5, 0.9]) is None  # everyone passed
    assert point_biserial([True, False, True], [0.5, 0.5, 0.5]) is None  # no spread
    assert point_biserial([True, False], [1.0, 0.0]) is None  # too few
    # A test the strong pass and the weak fail separates perfectly.
    assert point_biserial([False, False, True, True], [0.1, 0.2, 0.8, 0.9]) > 0.9


def test_rest_of_score_and_best_attempt():
    a = DATA[1]  # s1 attempt 2: 3 of 3
    assert rest_of_score(a, a.test("t1")) == 1.0
    assert rest_of_score(a, a.test("t2")) == 1.0
    only = GradedAttempt("x", 1, T0, 2.0, 2.0, (TestRun("t1", P, 2.0, 2.0),))
    assert rest_of_score(only, only.tests[0]) is None  # no other test
    tied = [DATA[0], DATA[0].__class__(**{**DATA[0].__dict__, "attempt": 9})]
    assert best_of(tied).attempt == 9  # the later one on a tie
    assert percentile([], 50) is None and percentile([1, 2, 3, 4], 50) == 2.5


def test_the_plots_are_png_images():
    stats = per_test_statistics(DATA)
    for fig in (draw_pass_rates(stats), draw_discrimination(stats)):
        data = png_bytes(fig)
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000
