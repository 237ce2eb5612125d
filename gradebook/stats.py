"""What the TA re-teaches: per-assessment score distributions, per-test pass rates (the test
most students fail first), and histograms as PNG files (one file per plot)."""

from __future__ import annotations

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
