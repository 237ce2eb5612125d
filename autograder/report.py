"""How results are shown on a terminal: score tables and per-test feedback (rich)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from autograder.results import GradingResult, Outcome, TestResult

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
        table.add_row(escape(t.name), points_text(t),
                      f"[{style}]{t.outcome.replace('_', ' ')}[/]", escape(t.output or ""))
    return table


def warn_degraded(console: Console, results: Sequence[GradingResult]) -> None:
    """Say once, clearly, which protections were not available (never silently degrade)."""
    degraded = sorted({d for r in results for d in r.degraded})
    if degraded:
        console.print("[bold yellow]Sandbox protections not available on this machine:[/]")
        for d in degraded:
            console.print(f"  [yellow]- {escape(d)}[/]")


def points_text(test: TestResult) -> str:
    """``1 / 2`` for a regular test; ``+3 extra`` for a passed extra-credit test, ``0 / +3 extra``
    for a failed one (so the student sees that bonus points exist)."""
    if test.extra_credit:
        if test.outcome == Outcome.PASSED:
            return f"+{test.score:g} extra"
        return f"0 / +{test.extra_points:g} extra" if test.extra_points else "0 extra"
    return f"{test.score:g} / {test.max_score:g}"


def short_names(tests: Sequence[TestResult]) -> dict[str, str]:
    """Each test's own name (``test_softmax_loss_shapes``, ``test_edge[two_classes]``), without
    its file, unless two files hold tests of the same name."""
    short = {t.name: t.name.rpartition("::")[2] for t in tests}
    counts: dict[str, int] = {}
    for name in short.values():
        counts[name] = counts.get(name, 0) + 1
    return {full: name if counts[name] == 1 else full for full, name in short.items()}


#: How the verdict words a test whose module could not be imported (harness/verdict.py).
_IMPORT_FAILED = "Your module could not be imported"


def _line_to_fix(message: str) -> str:
    """``softmax.py, line 12`` from the last place in a student traceback that names a line."""
    places = re.findall(r'File "([^"]+)", line (\d+)', message)
    if not places:
        return ""
    file, line = places[-1]
    return f"{file.rsplit('/', 1)[-1]}, line {line}"


def print_check(console: Console, result: GradingResult) -> None:
    """What a student's ``autograder check`` prints: a problem shared by every test (the module
    does not import) once, with the line to fix; then one line per test with its own name, its
    points and its outcome, and its feedback indented below. Nothing is cut at any width: long
    names and messages wrap."""
    import_failures = {t.output for t in result.tests
                       if t.output.startswith(_IMPORT_FAILED) and t.outcome != Outcome.PASSED}
    for message in sorted(import_failures):
        # "Your module could not be imported (importing softmax.py): SyntaxError: ...", then the
        # traceback (the student's frames, the failing line, the error).
        first, _, trace = message.partition("\n")
        module = re.search(r"\(importing ([^)]+)\)", first)
        console.print(f"[bold red]{escape(module.group(1) if module else 'Your module')} could "
                      f"not be imported[/], so no test could call it:")
        console.print(Padding(Text(trace.strip("\n") or first), (0, 0, 0, 4), expand=False))
        where = _line_to_fix(message)
        if where:
            console.print(f"Fix [bold]{escape(where)}[/] and run `autograder check` again.")
        console.print()
    names = short_names(result.tests)
    utf8 = "utf" in (console.encoding or "").lower()
    for t in result.tests:
        style = _STYLE.get(t.outcome, "")
        mark = (f"[green]{'✓' if utf8 else '+'}[/]" if t.outcome == Outcome.PASSED
                else f"[{style}]{'✗' if utf8 else 'x'}[/]")
        line = Text.from_markup(f"{mark} ")
        line.append(names[t.name], style="bold")
        line.append(f"  {points_text(t)}  ")
        if t.output in import_failures:
            line.append("not run: the module could not be imported (above)", style=style)
        else:
            line.append(t.outcome.replace("_", " "), style=style)
        console.print(line, overflow="fold")
        if t.output and t.output not in import_failures:
            console.print(Padding(Text(t.output), (0, 0, 0, 4), expand=False), overflow="fold")
