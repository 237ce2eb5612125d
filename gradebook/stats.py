"""What the TA re-teaches: per-assessment score distributions, per-test pass rates (the test
most students fail first), and histograms as PNG files (one file per plot); and per test of one
assignment, over every graded attempt, what the instructor's statistics page shows (pass rates
on the first, last and best attempt, attempts to a first pass, runtimes, timeouts and errors,
discrimination). The computations are pure functions of plain records; only
:func:`load_graded_attempts` reads the database."""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np
import pandas as pd

from gradebook.policy import AssessmentSpec, StudentGrade
from gradebook.store import TestRecord

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def distributions(grades: Sequence[StudentGrade], specs: Sequence[AssessmentSpec]) -> pd.DataFrame:
    """Per assessment, over the students it counts for: how many submitted, and the percentage
    (after penalties) mean, median, standard deviation, minimum and maximum."""
    rows = []
    for spec in specs:
        marks = [g.assessment(spec.name) for g in grades]
        counted = [a for a in marks if a.counted]
        pct = pd.Series([a.percent for a in counted], dtype=float)
        rows.append({"assessment": spec.name, "students": len(counted),
                     "submitted": sum(a.status in ("on_time", "late") for a in counted),
                     "late": sum(a.late_days > 0 for a in counted),
                     "mean %": pct.mean(), "median %": pct.median(), "std %": pct.std(),
                     "min %": pct.min(), "max %": pct.max()})
    return pd.DataFrame(rows).round(2)


def pass_rates(tests: Iterable[TestRecord]) -> pd.DataFrame:
    """Per assessment and test: how many students' latest results ran it and the share that
    passed, lowest pass rate first."""
    frame = pd.DataFrame([t.__dict__ for t in tests],
                         columns=["assignment", "student_id", "name", "passed", "score", "max_score"])
    if frame.empty:
        return pd.DataFrame(columns=["assignment", "test", "students", "passed", "pass rate %"])
    out = (frame.groupby(["assignment", "name"])
           .agg(students=("student_id", "nunique"), passed=("passed", "sum"))
           .reset_index().rename(columns={"name": "test"}))
    out["pass rate %"] = (100 * out["passed"] / out["students"]).round(1)
    return out.sort_values(["pass rate %", "assignment", "test"]).reset_index(drop=True)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


@dataclass(frozen=True)
class Plot:
    """One histogram: the percentages of the students who have something counted (a real 0
    included), and apart from them how many have no submission at all."""

    name: str  # the assessment, or "final grade"
    title: str
    file: str  # its own file name: never shared with another plot
    values: tuple[float, ...]
    no_submission: int
    bins: tuple[float, ...]  # edges, 5 points wide, covering 0-100 and every value (extra credit)
    counts: tuple[int, ...]
    mean: float | None
    median: float | None
    xlabel: str


def _bins(values: Sequence[float], width: float = 5.0) -> list[float]:
    low = min([0.0, *values])
    high = max([100.0, *values])
    first, last = math.floor(low / width), math.ceil(high / width)
    return [k * width for k in range(first, last + 1)]


def _plot(name: str, title: str, file: str, values: list[float], missing: int,
          xlabel: str) -> Plot:
    edges = _bins(values)
    counts, _ = np.histogram(values, bins=edges)
    return Plot(name=name, title=title, file=file, values=tuple(values), no_submission=missing,
                bins=tuple(edges), counts=tuple(int(c) for c in counts),
                mean=float(np.mean(values)) if values else None,
                median=float(np.median(values)) if values else None, xlabel=xlabel)


def plots(grades: Sequence[StudentGrade], specs: Sequence[AssessmentSpec]) -> list[Plot]:
    """One plot per assessment (percentages after penalties, of the students it counts for)
    and one of the final grades, each with its own file name."""
    out, used = [], set()

    def file_for(stem: str) -> str:
        name, n = f"{stem}.png", 2
        while name in used:  # two names that differ only in characters a file name cannot hold
            name, n = f"{stem}-{n}.png", n + 1
        used.add(name)
        return name

    for spec in specs:
        marks = [g.assessment(spec.name) for g in grades]
        counted = [a for a in marks if a.counted]
        values = [a.percent for a in counted if a.status != "missing"]
        out.append(_plot(spec.name, spec.title or spec.name, file_for(f"assessment-{_safe(spec.name)}"),
                         values, len(counted) - len(values), "percent (after late penalties)"))
    finals = [g.final for g in grades if g.final is not None]
    out.append(_plot("final grade", "final grade", file_for("final-grade"), finals,
                     len(grades) - len(finals), "percent (final weighted grade)"))
    return out


def draw(plot: Plot) -> Figure:
    """The figure of one plot: the histogram, mean and median lines, integer counts, and the
    students without a submission said apart (they are not a 0 in the bars)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(6.5, 3.8))
    ax = fig.add_subplot()
    ax.stairs(plot.counts, plot.bins, fill=True, color="#4c72b0", edgecolor="white")
    if plot.mean is not None and plot.median is not None:
        ax.axvline(plot.mean, color="#c44e52", linewidth=1.5, label=f"mean {plot.mean:.1f}%")
        ax.axvline(plot.median, color="#55a868", linewidth=1.5, linestyle="--",
                   label=f"median {plot.median:.1f}%")
        ax.legend(loc="upper left", fontsize="small")
    ax.set_xlim(plot.bins[0], plot.bins[-1])
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(bottom=0)
    ax.set_xlabel(plot.xlabel)
    ax.set_ylabel("students")
    apart = f"; {plot.no_submission} with no submission (not in the bars)" if plot.no_submission else ""
    ax.set_title(f"{plot.title}: {len(plot.values)} students{apart}", fontsize="medium")
    fig.tight_layout()
    return fig


def histograms(grades: Sequence[StudentGrade], specs: Sequence[AssessmentSpec],
               out_dir: Path) -> list[Path]:
    """Write every plot of :func:`plots` as a PNG in ``out_dir``; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for plot in plots(grades, specs):
        path = out_dir / plot.file
        draw(plot).savefig(path, dpi=100)
        written.append(path)
    return written


# ---------------------------------------------------------------------------------------------
# Per-test statistics of one assignment, over every graded attempt (the instructor's page)

#: Outcomes counted as a timeout (a call's deadline, or the submission's time budget spent).
TIMEOUT_OUTCOMES = frozenset({"timeout", "budget"})
#: Outcomes where the student's code failed to run to an answer (raised, crashed, ran out of
#: memory, broke the protocol): "errors" on the page, apart from wrong answers.
ERROR_OUTCOMES = frozenset({"error", "crash", "memory", "protocol"})
#: A fault of the platform: never the student's, left out of every rate and of discrimination.
PLATFORM_OUTCOMES = frozenset({"grader_error"})


@dataclass(frozen=True)
class TestRun:
    """One test in one graded attempt."""

    __test__ = False  # not a pytest test class, whatever its name

    name: str
    outcome: str  # autograder.results.Outcome's value
    score: float
    max_score: float
    duration_s: float = 0.0

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"


@dataclass(frozen=True)
class GradedAttempt:
    """One graded submission of one student (its newest grading run)."""

    student_id: str
    attempt: int
    received_at: dt.datetime
    score: float
    max_score: float
    tests: tuple[TestRun, ...]

    def test(self, name: str) -> TestRun | None:
        return next((t for t in self.tests if t.name == name), None)


@dataclass(frozen=True)
class TestStats:
    """What one test tells the instructor (percentages 0-100; None where nothing is known).

    ``pass_first``/``pass_last``/``pass_best``: the share of students whose first, last and
    best-scoring attempt passed it. ``attempts_to_pass_*``: how many graded attempts the
    students who passed it took to pass it the first time. ``discrimination``: the
    point-biserial correlation, over each student's last attempt, between passing this test
    and the rest of the score (:func:`point_biserial`)."""

    __test__ = False  # not a pytest test class, whatever its name

    test: str
    max_score: float
    students: int
    pass_first: float | None
    pass_last: float | None
    pass_best: float | None
    never_passed: int
    attempts_to_pass_mean: float | None
    attempts_to_pass_median: float | None
    runs: int
    runtime_p50_s: float | None
    runtime_p95_s: float | None
    timeouts: int
    errors: int
    grader_errors: int
    discrimination: float | None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100, linear interpolation as numpy's default); None for no
    values."""
    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else None


def point_biserial(passed: Sequence[bool], rest: Sequence[float]) -> float | None:
    """Pearson's correlation between a 0/1 variable (passed the test) and a score (the rest of
    the score), in [-1, 1]: ``(M1 - M0) / s * sqrt(p * q)`` with ``M1``/``M0`` the mean rest of
    those who passed/failed, ``s`` the standard deviation of all rests and ``p``/``q`` the
    shares who passed/failed. None with fewer than 3 students, or when everyone passed, everyone
    failed or every rest is the same (nothing to separate)."""
    if len(passed) != len(rest):
        raise ValueError("passed and rest must be of the same length")
    x = np.asarray(passed, dtype=float)
    y = np.asarray(rest, dtype=float)
    if len(x) < 3:
        return None
    p = float(x.mean())
    s = float(y.std())
    if p in (0.0, 1.0) or s < 1e-12:
        return None
    m1, m0 = float(y[x == 1].mean()), float(y[x == 0].mean())
    return (m1 - m0) / s * math.sqrt(p * (1 - p))


def rest_of_score(attempt: GradedAttempt, run: TestRun) -> float | None:
    """The attempt's score without this test, as a fraction of the points the other tests
    offer (the "corrected" total: a test must not correlate with itself). None when the other
    tests offer no points."""
    other_max = attempt.max_score - run.max_score
    if other_max <= 0:
        return None
    return (attempt.score - run.score) / other_max


def by_student(attempts: Iterable[GradedAttempt]) -> dict[str, list[GradedAttempt]]:
    """Each student's graded attempts, oldest first (by receipt, then attempt number)."""
    out: dict[str, list[GradedAttempt]] = {}
    for a in sorted(attempts, key=lambda a: (a.student_id, a.received_at, a.attempt)):
        out.setdefault(a.student_id, []).append(a)
    return out


def best_of(attempts: Sequence[GradedAttempt]) -> GradedAttempt:
    """The best-scoring attempt (by fraction of its maximum); the later one on a tie."""
    return max(enumerate(attempts),
               key=lambda ia: (ia[1].score / ia[1].max_score if ia[1].max_score else 0.0, ia[0]))[1]


def _rate(hits: list[bool]) -> float | None:
    return round(100.0 * sum(hits) / len(hits), 1) if hits else None


def per_test_statistics(attempts: Iterable[GradedAttempt]) -> list[TestStats]:
    """Per test (in the order the tests first appear), over every student's graded attempts:
    pass rates on the first, last and best attempt, attempts to the first pass, runtime
    percentiles, timeouts and errors, and discrimination. A grader error (a fault of the
    platform) counts in ``grader_errors`` only: it is neither a pass nor a failure."""
    students = by_student(attempts)
    names: list[str] = []
    for history in students.values():
        for a in history:
            for t in a.tests:
                if t.name not in names:
                    names.append(t.name)
    out = []
    for name in names:
        first, last, best, to_pass = [], [], [], []
        never, max_score = 0, 0.0
        durations: list[float] = []
        timeouts = errors = platform = runs = 0
        passed_last: list[bool] = []
        rests: list[float] = []
        for history in students.values():
            for a in history:
                t = a.test(name)
                if t is None:
                    continue
                runs += 1
                max_score = max(max_score, t.max_score)
                if t.outcome in PLATFORM_OUTCOMES:
                    platform += 1
                    continue
                durations.append(t.duration_s)
                timeouts += t.outcome in TIMEOUT_OUTCOMES
                errors += t.outcome in ERROR_OUTCOMES
            counted = [(a, a.test(name)) for a in history]
            counted = [(a, t) for a, t in counted
                       if t is not None and t.outcome not in PLATFORM_OUTCOMES]
            if not counted:
                continue
            first.append(counted[0][1].passed)
            last.append(counted[-1][1].passed)
            best_attempt = best_of([a for a, _ in counted])
            best.append(next(t for a, t in counted if a is best_attempt).passed)
            passes = [i for i, (_, t) in enumerate(counted, start=1) if t.passed]
            if passes:
                to_pass.append(passes[0])
            else:
                never += 1
            rest = rest_of_score(*counted[-1])
            if rest is not None:
                passed_last.append(counted[-1][1].passed)
                rests.append(rest)
        r = point_biserial(passed_last, rests)
        out.append(TestStats(
            test=name, max_score=max_score, students=len(first), pass_first=_rate(first),
            pass_last=_rate(last), pass_best=_rate(best), never_passed=never,
            attempts_to_pass_mean=round(float(np.mean(to_pass)), 2) if to_pass else None,
            attempts_to_pass_median=float(np.median(to_pass)) if to_pass else None,
            runs=runs, runtime_p50_s=percentile(durations, 50),
            runtime_p95_s=percentile(durations, 95), timeouts=timeouts, errors=errors,
            grader_errors=platform, discrimination=None if r is None else round(r, 3)))
    return out


def load_graded_attempts(gb, assignment: str) -> list[GradedAttempt]:  # type: ignore[no-untyped-def]
    """Every graded submission of ``assignment`` by an active student, from the newest grading
    run of each (scores as graded, before staff overrides and late penalties)."""
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from gradebook import models as m

    with Session(gb.engine) as s:
        newest = (sa.select(sa.func.max(m.GradingRun.id).label("run"))
                  .where(m.GradingRun.status == "graded")
                  .group_by(m.GradingRun.submission_id).subquery())
        q = (sa.select(m.Student.student_id, m.Submission.attempt, m.Submission.submitted_at,
                       m.GradingRun.score, m.GradingRun.max_score, m.GradingRun.result)
             .join(newest, newest.c.run == m.GradingRun.id)
             .join(m.Submission, m.Submission.id == m.GradingRun.submission_id)
             .join(m.Student, m.Student.id == m.Submission.student_pk)
             .join(m.Assignment, m.Assignment.id == m.Submission.assignment_pk)
             .where(m.Assignment.course_id == gb.course_id, m.Assignment.name == assignment,
                    m.Student.status == "active"))
        out = []
        for student, attempt, received, score, max_score, result in s.execute(q):
            tests = tuple(TestRun(name=str(t.get("name", "?")),
                                  outcome=str(t.get("outcome") or t.get("status", "failed")),
                                  score=float(t.get("score", 0)),
                                  max_score=float(t.get("max_score", 0)),
                                  duration_s=float(t.get("duration_s", 0) or 0))
                          for t in (result or {}).get("tests", []))
            out.append(GradedAttempt(student, attempt, received, float(score), float(max_score),
                                     tests))
    return out


def draw_pass_rates(stats: Sequence[TestStats], title: str = "") -> Figure:
    """Grouped horizontal bars: per test, the pass rate on the first, best and last attempt
    (the test list reads top to bottom as on the page)."""
    from matplotlib.figure import Figure

    height = max(2.6, 0.42 * len(stats) + 1.4)
    fig = Figure(figsize=(6.5, height))
    ax = fig.add_subplot()
    ys = np.arange(len(stats))[::-1]
    bar = 0.26
    for k, (label, attr, color) in enumerate((("first attempt", "pass_first", "#c44e52"),
                                              ("last attempt", "pass_last", "#4c72b0"),
                                              ("best attempt", "pass_best", "#55a868"))):
        values = [getattr(s, attr) or 0.0 for s in stats]
        ax.barh(ys + (1 - k) * bar, values, height=bar, color=color, label=label)
    ax.set_yticks(ys, [_short(s.test) for s in stats], fontsize="small")
    ax.set_xlim(0, 100)
    ax.set_xlabel("students passing (%)")
    ax.legend(loc="lower right", fontsize="small")
    ax.set_title(title or "pass rate per test", fontsize="medium")
    fig.tight_layout()
    return fig


def draw_discrimination(stats: Sequence[TestStats], title: str = "") -> Figure:
    """Per test, the point-biserial discrimination (tests without one are left empty), with
    the usual reading marked: below 0.2 a test separates strong from weak work poorly."""
    from matplotlib.figure import Figure

    height = max(2.6, 0.32 * len(stats) + 1.4)
    fig = Figure(figsize=(6.5, height))
    ax = fig.add_subplot()
    ys = np.arange(len(stats))[::-1]
    values = [s.discrimination if s.discrimination is not None else 0.0 for s in stats]
    colors = ["#bbbbbb" if s.discrimination is None else
              "#c44e52" if s.discrimination < 0.2 else "#4c72b0" for s in stats]
    ax.barh(ys, values, color=colors)
    ax.axvline(0.2, color="#888888", linestyle="--", linewidth=1)
    ax.axvline(0.0, color="#333333", linewidth=0.8)
    ax.set_yticks(ys, [_short(s.test) for s in stats], fontsize="small")
    ax.set_xlim(min(-0.2, min(values, default=0.0) - 0.05), 1.0)
    ax.set_xlabel("point-biserial r with the rest of the score (dashed: 0.2)")
    ax.set_title(title or "discrimination per test", fontsize="medium")
    fig.tight_layout()
    return fig


def _short(name: str, width: int = 38) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def png_bytes(fig: Figure, dpi: int = 100) -> bytes:
    """A figure as PNG bytes (the Agg renderer; no pyplot, so safe in a web server's threads)."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
