"""The instructor pages under ``/staff``: the gradebook table with each number's derivation and
its downloads, statistics per assignment with plots, and the similarity report (a background
job started from its page, pairs a TA marks reviewed).

* ``/staff/gradebook``: one row per student (category scores, final grade, letter, slack days
  used and left, late penalties); each number links to ``/staff/gradebook/{student}``, the
  gradebook's ``explain`` lines in sections. Downloads: ``export.csv``, ``export-canvas.csv``,
  ``export.xlsx`` (the gradebook's own export functions, so a download equals
  ``autograder gradebook export``).
* ``/staff/stats/{assignment}``: the score distribution and per-test statistics
  (:mod:`gradebook.stats`), numbers in tables beside PNG plots drawn server-side with
  matplotlib's Agg renderer and cached by the data they show.
* ``/staff/similarity/{assignment}``: a button runs ``autograder similarity`` for the
  assignment in a separate trusted process (a thread of the service waits for it and records
  the outcome); the page polls until it ends, then lists the flagged pairs, each with a form to
  mark it reviewed, and links the full report and pairs.csv.

Every route declares its action with ``Depends(require(...))``. Every student string reaches the
pages through Jinja2 autoescaping.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from autograder.service.auth import Principal
from autograder.service.models import SimilarityReview, SimilarityRun
from autograder.service.permissions import can, require
from autograder.service.staff_pages import render
from gradebook import models as gm

router = APIRouter(include_in_schema=False)
UTC = dt.timezone.utc

#: How long a similarity run may take before it is stopped (the target is 300 submissions in
#: two minutes; this leaves room for a slow machine, never for a hung one).
SIMILARITY_TIMEOUT_S = 15 * 60
_PNG_CACHE_SIZE = 64
_SIMILARITY_THRESHOLD = 0.5


def _ctx(request: Request) -> Any:
    return request.app.state.service


def _fmt(value: float | None, spec: str = ".1f", suffix: str = "") -> str:
    return "—" if value is None else f"{value:{spec}}{suffix}"


# --- the gradebook table ------------------------------------------------------------------------

@dataclass(frozen=True)
class ExplainSection:
    """A block of ``explain`` lines: its first line, the indented lines under it, an anchor."""

    anchor: str
    heading: str
    lines: tuple[str, ...]


def explain_sections(lines: tuple[str, ...] | list[str],
                     assessments: list[str]) -> list[ExplainSection]:
    """The gradebook's ``explain`` lines as sections a page can link into: a line that is not
    indented starts a section; the anchors are ``assessment-<name>``, ``slack``, ``penalties``,
    ``categories``, ``final`` (the rest are numbered)."""
    blocks: list[list[str]] = []
    for line in lines:
        if not line.strip():
            continue
        if not line.startswith(" ") or not blocks:
            blocks.append([line])
        else:
            blocks[-1].append(line)
    out, used = [], set()
    for i, block in enumerate(blocks):
        head = block[0]
        word = head.split(":")[0].strip().lower()
        anchor = f"part-{i}"
        named = next((a for a in sorted(assessments, key=len, reverse=True)
                      if head.startswith(a)), None)
        if named is not None:
            anchor = f"assessment-{named}"
        elif word in ("penalties", "categories", "final"):
            anchor = word
        elif "slack" in head.lower() and "slack" not in used:
            anchor = "slack"
        if anchor in used:
            anchor = f"{anchor}-{i}"
        used.add(anchor)
        out.append(ExplainSection(anchor, head, tuple(line.strip() for line in block[1:])))
    return out


def _gradebook_rows(ctx: Any) -> tuple[list[dict[str, Any]], list[str]]:
    grades = ctx.db.gb.grades()
    categories = list(ctx.db.gb.config.categories)
    rows = []
    for g in grades:
        penalties = [{"name": a.name, "percent": round(100 * a.penalty)}
                     for a in g.assessments if a.counted and a.penalty > 0]
        rows.append({"student": g.student_id, "name": g.name,
                     "categories": [_fmt(g.categories.get(c), ".1f") for c in categories],
                     "final": _fmt(g.final, ".2f"), "letter": g.letter or "—",
                     "slack_used": g.slack_used, "slack_left": g.slack_left,
                     "penalties": penalties})
    return rows, categories


@router.get("/staff/gradebook", response_class=HTMLResponse)
def gradebook_page(request: Request,
                   who: Principal = Depends(require("gradebook.view"))) -> Response:
    """One row per student; every number links to its derivation."""
    rows, categories = _gradebook_rows(_ctx(request))
    return render(request, "staff/instructor/gradebook.html", who, rows=rows,
                  categories=categories, can_export=can(who, "gradebook.export"))


@router.get("/staff/gradebook/{student}", response_class=HTMLResponse)
def explain_page(request: Request, student: str,
                 who: Principal = Depends(require("gradebook.view"))) -> Response:
    """The derivation of every number of one student (the gradebook's ``explain``)."""
    gb = _ctx(request).db.gb
    if student not in {s.student_id for s in gb.students()}:
        raise HTTPException(404, detail="no such student in this course's roster")
    grade = gb.grades(only=student, include_dropped=True)[0]
    names = [s.name for s in gb.specs()]
    return render(request, "staff/instructor/explain.html", who, grade=grade,
                  sections=explain_sections(grade.lines, names))


_EXPORTS = {"export.csv": ("csv", "text/csv; charset=utf-8"),
            "export-canvas.csv": ("canvas", "text/csv; charset=utf-8"),
            "export.xlsx": ("xlsx", "application/vnd.openxmlformats-officedocument."
                                    "spreadsheetml.sheet")}


def _export_bytes(ctx: Any, fmt: str) -> bytes:
    from gradebook.export import write_export

    gb = ctx.db.gb
    grades = gb.grades()
    people = {s.student_id: {"email": s.email, "section": s.section} for s in gb.students()}
    with tempfile.TemporaryDirectory(prefix="export-") as tmp:
        path = write_export(fmt, Path(tmp) / f"gradebook.{'xlsx' if fmt == 'xlsx' else 'csv'}",
                            grades, gb.specs(), gb.config, people)
        return path.read_bytes()


@router.get("/staff/gradebook/download/{file}")
async def gradebook_download(request: Request, file: str,
                             who: Principal = Depends(require("gradebook.export"))) -> Response:
    """The gradebook as CSV, Canvas's import CSV or Excel (as ``gradebook export`` writes it)."""
    if file not in _EXPORTS:
        raise HTTPException(404, detail=f"no download {file!r}; there are "
                                        f"{', '.join(_EXPORTS)}")
    fmt, media = _EXPORTS[file]
    data = await run_in_threadpool(_export_bytes, _ctx(request), fmt)
    stamp = dt.datetime.now(UTC).strftime("%Y%m%d")
    return Response(data, media_type=media, headers={
        "Content-Disposition": f'attachment; filename="gradebook-{stamp}-{file}"'})


# --- statistics ---------------------------------------------------------------------------------

def _assignment_names(ctx: Any) -> list[str]:
    return ctx.course.assignment_names()


@router.get("/staff/stats", response_class=HTMLResponse)
def stats_index(request: Request, who: Principal = Depends(require("stats.view"))) -> Response:
    """Every assessment's distribution in one table, with a link to each assignment's page."""
    from gradebook.stats import distributions

    gb = _ctx(request).db.gb
    table = distributions(gb.grades(), gb.specs())
    names = set(_assignment_names(_ctx(request)))
    rows = [{**r, "has_page": r["assessment"] in names} for r in table.to_dict("records")]
    return render(request, "staff/instructor/stats_index.html", who, rows=rows)


@dataclass(frozen=True)
class AssignmentStats:
    distribution: Any  # gradebook.stats.Plot
    summary: dict[str, Any]
    tests: list[Any]  # gradebook.stats.TestStats
    attempts: int


def _assignment_stats(ctx: Any, name: str) -> AssignmentStats:
    from gradebook.stats import (distributions, load_graded_attempts, per_test_statistics,
                                 plots)

    gb = ctx.db.gb
    spec = next((s for s in gb.specs() if s.name == name), None)
    if spec is None:
        raise HTTPException(404, detail=f"assignment {name!r} has no gradebook record yet")
    grades = gb.grades()
    attempts = load_graded_attempts(gb, name)
    summary = distributions(grades, [spec]).to_dict("records")[0]
    return AssignmentStats(distribution=plots(grades, [spec])[0], summary=summary,
                           tests=per_test_statistics(attempts), attempts=len(attempts))


@router.get("/staff/stats/{name}", response_class=HTMLResponse)
def stats_page(request: Request, name: str,
               who: Principal = Depends(require("stats.view"))) -> Response:
    """Score distribution and per-test statistics of one assignment, plots beside numbers."""
    ctx = _ctx(request)
    asg = ctx.assignment(name)
    stats = _assignment_stats(ctx, name)
    return render(request, "staff/instructor/stats.html", who, a=asg, title=asg.config.title,
                  s=stats, fmt=_fmt, plots=_PLOTS)


def _distribution_png(stats: AssignmentStats) -> tuple[Any, Any]:
    from gradebook.stats import draw

    return stats.distribution, lambda: draw(stats.distribution)


def _pass_rates_png(stats: AssignmentStats) -> tuple[Any, Any]:
    from gradebook.stats import draw_pass_rates

    return stats.tests, lambda: draw_pass_rates(stats.tests)


def _discrimination_png(stats: AssignmentStats) -> tuple[Any, Any]:
    from gradebook.stats import draw_discrimination

    return stats.tests, lambda: draw_discrimination(stats.tests)


#: plot file -> (what it shows, how to get its data and its figure)
_PLOTS = {"distribution.png": ("score distribution", _distribution_png),
          "pass-rates.png": ("pass rate per test", _pass_rates_png),
          "discrimination.png": ("discrimination per test", _discrimination_png)}


def _png(request: Request, name: str, plot: str) -> bytes:
    from gradebook.stats import png_bytes

    ctx = _ctx(request)
    ctx.assignment(name)
    data, figure = _PLOTS[plot][1](_assignment_stats(ctx, name))
    # Drawn again only when the numbers it shows change: the key is a digest of those numbers.
    key = (name, plot, hashlib.sha256(repr(data).encode()).hexdigest())
    cache: OrderedDict = getattr(request.app.state, "instructor_png_cache", None) or OrderedDict()
    request.app.state.instructor_png_cache = cache
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    png = png_bytes(figure())
    cache[key] = png
    while len(cache) > _PNG_CACHE_SIZE:
        cache.popitem(last=False)
    return png


@router.get("/staff/stats/{name}/{plot}")
async def stats_plot(request: Request, name: str, plot: str,
                     who: Principal = Depends(require("stats.view"))) -> Response:
    """One plot of the statistics page, as PNG (matplotlib, Agg)."""
    if plot not in _PLOTS:
        raise HTTPException(404, detail=f"no plot {plot!r}; there are {', '.join(_PLOTS)}")
    png = await run_in_threadpool(_png, request, name, plot)
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=60"})


# --- similarity ---------------------------------------------------------------------------------

def _assignment_pk(ctx: Any, name: str) -> int:
    with ctx.db.read() as s:
        pk = s.scalar(sa.select(gm.Assignment.id).where(gm.Assignment.course_id
                                                        == ctx.db.course_id,
                                                        gm.Assignment.name == name))
    if pk is None:
        raise HTTPException(404, detail=f"assignment {name!r} has no gradebook record yet")
    return pk


def _threads(request: Request) -> dict[int, threading.Thread]:
    threads = getattr(request.app.state, "similarity_threads", None)
    if threads is None:
        threads = request.app.state.similarity_threads = {}
    return threads


def _latest_run(request: Request, asg_pk: int) -> SimilarityRun | None:
    """The newest run; one still marked running without its thread in this process (the
    service restarted meanwhile) is marked failed, so the button works again."""
    ctx = _ctx(request)
    with ctx.db.read() as s:
        run = s.scalar(sa.select(SimilarityRun).where(SimilarityRun.assignment_pk == asg_pk)
                       .order_by(SimilarityRun.id.desc()).limit(1))
    if run is not None and run.state == "running":
        thread = _threads(request).get(run.id)
        if thread is None or not thread.is_alive():
            with ctx.db.write() as s:
                row = s.get(SimilarityRun, run.id)
                if row is not None and row.state == "running":
                    row.state, row.finished_at = "failed", dt.datetime.now(UTC)
                    row.message = "interrupted (the service stopped while it ran); run it again"
            with ctx.db.read() as s:
                run = s.get(SimilarityRun, run.id)
    return run


def _similarity_command(ctx: Any, name: str, output: Path) -> list[str]:
    from autograder.harness.worker import trusted_python

    settings = ctx.settings
    data_dir = settings.uploads_dir.parent
    return trusted_python("autograder.cli", "similarity", name, "--output", str(output),
                          "--course", str(settings.course_root), "--data-dir", str(data_dir),
                          "--threshold", str(_SIMILARITY_THRESHOLD))


def _run_similarity(ctx: Any, run_id: int, command: list[str], work: Path) -> None:
    """The background job: the report in its own process (no grading process waits on it, and
    the web process keeps answering), then its outcome recorded."""
    state, message, submissions, flagged = "failed", "", 0, 0
    try:
        work.mkdir(parents=True, exist_ok=True)
        # The database URL travels in the environment, not the command line (it may hold a
        # password, and every user of the machine can read command lines).
        env = {**os.environ, "AUTOGRADER_DB": ctx.settings.database_url()}
        done = subprocess.run(command, cwd=work, capture_output=True, text=True, env=env,
                              timeout=SIMILARITY_TIMEOUT_S)
        if done.returncode == 0:
            from autograder.similarity import PAIRS_FILE, read_pairs_csv

            out = Path(command[command.index("--output") + 1])
            rows = read_pairs_csv(out / PAIRS_FILE)
            names = {r["a"] for r in rows} | {r["b"] for r in rows}
            submissions = sum(not n.startswith("ref:") for n in names)
            flagged = sum(float(r["similarity"]) >= _SIMILARITY_THRESHOLD for r in rows)
            state, message = "done", done.stdout.strip().splitlines()[0] if done.stdout else ""
        else:
            message = (done.stderr or done.stdout).strip()[-2000:]
    except subprocess.TimeoutExpired:
        message = f"stopped after {SIMILARITY_TIMEOUT_S // 60} minutes"
    except Exception as e:  # recorded for staff; the thread must never die silently
        message = f"{type(e).__name__}: {e}"
    with ctx.db.write() as s:
        row = s.get(SimilarityRun, run_id)
        if row is not None:
            row.state, row.message = state, message
            row.submissions, row.flagged = submissions, flagged
            row.finished_at = dt.datetime.now(UTC)


@router.get("/staff/similarity", response_class=HTMLResponse)
def similarity_index(request: Request,
                     who: Principal = Depends(require("similarity.review"))) -> Response:
    """Each assignment with its latest similarity run."""
    ctx = _ctx(request)
    rows = []
    for name in _assignment_names(ctx):
        with ctx.db.read() as s:
            pk = s.scalar(sa.select(gm.Assignment.id).where(
                gm.Assignment.course_id == ctx.db.course_id, gm.Assignment.name == name))
        rows.append({"name": name, "run": _latest_run(request, pk) if pk else None})
    return render(request, "staff/instructor/similarity_index.html", who, rows=rows,
                  when=lambda t: _when(ctx, t))


def _when(ctx: Any, moment: dt.datetime | None) -> str:
    if moment is None:
        return "—"
    return moment.astimezone(ctx.zone()).strftime("%a %d %b %Y, %H:%M")


def _flagged_pairs(ctx: Any, run: SimilarityRun | None, asg_pk: int) -> list[dict[str, Any]]:
    if run is None or run.state != "done":
        return []
    from autograder.similarity import PAIRS_FILE, read_pairs_csv

    path = Path(run.output_dir) / PAIRS_FILE
    if not path.is_file():
        return []
    with ctx.db.read() as s:
        reviews = {(r.name_a, r.name_b): r for r in s.scalars(
            sa.select(SimilarityReview).where(SimilarityReview.assignment_pk == asg_pk))}
    out = []
    for row in read_pairs_csv(path):
        similarity = float(row["similarity"])
        if similarity < run.threshold or len(out) >= 200:
            break
        a, b = sorted((row["a"], row["b"]))
        review = reviews.get((a, b))
        out.append({"a": row["a"], "b": row["b"], "similarity": similarity,
                    "share_a": float(row["share_a"]), "share_b": float(row["share_b"]),
                    "review": review, "reviewed_text": _when(ctx, review.reviewed_at)
                    if review else ""})
    return out


def _similarity_view(request: Request, name: str) -> dict[str, Any]:
    ctx = _ctx(request)
    ctx.assignment(name)
    pk = _assignment_pk(ctx, name)
    run = _latest_run(request, pk)
    return {"name": name, "run": run, "pairs": _flagged_pairs(ctx, run, pk),
            "when": lambda t: _when(ctx, t)}


@router.get("/staff/similarity/{name}", response_class=HTMLResponse)
def similarity_page(request: Request, name: str,
                    who: Principal = Depends(require("similarity.review"))) -> Response:
    """The latest run's flagged pairs (each with its review), the button to run it again."""
    view = _similarity_view(request, name)
    return render(request, "staff/instructor/similarity.html", who, **view,
                  can_run=can(who, "similarity.run"))


@router.get("/staff/similarity/{name}/status", response_class=HTMLResponse)
def similarity_status(request: Request, name: str,
                      who: Principal = Depends(require("similarity.review"))) -> Response:
    """The fragment the page polls while a run is going; when it has ended, the page reloads
    (``HX-Refresh``) to show the pairs."""
    view = _similarity_view(request, name)
    response = render(request, "staff/instructor/_similarity_status.html", who, **view)
    if view["run"] is not None and view["run"].state != "running":
        response.headers["HX-Refresh"] = "true"
    return response


@router.post("/staff/similarity/{name}/run")
def similarity_run(request: Request, name: str,
                   who: Principal = Depends(require("similarity.run"))) -> Response:
    """Start a run in the background (one at a time per assignment), then back to the page."""
    ctx = _ctx(request)
    ctx.assignment(name)
    pk = _assignment_pk(ctx, name)
    latest = _latest_run(request, pk)
    if latest is not None and latest.state == "running":
        return RedirectResponse(f"/staff/similarity/{name}?flash=A+run+is+already+going",
                                status_code=303)
    base = ctx.settings.uploads_dir.parent / "similarity" / name
    with ctx.db.write() as s:
        row = SimilarityRun(assignment_pk=pk, state="running", started_by=who.login,
                            started_at=dt.datetime.now(UTC), threshold=_SIMILARITY_THRESHOLD)
        s.add(row)
        s.flush()
        run_id = row.id
        row.output_dir = str(base / f"run-{run_id}")
    command = _similarity_command(ctx, name, base / f"run-{run_id}")
    thread = threading.Thread(target=_run_similarity, name=f"similarity-{name}-{run_id}",
                              args=(ctx, run_id, command, ctx.settings.work_dir / "similarity"),
                              daemon=True)
    _threads(request)[run_id] = thread
    thread.start()
    return RedirectResponse(f"/staff/similarity/{name}", status_code=303)


@router.post("/staff/similarity/{name}/review")
async def similarity_review(request: Request, name: str,
                            who: Principal = Depends(require("similarity.review"))) -> Response:
    """Mark a pair reviewed, with the TA's note (marking it again replaces the note)."""
    form = await request.form()
    a, b = sorted((str(form.get("a", "")), str(form.get("b", ""))))
    note = str(form.get("note", "")).strip()[:2000]
    ctx = _ctx(request)
    ctx.assignment(name)
    pk = _assignment_pk(ctx, name)
    run = _latest_run(request, pk)
    pairs = {(min(p["a"], p["b"]), max(p["a"], p["b"])): p
             for p in _flagged_pairs(ctx, run, pk)}
    if (a, b) not in pairs:
        raise HTTPException(422, detail="that pair is not among the latest run's flagged pairs; "
                                        "reload the page")

    def save() -> None:
        with ctx.db.write() as s:
            row = s.scalar(sa.select(SimilarityReview).where(
                SimilarityReview.assignment_pk == pk, SimilarityReview.name_a == a,
                SimilarityReview.name_b == b))
            if row is None:
                row = SimilarityReview(assignment_pk=pk, name_a=a, name_b=b)
                s.add(row)
            row.similarity = pairs[(a, b)]["similarity"]
            row.reviewed_by, row.reviewed_at, row.note = who.login, dt.datetime.now(UTC), note

    await run_in_threadpool(save)
    return RedirectResponse(f"/staff/similarity/{name}?flash=Marked+reviewed#pairs",
                            status_code=303)


def _run_file(request: Request, name: str, file: str) -> Path:
    ctx = _ctx(request)
    ctx.assignment(name)
    run = _latest_run(request, _assignment_pk(ctx, name))
    if run is None or run.state != "done" or not (Path(run.output_dir) / file).is_file():
        raise HTTPException(404, detail="no finished similarity run yet; run it from the "
                                        "similarity page")
    return Path(run.output_dir) / file


@router.get("/staff/similarity/{name}/report", response_class=HTMLResponse)
def similarity_report(request: Request, name: str,
                      who: Principal = Depends(require("similarity.review"))) -> Response:
    """The latest run's report.html (escaped when written; no script may run in it)."""
    from autograder.similarity import REPORT_FILE

    html = _run_file(request, name, REPORT_FILE).read_bytes()
    return Response(html, media_type="text/html; charset=utf-8", headers={
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                                   "img-src data:"})


@router.get("/staff/similarity/{name}/pairs.csv")
def similarity_pairs(request: Request, name: str,
                     who: Principal = Depends(require("similarity.review"))) -> Response:
    """The latest run's pairs.csv."""
    from autograder.similarity import PAIRS_FILE

    data = _run_file(request, name, PAIRS_FILE).read_bytes()
    return Response(data, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="similarity-{name}-pairs.csv"'})
