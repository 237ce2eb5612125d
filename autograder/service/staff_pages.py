"""The TA pages under ``/staff``: submissions, regrades, overrides, extensions, accommodations,
regrade requests, the audit log and operations; staff invitations and the roster.

Each route declares its action with ``Depends(require("..."))`` (the one permission table is
:mod:`autograder.service.permissions`). Pages render ``templates/staff/*.html``, which extend
``staff/base.html``; :func:`render` gives every page its navigation (only the links the user may
follow, to pages that exist), the CSRF token and the course's name. Jinja2 autoescaping is on:
student text is shown as text.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.datastructures import UploadFile

from autograder.errors import UserError
from autograder.service import staff_views as views
from autograder.service.auth import Principal, csrf_token
from autograder.service.permissions import ROLES, can, invite_staff, iter_routes, require
from gradebook import models as gm
from gradebook.errors import GradebookError

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.autoescape = True  # every template, whatever its name: student text is escaped
templates.env.globals["can"] = can
router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class NavItem:
    """A link of the staff navigation, shown to those who may do ``action``."""

    label: str
    path: str
    action: str


#: The staff navigation, in order. Another helper's page adds its line here; a link shows only
#: to roles allowed its action and only once a route with that path exists in the app.
STAFF_NAV: list[NavItem] = [
    NavItem("Submissions", "/staff/submissions", "submissions.view"),
    NavItem("Regrade requests", "/staff/regrade-requests", "regrade_requests.answer"),
    NavItem("Extensions", "/staff/extensions", "extensions.manage"),
    NavItem("Accommodations", "/staff/accommodations", "accommodations.manage"),
    NavItem("Exams", "/staff/exams", "exams.monitor"),
    NavItem("Audit log", "/staff/audit", "audit.view"),
    NavItem("Operations", "/staff/operations", "operations.view"),
    NavItem("Gradebook", "/staff/gradebook", "gradebook.view"),
    NavItem("Statistics", "/staff/stats", "stats.view"),
    NavItem("Similarity", "/staff/similarity", "similarity.review"),
    NavItem("LMS passback", "/staff/lti", "lti.passback.view"),
    NavItem("Staff & roster", "/staff/people", "staff.invite"),
]


def _route_paths(request: Request) -> set[str]:
    return {path for path, _ in iter_routes(request.app.routes)}


def nav_for(request: Request, who: Principal) -> list[dict[str, Any]]:
    """The navigation links ``who`` may follow, to pages the app has."""
    paths = _route_paths(request)
    here = request.url.path
    return [{"label": n.label, "path": n.path,
             "current": here == n.path or here.startswith(n.path + "/")}
            for n in STAFF_NAV if n.path in paths and can(who, n.action)]


def render(request: Request, template: str, who: Principal, status_code: int = 200,
           **values: Any) -> Response:
    """Render a staff page (a template extending ``staff/base.html``) for ``who``."""
    ctx = request.app.state.service
    values.setdefault("flash", request.query_params.get("flash"))
    values.setdefault("error", request.query_params.get("error"))
    return templates.TemplateResponse(request, template, {
        "course_name": ctx.db.gb.config.name, "timezone": ctx.db.gb.config.timezone,
        "csrf_token": csrf_token(request), "static_url": lambda name: f"/static/{name}",
        "user": who, "nav": nav_for(request, who), **values}, status_code=status_code)


@router.get("/staff", response_class=HTMLResponse)
def staff_home(request: Request,
               who: Principal = Depends(require("submissions.view"))) -> Response:
    """The staff start page: the pages this user may open."""
    return render(request, "staff/home.html", who)


# --- helpers -------------------------------------------------------------------------------------

def _ctx(request: Request) -> Any:
    return request.app.state.service


def _when(ctx: Any, moment: dt.datetime | None) -> str:
    """A time in the course's zone, as the pages write it."""
    if moment is None:
        return "—"
    return moment.astimezone(ctx.zone()).strftime("%a %d %b %Y, %H:%M")


def _pts(score: float | None, max_score: float | None = None) -> str:
    if score is None:
        return "—"
    return f"{score:g}" if max_score is None else f"{score:g} / {max_score:g}"


def _secs(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s" if value < 120 \
        else f"{value / 60:.1f} min"


templates.env.filters["when_raw"] = lambda m: "" if m is None else m.isoformat()
templates.env.globals["pts"] = _pts
templates.env.globals["secs"] = _secs


def _back(path: str, flash: str = "", error: str = "") -> RedirectResponse:
    """Post/Redirect/Get with a one-line message on the page it lands on."""
    query = {k: v for k, v in (("flash", flash), ("error", error)) if v}
    sep = "&" if "?" in path else "?"
    return RedirectResponse(path + (sep + urlencode(query) if query else ""), status_code=303)


def _filter_from(params: Any) -> views.SubmissionFilter:
    late = str(params.get("late", "") or "")
    return views.SubmissionFilter(
        assignment=str(params.get("assignment", "") or "").strip(),
        student=str(params.get("student", "") or "").strip()[:100],
        state=str(params.get("state", "") or "").strip(),
        score_min=views.parse_number(params.get("score_min"), "lowest score"),
        score_max=views.parse_number(params.get("score_max"), "highest score"),
        late=late if late in ("late", "on_time") else "")


STATES = [("queued", "queued"), ("running", "running"), ("graded", "graded"),
          ("not_gradable", "not gradable"), ("system_error", "system error"),
          ("superseded", "superseded"), ("recorded", "graded outside the service")]


def _listing(request: Request, who: Principal) -> dict[str, Any]:
    ctx = _ctx(request)
    error = None
    try:
        f = _filter_from(request.query_params)
    except UserError as e:
        f, error = views.SubmissionFilter(), str(e)
    rows = views.submission_rows(ctx.db, f)
    for r in rows:
        r["received_text"] = _when(ctx, r["received_at"])
    return {"rows": rows, "f": f, "filter_query": urlencode(f.as_query()), "error": error,
            "assignments": ctx.db.gb.assignment_names(), "states": STATES,
            "max_rows": views.MAX_ROWS}


# --- submissions ---------------------------------------------------------------------------------

@router.get("/staff/submissions", response_class=HTMLResponse)
def submissions_page(request: Request,
                     who: Principal = Depends(require("submissions.view"))) -> Response:
    """The submission list; HTMX asks for the table alone when a filter changes."""
    values = _listing(request, who)
    if request.headers.get("hx-request") and request.headers.get("hx-target") == "results":
        return render(request, "staff/_submissions_table.html", who, **values)
    return render(request, "staff/submissions.html", who, **values)


@router.get("/api/v1/staff/submissions")
def submissions_json(request: Request,
                     who: Principal = Depends(require("submissions.view"))) -> list[dict]:
    """The submission list as JSON (the same filters as the page's query parameters)."""
    try:
        f = _filter_from(request.query_params)
    except UserError as e:
        raise HTTPException(422, detail=str(e)) from None
    return jsonable_encoder(views.submission_rows(_ctx(request).db, f))


def _detail_or_404(request: Request, submission_id: int) -> dict[str, Any]:
    try:
        return views.submission_detail(_ctx(request), submission_id)
    except LookupError as e:
        raise HTTPException(404, detail=str(e)) from None


@router.get("/staff/submissions/{submission_id}", response_class=HTMLResponse)
def submission_page(request: Request, submission_id: int, diff: str = "side",
                    who: Principal = Depends(require("submissions.view"))) -> Response:
    """One submission: every test (hidden ones too) with its output, the files highlighted,
    the diff against the release stub, regrades and what they changed, overrides, requests."""
    ctx = _ctx(request)
    d = _detail_or_404(request, submission_id)
    files = []
    try:
        staged = views.student_files(ctx, d)
    except HTTPException:  # the assignment left the course: its files cannot be staged
        staged = []
    for f in staged:
        files.append({**f, "html": views.highlight(f["name"], f["text"]),
                      "diff": views.stub_diff(ctx, d["assignment"], f["name"], f["text"],
                                              side_by_side=diff != "unified")})
    d["received_text"] = _when(ctx, d["received_at"])
    d["due_text"] = _when(ctx, d["due"])
    return render(request, "staff/submission.html", who, s=d, files=files,
                  diff_mode="unified" if diff == "unified" else "side",
                  regrades=_regrade_view(ctx, views.regrade_changes(ctx.db,
                                                                    submission_id=d["id"])),
                  requests=_request_view(ctx, views.regrade_requests(
                      ctx.db, submission_id=d["id"])),
                  pygments_css=views.highlight_css())


def _regrade_view(ctx: Any, regrades: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for r in regrades:
        r["requested_text"] = _when(ctx, r["requested_at"])
        if r["new_score"] is not None and r["old_score"] is not None:
            delta = r["new_score"] - r["old_score"]
            r["direction"] = "up" if delta > 1e-9 else "down" if delta < -1e-9 else "same"
        else:
            r["direction"] = "same"
    return regrades


@router.get("/staff/submissions/{submission_id}/regrades", response_class=HTMLResponse)
def submission_regrades(request: Request, submission_id: int,
                        who: Principal = Depends(require("submissions.view"))) -> Response:
    """The regrades fragment HTMX polls while one is pending."""
    ctx = _ctx(request)
    _detail_or_404(request, submission_id)
    return render(request, "staff/_regrades.html", who, submission_id=submission_id,
                  regrades=_regrade_view(ctx, views.regrade_changes(
                      ctx.db, submission_id=submission_id)))


@router.post("/staff/submissions/{submission_id}/regrade")
async def regrade_one(request: Request, submission_id: int,
                      who: Principal = Depends(require("submissions.regrade"))) -> Response:
    form = await request.form()
    _detail_or_404(request, submission_id)
    batch = await run_in_threadpool(views.request_regrades, _ctx(request).db, [submission_id],
                                    by=who.login, reason=str(form.get("reason", "")).strip())
    del batch
    return _back(f"/staff/submissions/{submission_id}",
                 flash="Regrade queued in the low-priority lane; the changes appear below "
                       "once it is graded.")


@router.post("/staff/regrades")
async def regrade_many(request: Request,
                       who: Principal = Depends(require("submissions.regrade"))) -> Response:
    """Regrade every submission the filter matches (a whole assignment: filter by it alone)."""
    form = await request.form()
    try:
        f = _filter_from(form)
    except UserError as e:
        return _back("/staff/submissions", error=str(e))
    if not f.assignment:
        return _back("/staff/submissions?" + urlencode(f.as_query()),
                     error="Choose an assignment before regrading a set of submissions.")
    ctx = _ctx(request)
    rows = views.submission_rows(ctx.db, f)
    ids = [r["id"] for r in rows if r["state"] != "superseded"]
    batch = await run_in_threadpool(views.request_regrades, ctx.db, ids, by=who.login,
                                    reason=str(form.get("reason", "")).strip())
    return _back(f"/staff/regrades/{batch}")


@router.get("/staff/regrades/{batch}", response_class=HTMLResponse)
def regrade_batch(request: Request, batch: str,
                  who: Principal = Depends(require("submissions.regrade"))) -> Response:
    """A batch of regrades: each one's state and, once graded, old → new per test. HTMX
    refreshes the table until every one is final."""
    ctx = _ctx(request)
    regrades = _regrade_view(ctx, views.regrade_changes(ctx.db, batch=batch))
    template = ("staff/_batch_table.html" if request.headers.get("hx-request")
                else "staff/regrade_batch.html")
    return render(request, template, who, batch=batch, regrades=regrades,
                  pending=sum(1 for r in regrades if not r["final"]))


@router.post("/staff/submissions/{submission_id}/override")
async def override(request: Request, submission_id: int,
                   who: Principal = Depends(require("grades.override"))) -> Response:
    """A per-test score override; the comment is required; kept in the audit log."""
    form = await request.form()
    d = _detail_or_404(request, submission_id)
    here = f"/staff/submissions/{submission_id}"
    test = str(form.get("test", ""))
    comment = str(form.get("comment", "")).strip()
    try:
        score = views.parse_number(form.get("score"), "score")
        if score is None:
            raise UserError("give the test's new score")
        if not comment:
            raise UserError("an override needs a comment saying why; nothing was changed")
        top = next((t["max_score"] for t in d["tests"] if t["name"] == test), None)
        if top is None:
            raise UserError("choose one of this submission's tests")
        if not 0 <= score <= max(float(top), score if float(top) == 0 else float(top)):
            raise UserError(f"the score of {test} must be between 0 and {float(top):g}")
        await run_in_threadpool(_ctx(request).db.gb.override_test, d["student"],
                                d["assignment"], test, score, comment=comment, by=who.login)
    except (UserError, GradebookError) as e:
        return _back(here, error=str(e))
    return _back(here, flash=f"{test}: score set to {score:g} (in the audit log).")


# --- extensions and accommodations ---------------------------------------------------------------

@router.get("/staff/extensions", response_class=HTMLResponse)
def extensions_page(request: Request,
                    who: Principal = Depends(require("extensions.manage"))) -> Response:
    ctx = _ctx(request)
    with ctx.db.read() as s:
        rows = s.execute(sa.select(gm.Extension, gm.Student.student_id, gm.Student.name,
                                   gm.Assignment.name, gm.Assignment.due)
                         .join(gm.Student, gm.Student.id == gm.Extension.student_pk)
                         .join(gm.Assignment, gm.Assignment.id == gm.Extension.assignment_pk)
                         .where(gm.Student.course_id == ctx.db.course_id)
                         .order_by(gm.Assignment.name, gm.Student.student_id)).all()
    extensions = [{"student": sid, "student_name": name, "assignment": asg,
                   "due_text": _when(ctx, due), "new_due_text": _when(ctx, e.due),
                   "reason": e.reason, "granted_by": e.granted_by,
                   "granted_text": _when(ctx, e.granted_at)}
                  for e, sid, name, asg, due in rows]
    return render(request, "staff/extensions.html", who, extensions=extensions,
                  assignments=ctx.db.gb.assignment_names(),
                  students=[s.student_id for s in ctx.db.gb.students(include_dropped=False)])


@router.post("/staff/extensions")
async def extension_grant(request: Request,
                          who: Principal = Depends(require("extensions.manage"))) -> Response:
    form = await request.form()
    ctx = _ctx(request)
    student, assignment = str(form.get("student", "")).strip(), str(form.get("assignment", ""))
    reason = str(form.get("reason", "")).strip()
    try:
        days = views.parse_number(form.get("days"), "days")
        due_raw = str(form.get("due", "")).strip()
        if not reason:
            raise UserError("say why the extension is granted (it goes in the audit log)")
        if due_raw:
            due = dt.datetime.fromisoformat(due_raw)
            due = due.replace(tzinfo=ctx.zone()) if due.tzinfo is None else due
            new_due = await run_in_threadpool(ctx.db.gb.grant_extension, student, assignment,
                                              due=due, reason=reason, granted_by=who.login)
        elif days is not None and days == int(days) and days > 0:
            new_due = await run_in_threadpool(ctx.db.gb.grant_extension, student, assignment,
                                              days=int(days), reason=reason,
                                              granted_by=who.login)
        else:
            raise UserError("give a new due time, or a whole number of days (1 or more)")
    except ValueError:
        return _back("/staff/extensions", error="the new due time must look like "
                                                "2025-03-01T23:59")
    except (UserError, GradebookError) as e:
        return _back("/staff/extensions", error=str(e))
    return _back("/staff/extensions",
                 flash=f"{student} may submit {assignment} until {_when(ctx, new_due)}.")


@router.post("/staff/extensions/revoke")
async def extension_revoke(request: Request,
                           who: Principal = Depends(require("extensions.manage"))) -> Response:
    form = await request.form()
    ctx = _ctx(request)
    student, assignment = str(form.get("student", "")), str(form.get("assignment", ""))
    try:
        await run_in_threadpool(ctx.db.gb.revoke_extension, student, assignment,
                                reason=str(form.get("reason", "")).strip(), revoked_by=who.login)
    except (UserError, GradebookError) as e:
        return _back("/staff/extensions", error=str(e))
    return _back("/staff/extensions", flash=f"{student}'s extension on {assignment} revoked.")


@router.get("/staff/accommodations", response_class=HTMLResponse)
def accommodations_page(request: Request,
                        who: Principal = Depends(require("accommodations.manage"))) -> Response:
    """Accommodations (time factor and extra minutes), once per student, applied to every
    timed assessment."""
    ctx = _ctx(request)
    with ctx.db.read() as s:
        rows = s.execute(sa.select(gm.Accommodation, gm.Student.student_id, gm.Student.name)
                         .join(gm.Student, gm.Student.id == gm.Accommodation.student_pk)
                         .where(gm.Student.course_id == ctx.db.course_id)
                         .order_by(gm.Student.student_id)).all()
        timed = list(s.scalars(sa.select(gm.Assignment.name).where(
            gm.Assignment.course_id == ctx.db.course_id,
            gm.Assignment.kind.in_(["exam", "quiz"]), gm.Assignment.source != "removed")))
    items = [{"student": sid, "student_name": name, "time_factor": a.time_factor,
              "extra_minutes": a.extra_minutes, "reason": a.reason, "set_by": a.set_by,
              "set_text": _when(ctx, a.set_at)} for a, sid, name in rows]
    return render(request, "staff/accommodations.html", who, accommodations=items, timed=timed,
                  students=[s.student_id for s in ctx.db.gb.students(include_dropped=False)])


@router.post("/staff/accommodations")
async def accommodation_set(request: Request,
                            who: Principal = Depends(require("accommodations.manage"))) -> Response:
    form = await request.form()
    ctx = _ctx(request)
    student = str(form.get("student", "")).strip()
    reason = str(form.get("reason", "")).strip()
    try:
        factor = views.parse_number(form.get("time_factor"), "time factor")
        extra = views.parse_number(form.get("extra_minutes"), "extra minutes")
        if not reason:
            raise UserError("say why (it goes in the audit log)")
        await run_in_threadpool(ctx.db.gb.set_accommodation, student,
                                time_factor=1.0 if factor is None else factor,
                                extra_minutes=0.0 if extra is None else extra,
                                reason=reason, set_by=who.login)
    except (UserError, GradebookError) as e:
        return _back("/staff/accommodations", error=str(e))
    return _back("/staff/accommodations", flash=f"{student}'s accommodation saved; it applies "
                                                f"to every timed assessment.")


@router.post("/staff/accommodations/remove")
async def accommodation_remove(request: Request,
                               who: Principal = Depends(require("accommodations.manage"))) -> Response:
    form = await request.form()
    ctx = _ctx(request)
    student = str(form.get("student", ""))
    try:
        await run_in_threadpool(ctx.db.gb.remove_accommodation, student,
                                reason=str(form.get("reason", "")).strip(), removed_by=who.login)
    except (UserError, GradebookError) as e:
        return _back("/staff/accommodations", error=str(e))
    return _back("/staff/accommodations", flash=f"{student}'s accommodation removed.")


# --- audit log -----------------------------------------------------------------------------------

@router.get("/staff/audit", response_class=HTMLResponse)
def audit_page(request: Request, student: str = "", assignment: str = "",
               who: Principal = Depends(require("audit.view"))) -> Response:
    """Every change made by hand: who, when, what, why (newest first)."""
    ctx = _ctx(request)
    entries = ctx.db.gb.audit(student=student or None, assignment=assignment or None)
    rows = [{"at_text": _when(ctx, e.at), "actor": e.actor, "action": e.action,
             "student": e.student, "assignment": e.assignment, "detail": e.detail,
             "reason": e.reason} for e in reversed(entries)]
    return render(request, "staff/audit.html", who, entries=rows[:1000], student=student,
                  assignment=assignment, assignments=ctx.db.gb.assignment_names())


# --- regrade requests ----------------------------------------------------------------------------

def _request_view(ctx: Any, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for r in requests:
        r["created_text"] = _when(ctx, r["created_at"])
        r["resolved_text"] = _when(ctx, r["resolved_at"])
        for m in r["messages"]:
            m["at_text"] = _when(ctx, m["at"])
    return requests


@router.get("/staff/regrade-requests", response_class=HTMLResponse)
def requests_page(request: Request, state: str = "open",
                  who: Principal = Depends(require("regrade_requests.answer"))) -> Response:
    ctx = _ctx(request)
    state = state if state in ("open", "resolved", "all") else "open"
    items = _request_view(ctx, views.regrade_requests(
        ctx.db, state=None if state == "all" else state))
    return render(request, "staff/regrade_requests.html", who, requests=items, state=state)


@router.get("/staff/regrade-requests/{request_id}", response_class=HTMLResponse)
def request_page(request: Request, request_id: int,
                 who: Principal = Depends(require("regrade_requests.answer"))) -> Response:
    ctx = _ctx(request)
    found = [r for r in views.regrade_requests(ctx.db) if r["id"] == request_id]
    if not found:
        raise HTTPException(404, detail=f"no regrade request {request_id}")
    return render(request, "staff/regrade_request.html", who, r=_request_view(ctx, found)[0])


@router.post("/staff/regrade-requests/{request_id}/reply")
async def request_reply(request: Request, request_id: int,
                        who: Principal = Depends(require("regrade_requests.answer"))) -> Response:
    form = await request.form()
    here = f"/staff/regrade-requests/{request_id}"
    try:
        await run_in_threadpool(views.reply_regrade_request, _ctx(request).db, request_id,
                                author=who.login, role=who.role,
                                body=str(form.get("body", "")),
                                resolve=form.get("resolve") == "1")
    except LookupError as e:
        raise HTTPException(404, detail=str(e)) from None
    except UserError as e:
        return _back(here, error=str(e))
    return _back(here, flash="Answer sent." if form.get("resolve") != "1" else
                 "Answered and resolved.")


# --- operations ----------------------------------------------------------------------------------

def _ops_view(ctx: Any) -> dict[str, Any]:
    ops = views.operations(ctx.db)
    for w in ops["workers"]:
        w["heartbeat_text"] = _when(ctx, w["heartbeat_at"])
    if ops["oldest"]:
        ops["oldest"]["enqueued_text"] = _when(ctx, ops["oldest"]["enqueued_at"])
    return ops


@router.get("/staff/operations", response_class=HTMLResponse)
def operations_page(request: Request,
                    who: Principal = Depends(require("operations.view"))) -> Response:
    """Queue depth per lane, the oldest queued job, workers' heartbeats, phase p50/p95; HTMX
    refreshes the panel every 5 s."""
    template = ("staff/_operations.html" if request.headers.get("hx-request")
                else "staff/operations.html")
    return render(request, template, who, ops=_ops_view(_ctx(request)),
                  warning_s=views.HEARTBEAT_WARNING_S, critical_s=views.HEARTBEAT_CRITICAL_S)


@router.get("/api/v1/staff/operations")
def operations_json(request: Request,
                    who: Principal = Depends(require("operations.view"))) -> dict:
    return jsonable_encoder(views.operations(_ctx(request).db))


# --- staff and roster ----------------------------------------------------------------------------

@router.get("/staff/people", response_class=HTMLResponse)
def people_page(request: Request,
                who: Principal = Depends(require("staff.invite"))) -> Response:
    ctx = _ctx(request)
    staff = ctx.db.gb.staff()
    students = ctx.db.gb.students()
    return render(request, "staff/people.html", who, staff=staff, students=students,
                  roles=[r for r in ROLES if r != "student"], invite_link=None)


@router.post("/staff/people/invite", response_class=HTMLResponse)
async def people_invite(request: Request,
                        who: Principal = Depends(require("staff.invite"))) -> Response:
    """Invite a grader, TA or instructor: the page shows the one-time link to send them."""
    form = await request.form()
    ctx = _ctx(request)
    email, role = str(form.get("email", "")).strip(), str(form.get("role", ""))
    try:
        token = await run_in_threadpool(invite_staff, ctx.db, email, role,
                                        name=str(form.get("name", "")).strip(), by=who.login,
                                        days=ctx.settings.invitation_days)
    except (UserError, GradebookError) as e:
        return _back("/staff/people", error=str(e))
    link = f"{ctx.settings.public_url.rstrip('/')}/invite/{token}"
    return render(request, "staff/people.html", who, staff=ctx.db.gb.staff(),
                  students=ctx.db.gb.students(), roles=[r for r in ROLES if r != "student"],
                  invite_link=link, invited=email,
                  flash=f"{email} invited as {role}. Send them this link (shown once).")


@router.post("/staff/people/roster")
async def people_roster(request: Request,
                        who: Principal = Depends(require("roster.sync"))) -> Response:
    """Import the roster from an uploaded CSV (id, name, email, section), through the
    gradebook's roster import; students missing from it are dropped only when asked."""
    form = await request.form()
    upload = form.get("roster")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return _back("/staff/people", error="choose the roster CSV file to upload")
    data = await upload.read(2 * 2**20 + 1)
    if len(data) > 2 * 2**20:
        return _back("/staff/people", error="the roster file is larger than 2 MiB")
    ctx = _ctx(request)
    try:
        report = await run_in_threadpool(_import_roster, ctx.db, data,
                                         form.get("drop_missing") == "1", who.login)
    except (UserError, GradebookError) as e:
        return _back("/staff/people", error=str(e))
    return _back("/staff/people", flash=report)


def _import_roster(db: Any, data: bytes, drop_missing: bool, by: str) -> str:
    from gradebook.csvfiles import parse_roster

    with tempfile.TemporaryDirectory(prefix="ag-roster-") as tmp:
        path = Path(tmp) / "roster.csv"
        path.write_bytes(data)
        rows = parse_roster(path)
    report = db.gb.import_roster(rows, drop_missing=drop_missing)
    summary = (f"Roster imported: {len(report.added)} added, {len(report.updated)} updated, "
               f"{len(report.reactivated)} reactivated, {len(report.dropped)} dropped, "
               f"{len(report.not_in_file) - len(report.dropped)} not in the file (kept).")
    with db.write() as s:
        s.add(gm.AuditEntry(course_id=db.course_id, at=dt.datetime.now(dt.timezone.utc),
                            actor=by, action="roster imported", detail=summary, reason=""))
    return summary
