"""The course policy alone: late days, acceptance, slack days, penalties, the marking scheme."""

from __future__ import annotations

import datetime as dt
from itertools import combinations
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autograder.config import ConfigError, CourseConfig, load_course
from gradebook.policy import (AssessmentSpec, Attempt, StudentRecords, evaluate_assessment,
                              grade_student, late_day_end, late_days, letter_for)

NY = ZoneInfo("America/New_York")
UTC = dt.timezone.utc


def t(text: str) -> dt.datetime:
    """Wall-clock time in New York."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=NY)


def course(**sections) -> CourseConfig:
    data = {"timezone": "America/New_York",
            "slack": {"days": 8, "grace_minutes": 15, "max_late_days": 7}}
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return CourseConfig.model_validate(data)


def hw(name: str, due: str, points: float = 10, kind: str = "homework", category: str = "") -> AssessmentSpec:
    return AssessmentSpec(name=name, kind=kind, category=category, due=t(due), max_points=points)


def sub(at: str, score: float, max_score: float = 10, n: int = 1, **kw) -> Attempt:
    return Attempt(f"submission {n}", t(at), score, max_score, **kw)


AS_OF = t("2026-12-31T00:00")
GRACE = dt.timedelta(minutes=15)


# -- late days ---------------------------------------------------------------------------------

def test_exactly_at_the_due_time_is_on_time():
    assert late_days(t("2026-09-18T23:59"), t("2026-09-18T23:59"), zone=NY, grace=GRACE).days == 0


def test_inside_the_grace_period_is_on_time_and_says_so():
    lateness = late_days(t("2026-09-19T00:14"), t("2026-09-18T23:59"), zone=NY, grace=GRACE)
    assert lateness.days == 0
    assert "inside the 15 min grace period" in lateness.line


def test_grace_boundary_and_one_second_past_it():
    due = t("2026-09-18T23:59")
    assert late_days(due + GRACE, due, zone=NY, grace=GRACE).days == 0
    assert late_days(due + GRACE + dt.timedelta(seconds=1), due, zone=NY, grace=GRACE).days == 1


def test_grace_forgives_but_does_not_move_the_due_time():
    due = t("2026-09-18T23:59")
    # 24 h + 5 min after the due time: day 2 has started, even though it is inside 24 h + grace.
    assert late_days(due + dt.timedelta(hours=24, minutes=5), due, zone=NY, grace=GRACE).days == 2
    assert late_days(due + dt.timedelta(hours=24), due, zone=NY, grace=GRACE).days == 1


def test_started_days_count():
    due = t("2026-09-18T23:59")
    assert late_days(t("2026-09-20T23:59"), due, zone=NY).days == 2
    assert late_days(t("2026-09-21T00:00"), due, zone=NY).days == 3


def test_across_the_autumn_dst_change_the_same_wall_time_next_day_is_one_day():
    due = t("2026-10-31T23:59")  # EDT; clocks go back on 2026-11-01
    submitted = t("2026-11-01T23:30")  # EST: 24.5 elapsed hours later
    assert submitted.astimezone(UTC) - due.astimezone(UTC) == dt.timedelta(hours=24, minutes=31)
    assert late_days(submitted, due, zone=NY, clock="wall").days == 1
    assert late_days(submitted, due, zone=NY, clock="elapsed").days == 2
    assert late_day_end(due, 1, NY, "wall") == dt.datetime(2026, 11, 2, 4, 59, tzinfo=UTC)  # 25 h day
    assert late_day_end(due, 1, NY) == dt.datetime(2026, 11, 2, 3, 59, tzinfo=UTC)  # default: 24 h


def test_across_the_spring_dst_change_a_day_is_23_hours_on_the_wall_clock():
    due = t("2026-03-07T23:59")  # EST; clocks go forward on 2026-03-08
    submitted = t("2026-03-09T00:30")  # EDT: 23.5 elapsed hours after the due time
    assert late_days(submitted, due, zone=NY, clock="wall").days == 2
    assert late_days(submitted, due, zone=NY, clock="elapsed").days == 1


def test_utc_submission_times_are_compared_in_the_course_zone():
    due = t("2026-09-18T23:59")  # 03:59 UTC on the 19th
    assert late_days(dt.datetime(2026, 9, 19, 3, 59, tzinfo=UTC), due, zone=NY).days == 0
    assert late_days(dt.datetime(2026, 9, 19, 4, 0, tzinfo=UTC), due, zone=NY).days == 1


# -- one assessment ----------------------------------------------------------------------------

def test_an_extension_moves_the_due_time():
    c = course()
    spec = hw("hw1", "2026-09-18T23:59")
    attempt = sub("2026-09-20T20:00", 8)
    assert evaluate_assessment(spec, [attempt], None, c, AS_OF).late_days == 2
    entry = evaluate_assessment(spec, [attempt], t("2026-09-20T23:59"), c, AS_OF)
    assert entry.late_days == 0 and entry.status == "on_time"
    assert any("extended to 2026-09-20 23:59 EDT" in line for line in entry.lines)


def test_no_submission_counts_zero_once_due_and_nothing_before():
    c = course()
    spec = hw("hw1", "2026-09-18T23:59")
    missing = evaluate_assessment(spec, [], None, c, AS_OF)
    assert (missing.counted, missing.status, missing.raw_points) == (True, "missing", 0)
    early = evaluate_assessment(spec, [], None, c, t("2026-09-18T12:00"))
    assert (early.counted, early.status) == (False, "not_due")


def test_exams_close_hard_and_the_on_time_attempt_counts():
    c = course()
    spec = hw("quiz1", "2026-09-25T10:00", points=5, kind="quiz")
    on_time = sub("2026-09-25T09:50", 2, 5, n=1)
    late = sub("2026-09-25T10:16", 5, 5, n=2)  # past the 15 min grace
    entry = evaluate_assessment(spec, [on_time, late], None, c, AS_OF)
    assert entry.attempt == on_time and entry.late_days == 0 and not entry.takes_slack
    only_late = evaluate_assessment(spec, [late], None, c, AS_OF)
    assert (only_late.status, only_late.raw_points) == ("not_accepted", 0)
    assert any("closes at the due time" in line for line in only_late.lines)


def test_more_than_max_late_days_is_not_accepted():
    c = course()
    spec = hw("hw1", "2026-09-18T23:59")
    entry = evaluate_assessment(spec, [sub("2026-09-26T12:00", 10)], None, c, AS_OF)
    assert entry.status == "not_accepted" and entry.raw_points == 0
    assert any("8 days late is more than the 7 allowed" in line for line in entry.lines)


@pytest.mark.parametrize("policy, expected", [("last", 6), ("best", 9), ("chosen", 7)])
def test_score_policy(policy, expected):
    c = course(grading={"score_policy": policy})
    spec = hw("hw1", "2026-09-18T23:59")
    attempts = [sub("2026-09-17T10:00", 9, n=1), sub("2026-09-17T11:00", 7, n=2, chosen=True),
                sub("2026-09-17T12:00", 6, n=3)]
    assert evaluate_assessment(spec, attempts, None, c, AS_OF).raw_points == expected


def test_chosen_without_a_choice_falls_back_to_the_last():
    c = course(grading={"score_policy": "chosen"})
    entry = evaluate_assessment(hw("hw1", "2026-09-18T23:59"),
                                [sub("2026-09-17T10:00", 9, n=1), sub("2026-09-17T12:00", 6, n=2)],
                                None, c, AS_OF)
    assert entry.raw_points == 6 and "no submission was chosen" in entry.lines[-1]


def test_a_manual_score_replaces_submissions_and_a_timed_one_is_late_like_them():
    c = course()
    spec = hw("hw1", "2026-09-18T23:59")
    manual = Attempt("manual score", t("2026-09-20T10:00"), 4, 10, manual=True)
    entry = evaluate_assessment(spec, [sub("2026-09-17T10:00", 9), manual], None, c, AS_OF)
    assert entry.attempt == manual and entry.late_days == 2


# -- slack days and penalties ------------------------------------------------------------------

def records(**attempts) -> StudentRecords:
    return StudentRecords("s1", "Ada", attempts={k: tuple(v) for k, v in attempts.items()})


def test_slack_days_cover_late_work_until_spent_then_each_late_submission_loses_10_percent():
    c = course(slack={"days": 3})
    specs = [hw("hw1", "2026-09-04T23:59"), hw("hw2", "2026-09-11T23:59"), hw("hw3", "2026-09-18T23:59")]
    g = grade_student(records(hw1=[sub("2026-09-06T12:00", 10)],       # 2 late days: covered
                              hw2=[sub("2026-09-13T12:00", 10)],       # 2 late days: 1 left, penalised
                              hw3=[sub("2026-09-19T12:00", 8)]),       # 1 late day: covered
                      specs, c, AS_OF)
    a1, a2, a3 = (g.assessment(n) for n in ("hw1", "hw2", "hw3"))
    assert (a1.slack_days, a1.penalty, a1.points) == (2, 0, 10)
    assert (a2.slack_days, a2.penalty, a2.points) == (0, 0.1, 9)
    assert (a3.slack_days, a3.penalty, a3.points) == (1, 0, 8)
    assert (g.slack_used, g.slack_left) == (3, 0)
    assert any("the 1 day stay for later" in line for line in g.lines)
    assert any("hw2: 10 x (1 - 0.1) = 9 / 10" in line for line in g.lines)


def test_best_allocation_maximises_the_total_and_both_are_shown():
    c = course(slack={"days": 3})
    specs = [hw("hw1", "2026-09-04T23:59", points=10), hw("hw2", "2026-09-11T23:59", points=10)]
    recs = records(hw1=[sub("2026-09-06T12:00", 1)],    # 2 late days on 1/10: covering saves little
                   hw2=[sub("2026-09-14T12:00", 10)])   # 3 late days on 10/10: covering saves 1 point
    chrono = grade_student(recs, specs, c, AS_OF)
    best = grade_student(recs, specs, c, AS_OF, allocation="best")
    assert chrono.allocation.covered == {"hw1"} and best.allocation.covered == {"hw2"}
    assert best.final > chrono.final
    assert chrono.alternative_final == pytest.approx(best.final)
    assert best.alternative_final == pytest.approx(chrono.final)
    assert any("best allocation would give" in line for line in chrono.lines)
    assert any("chronological allocation would give" in line for line in best.lines)


def test_best_allocation_ties_keep_the_chronological_choice():
    c = course(slack={"days": 2})
    specs = [hw("hw1", "2026-09-04T23:59"), hw("hw2", "2026-09-11T23:59")]
    recs = records(hw1=[sub("2026-09-06T12:00", 10)], hw2=[sub("2026-09-13T12:00", 10)])
    g = grade_student(recs, specs, c, AS_OF, allocation="best")
    assert g.allocation.covered == {"hw1"}


def test_exams_never_take_slack_days():
    c = course()
    specs = [hw("quiz1", "2026-09-25T10:00", points=5, kind="quiz")]
    g = grade_student(records(quiz1=[sub("2026-09-26T09:00", 5, 5)]), specs, c, AS_OF)
    assert g.slack_used == 0 and g.assessment("quiz1").points == 0


def test_zero_slack_budget_penalises_every_late_submission():
    c = course(slack={"days": 0, "penalty_per_late_submission": 0.25})
    specs = [hw("hw1", "2026-09-04T23:59")]
    g = grade_student(records(hw1=[sub("2026-09-05T12:00", 8)]), specs, c, AS_OF)
    assert g.assessment("hw1").points == pytest.approx(6)


# -- the marking scheme ------------------------------------------------------------------------

def test_default_weights_and_letters():
    c = course()
    assert {n: cat.weight for n, cat in c.categories.items()} == {
        "homeworks": 35, "midterm": 20, "final": 30, "mini-exams": 10, "project": 5}
    specs = [hw("hw1", "2026-09-04T23:59"), hw("midterm", "2026-10-20T12:00", 100, kind="exam"),
             hw("final", "2026-12-15T12:00", 100, kind="exam"), hw("quiz1", "2026-09-25T10:00", 5, kind="quiz"),
             hw("project", "2026-12-10T23:59", 50, kind="project")]
    recs = records(hw1=[sub("2026-09-04T12:00", 10)], midterm=[sub("2026-10-20T11:00", 80, 100)],
                   final=[sub("2026-12-15T11:00", 70, 100)], quiz1=[sub("2026-09-25T09:00", 5, 5)],
                   project=[sub("2026-12-10T12:00", 45, 50)])
    g = grade_student(recs, specs, c, AS_OF)
    assert g.categories == {"homeworks": 100, "midterm": 80, "final": 70, "mini-exams": 100,
                            "project": 90}
    assert g.final == pytest.approx(35 + 16 + 21 + 10 + 4.5)
    assert g.letter == "B"  # 86.5 < 87 (B+)


def test_final_grade_so_far_leaves_out_categories_with_nothing_counted():
    c = course()
    specs = [hw("hw1", "2026-09-04T23:59"), hw("midterm", "2026-10-20T12:00", 100, kind="exam")]
    g = grade_student(records(hw1=[sub("2026-09-04T12:00", 8)]), specs, c, t("2026-10-01T00:00"))
    assert g.categories["midterm"] is None and g.final == pytest.approx(80)


def test_points_aggregate_and_an_unknown_category():
    c = course(categories={"homeworks": {"weight": 1, "kinds": ["homework"], "aggregate": "points"}})
    specs = [hw("hw1", "2026-09-04T23:59", 10), hw("hw2", "2026-09-11T23:59", 30),
             hw("lab", "2026-09-11T23:59", 5, category="labs")]
    recs = records(hw1=[sub("2026-09-04T12:00", 10)], hw2=[sub("2026-09-11T12:00", 0, 30)],
                   lab=[sub("2026-09-11T12:00", 5, 5)])
    g = grade_student(recs, specs, c, AS_OF)
    assert g.categories["homeworks"] == pytest.approx(25)
    assert g.assessment("lab").category == ""
    assert any("add [categories.labs]" in line for line in g.lines)


@pytest.mark.parametrize("pct, letter", [(93, "A"), (92.99, "A-"), (0, "F"), (100, "A"), (None, "")])
def test_letter_cutoffs(pct, letter):
    assert letter_for(pct, course().letters) == letter


def test_course_toml_policy_errors_say_what_to_write(tmp_path):
    (tmp_path / "course.toml").write_text('[letters]\nA = 90\nB = 80\n')
    with pytest.raises(ConfigError, match="add the lowest letter with cutoff 0"):
        load_course(tmp_path)
    (tmp_path / "course.toml").write_text('[categories.hw]\nweight = 0\n')
    with pytest.raises(ConfigError, match="give at least one a positive weight"):
        load_course(tmp_path)
    (tmp_path / "course.toml").write_text('[categories.hw]\nweight = 1\nwieght = 2\n')
    with pytest.raises(ConfigError, match="categories.hw.wieght: unknown key"):
        load_course(tmp_path)


def test_the_explanation_derives_every_number():
    c = course(slack={"days": 1})
    specs = [hw("hw1", "2026-09-04T23:59"), hw("hw2", "2026-09-11T23:59")]
    g = grade_student(records(hw1=[sub("2026-09-05T12:00", 10)], hw2=[sub("2026-09-12T12:00", 6)]),
                      specs, c, AS_OF)
    text = "\n".join(g.lines)
    for needle in ("due 2026-09-04 23:59 EDT", "-> 1 late day", "hw1: 1 day late, 1 left -> covered, 0 left",
                   "hw2: 1 day late, only 0 left", "hw2: 6 x (1 - 0.1) = 5.4 / 10",
                   "homeworks (weight 35): mean of hw1 100.00%, hw2 54.00% = 77.00%",
                   "final: (35 x 77.00) / 35 = 77.00% -> C+"):
        assert needle in text, needle


# -- the best allocation is the optimum ---------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(budget=st.integers(0, 8),
       late=st.lists(st.tuples(st.integers(0, 7), st.integers(0, 10), st.sampled_from([10, 20, 50])),
                     min_size=1, max_size=7))
def test_best_allocation_is_the_brute_force_optimum_and_never_worse(budget, late):
    c = course(slack={"days": budget})
    base = t("2026-09-04T23:59")
    specs, recs = [], {}
    for i, (days_late, score, points) in enumerate(late):
        due = base + dt.timedelta(days=7 * i)
        specs.append(AssessmentSpec(f"hw{i}", due=due, max_points=points))
        at = due + dt.timedelta(days=days_late) - dt.timedelta(minutes=1) if days_late else due
        recs[f"hw{i}"] = (Attempt("submission 1", at, min(score, points), points),)
    student = StudentRecords("s1", attempts=recs)
    chrono = grade_student(student, specs, c, AS_OF)
    best = grade_student(student, specs, c, AS_OF, allocation="best")
    assert best.slack_used <= budget and chrono.slack_used <= budget
    assert best.final >= chrono.final - 1e-9
    # Brute force over every affordable set of late assessments.
    items = [(a.name, a.late_days) for a in chrono.assessments if a.late_days > 0]
    optimum = chrono.final
    for r in range(len(items) + 1):
        for subset in combinations(items, r):
            if sum(d for _, d in subset) > budget:
                continue
            covered = {n for n, _ in subset}
            pts = {a.name: a.raw_points * (1 - (0.1 if a.late_days and a.name not in covered else 0))
                   for a in chrono.assessments}
            final = sum(100 * pts[a.name] / a.max_points for a in chrono.assessments) / len(specs)
            optimum = max(optimum, final)
    assert best.final == pytest.approx(optimum, abs=1e-9)
