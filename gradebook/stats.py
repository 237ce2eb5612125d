"""What the TA re-teaches: per-assessment score distributions, per-test pass rates (the test
most students fail first), and histograms as PNG files."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from gradebook.policy import AssessmentSpec, StudentGrade
from gradebook.store import TestRecord


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


def histograms(grades: Sequence[StudentGrade], specs: Sequence[AssessmentSpec],
               out_dir: Path) -> list[Path]:
    """One PNG per assessment (percentages after penalties) and one of the final grades."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    series = [(spec.name, [g.assessment(spec.name).percent for g in grades
                           if g.assessment(spec.name).counted]) for spec in specs]
    series.append(("final", [g.final for g in grades if g.final is not None]))
    for name, values in series:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.hist(values, bins=[i * 5 for i in range(21)], color="#4c72b0", edgecolor="white")
        ax.set_xlim(0, 100)
        ax.set_xlabel("percent" + (" (final weighted grade)" if name == "final" else
                                   " (after late penalties)"))
        ax.set_ylabel("students")
        ax.set_title(f"{name}: {len(values)} students")
        fig.tight_layout()
        path = out_dir / f"{_safe(name)}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written
