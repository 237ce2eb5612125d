"""What a student may see of a result: the one place that filters by visibility and time.

A test is shown (name, points, outcome, message and output) only when its visibility allows it
now: ``visible`` always; ``after_due_date`` once the student's own due time (with an
extension) has passed; ``after_published`` once the assignment's grades are published; ``hidden``
never. A test not shown is still counted: it is folded into one line, ``hidden_tests`` (how
many, points earned and possible), which names none of them and carries no message or output.
Staff-only fields (resource use, the backend, protections, run ids) are dropped.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

UTC = dt.timezone.utc


def is_visible(visibility: str, *, now: dt.datetime, due: dt.datetime | None,
               published: dt.datetime | None) -> bool:
    """Whether a test of ``visibility`` may be shown to the student at ``now``."""
    if visibility in ("visible", "public"):
        return True
    if visibility == "after_due_date":
        return due is not None and now >= due
    if visibility == "after_published":
        return published is not None and now >= published
    return False  # "hidden", and anything unknown: never shown


def student_view(result: dict[str, Any], *, now: dt.datetime, due: dt.datetime | None,
                 published: dt.datetime | None) -> dict[str, Any]:
    """The parts of a result (``GradingResult.to_json()``) that the student may see at ``now``."""
    shown: list[dict[str, Any]] = []
    folded = {"count": 0, "score": 0.0, "max_score": 0.0}
    for t in result.get("tests", []):
        if is_visible(str(t.get("visibility", "hidden")), now=now, due=due, published=published):
            shown.append({"name": t.get("name", ""), "score": t.get("score", 0.0),
                          "max_score": t.get("max_score", 0.0), "status": t.get("status", ""),
                          "outcome": t.get("outcome", ""), "output": t.get("output", ""),
                          "visibility": t.get("visibility", "visible"),
                          "extra_credit": bool(t.get("extra_credit", False))})
        else:
            folded["count"] += 1
            folded["score"] += float(t.get("score", 0.0))
            folded["max_score"] += float(t.get("max_score", 0.0))
    folded["score"] = round(folded["score"], 6)
    folded["max_score"] = round(folded["max_score"], 6)
    return {"score": result.get("score", 0.0), "max_score": result.get("max_score", 0.0),
            "output": result.get("output", ""), "tests": shown, "hidden_tests": folded}


def withheld_view(view: dict[str, Any], *, public: bool, note: str) -> dict[str, Any]:
    """A :func:`student_view` cut down for a timed exam whose results are not out (during the
    attempt, or after it until staff release them): no score, nothing of the hidden tests (not
    even how many), and the public tests only when the exam shows them (``public``)."""
    shown = [t for t in view.get("tests", []) if public and t.get("visibility") in
             ("visible", "public")]
    return {"score": None, "max_score": None, "output": "", "tests": shown,
            "hidden_tests": {"count": 0, "score": 0.0, "max_score": 0.0},
            "results_withheld": note}
