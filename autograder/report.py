"""How results are shown on a terminal: score tables and per-test feedback (rich)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from autograder.results import GradingResult, Outcome

_STYLE = {Outcome.PASSED: "green", Outcome.FAILED: "red", Outcome.ERROR: "red",
          Outcome.NOT_IMPLEMENTED: "yellow", Outcome.TIMEOUT: "magenta",
          Outcome.MEMORY: "magenta", Outcome.CRASH: "magenta", Outcome.PROTOCOL: "magenta",
          Outcome.BUDGET: "magenta", Outcome.GRADER_ERROR: "bold red"}


def score_table(results: Sequence[GradingResult], title: str = "") -> Table:
    """One row per submission: score, tests passed, and what went wrong most."""
    table = Table(title=title or None, show_lines=False)
    table.add_column("submission")
    table.add_column("score", justify="right")
    table.add_column("passed", justify="right")
    table.add_column("problems")
    table.add_column("time", justify="right")
    for r in results:
        passed = sum(t.outcome == Outcome.PASSED for t in r.tests)
        kinds: dict[str, int] = {}
        for t in r.tests:
            if t.outcome != Outcome.PASSED:
                kinds[t.outcome] = kinds.get(t.outcome, 0) + 1
        problems = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in kinds.items())
        if r.output.startswith("Your submission could not be graded"):
            problems = r.output
        table.add_row(escape(r.submission), f"{r.score:g} / {r.max_score:g}",
                      f"{passed}/{len(r.tests)}", escape(problems or "-"),
                      f"{r.execution_time_s:.2f}s")
    return table


def test_table(result: GradingResult, *, show_hidden: bool = True) -> Table:
    """One row per test with its message: what a student or TA reads to fix the code."""
    table = Table(title=f"{escape(result.submission)}: {result.score:g} / {result.max_score:g}",
                  show_lines=True)
    table.add_column("test")
    table.add_column("points", justify="right")
    table.add_column("result")
    table.add_column("feedback", overflow="fold")
    for t in result.tests:
        if not show_hidden and t.visibility != "visible":
            continue
        style = _STYLE.get(t.outcome, "")
        # Names and feedback are data (test ids hold [params], students print anything).
        points = f"+{t.score:g} extra" if t.extra_credit else f"{t.score:g}/{t.max_score:g}"
        table.add_row(escape(t.name), points,
                      f"[{style}]{t.outcome.replace('_', ' ')}[/]", escape(t.output or ""))
    return table


def warn_degraded(console: Console, results: Sequence[GradingResult]) -> None:
    """Say once, clearly, which protections were not available (never silently degrade)."""
    degraded = sorted({d for r in results for d in r.degraded})
    if degraded:
        console.print("[bold yellow]Sandbox protections not available on this machine:[/]")
        for d in degraded:
            console.print(f"  [yellow]- {escape(d)}[/]")
