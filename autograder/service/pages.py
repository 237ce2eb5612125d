"""The student's pages: server-rendered Jinja2 with HTMX, over the same views as the JSON API.

* ``/login``, ``/logout``, ``/invite/{token}`` (set a password): forms with CSRF tokens.
* ``/``: the student's assignments (due time in the course time zone, points, attempts left this
  hour, slack days left).
* ``/assignments/{name}``: the upload form (module files, a ``.zip`` or a notebook) and the list
  of attempts. The form posts to ``/assignments/{name}/submit`` and works without JavaScript.
* ``/submissions/{id}``: state with queue position and an estimate, then the feedback. HTMX
  fetches ``/submissions/{id}/status`` every second and swaps it in; the final fragment has no
  trigger, so polling stops by itself.

Every value comes from :mod:`autograder.service.api` (``describe``, ``assignments``, ``me``,
``my_submissions``, the upload's intake): the pages show nothing the API would not. Jinja2
autoescaping is on for every template, so student output (a ``<script>`` printed by a test) is
shown as text and never runs.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from autograder.results import Outcome
from autograder.service import api, auth, queue
from autograder.service.auth import AuthError, Principal, check_csrf, csrf_token
from autograder.service.models import JobState, TERMINAL_STATES

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.autoescape = True  # every template, whatever its name: student text is escaped
router = APIRouter(include_in_schema=False)
UTC = dt.timezone.utc

STATE_TEXT = {
    JobState.QUEUED: "queued", JobState.RUNNING: "running", JobState.GRADED: "graded",
    JobState.NOT_GRADABLE: "not gradable", JobState.SYSTEM_ERROR: "could not be graded",
    JobState.SUPERSEDED: "replaced by a newer submission",
}
OUTCOME_TEXT = {
    Outcome.PASSED: "passed", Outcome.FAILED: "failed", Outcome.ERROR: "error",
    Outcome.NOT_IMPLEMENTED: "not implemented", Outcome.TIMEOUT: "timed out",
    Outcome.MEMORY: "out of memory", Outcome.CRASH: "crashed",
    Outcome.PROTOCOL: "broke the protocol", Outcome.BUDGET: "over the time budget",
    Outcome.INTAKE: "could not be read", Outcome.GRADER_ERROR: "grader error (not counted)",
}


def register(app: FastAPI) -> None:
    """Add the pages and their static files (htmx, the stylesheet) to ``app``."""
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(router)


# --- helpers ---------------------------------------------------------------------------------

def _ctx(request: Request) -> api.ServiceContext:
    return request.app.state.service


def _static_url(name: str) -> str:
    return f"/static/{name}"


def _render(request: Request, template: str, status_code: int = 200, **values: Any) -> Response:
    ctx = _ctx(request)
    values.setdefault("user", None)
    return templates.TemplateResponse(request, template, {
        "course_name": ctx.db.gb.config.name, "timezone": ctx.db.gb.config.timezone,
        "csrf_token": csrf_token(request), "static_url": _static_url, **values},
        status_code=status_code)


def _who(request: Request) -> Principal | None:
    """The logged-in person (None: not logged in, or the session ended)."""
    try:
        return auth.authenticate(_ctx(request).db, request)
    except HTTPException:
        return None


def _to_login(request: Request) -> RedirectResponse:
    return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)


def _course_time(ctx: api.ServiceContext, iso: str | None) -> str:
    if not iso:
        return "no due date"
    moment = dt.datetime.fromisoformat(iso).astimezone(ctx.zone())
    return moment.strftime("%a %d %b %Y, %H:%M")


def _points(score: float | None, max_score: float | None) -> str:
    if score is None or max_score is None:
        return ""
    return f"{score:g} / {max_score:g}"


def _attempts_left(left: int | None, limit: int | None) -> str:
    """What the hourly limit leaves, as the API counted it (the same count as the queue's)."""
    return "no limit" if limit is None else f"{left} of {limit} this hour"


def _me(ctx: api.ServiceContext, who: Principal) -> dict[str, Any]:
    me = api.me(who, ctx)
    return {"login": who.login, "name": me.get("name", ""),
            "slack_days_left": me["slack_days_left"],
            "slack_days_total": me["slack_days_left"] + me["slack_days_used"]}


def _assignment_rows(ctx: api.ServiceContext, who: Principal) -> list[dict[str, Any]]:
    rows = []
    for a in api.assignments(who, ctx):
        attempts = api.my_submissions(a["name"], who, ctx)
        latest = attempts[-1] if attempts else None
        rows.append({
            **a, "due_text": _course_time(ctx, a["due"]),
            "points_text": f"{a['points']:g}" if a.get("points") is not None else "—",
            "modules": [m.removesuffix(".py") for m in a["modules"]],
            "attempts_left_text": _attempts_left(a["submissions_left_this_hour"],
                                                 a["max_submissions_per_hour"]),
            "latest": None if latest is None else {
                "state": latest["state"], "state_text": STATE_TEXT.get(latest["state"],
                                                                       latest["state"]),
                "score_text": _points(latest["score"], latest["max_score"])}})
    return rows


def _status_view(ctx: api.ServiceContext, view: dict[str, Any]) -> dict[str, Any]:
    """The submission's API view, with the words the page shows."""
    state = view["state"]
    out = dict(view)
    out["final"] = state in TERMINAL_STATES
    out["state_text"] = STATE_TEXT.get(state, state)
    out["received_text"] = _course_time(ctx, view.get("received_at"))
    out["position"] = view.get("queue_position")
    wait = view.get("estimated_wait_s")
    out["eta_text"] = (f"{wait:.0f} s" if wait is not None and wait < 120 else
                       f"{wait / 60:.0f} min" if wait is not None else "")
    out["score_text"] = _points(view.get("score"), view.get("max_score"))
    out["tests"] = [{**t, "outcome_text": OUTCOME_TEXT.get(t.get("outcome", ""),
                                                           t.get("outcome", "")),
                     "points_text": _points(t.get("score"), t.get("max_score")),
                     "message": _message_of(t)}
                    for t in view.get("tests", [])]
    hidden = view.get("hidden_tests") or {}
    out["hidden_note"] = (f"{hidden['count']} test(s) worth {hidden['max_score']:g} points "
                          f"({hidden['score']:g} earned)" if hidden.get("count") else "")
    return out


def _message_of(test: dict[str, Any]) -> str:
    """A test's message: the feedback view keeps it as the output's first paragraph."""
    return str(test.get("message", ""))


# --- login, logout, invitations --------------------------------------------------------------

@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> Response:
    return _render(request, "login.html", next=_safe_next(next), login="", error=None,
                   notice=None)


def _safe_next(target: str) -> str:
    # Only a path on this site: never an open redirect to another host.
    return target if target.startswith("/") and not target.startswith("//") else "/"


@router.post("/login", response_class=HTMLResponse)
async def login_submit(request: Request) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get(auth.CSRF_FIELD, "")))
    ctx = _ctx(request)
    login = str(form.get("login", "")).strip()
    target = _safe_next(str(form.get("next", "/")))
    try:
        token = await run_in_threadpool(auth.login, ctx.db, login, str(form.get("password", "")),
                                        ctx.settings.session_hours)
    except AuthError as e:
        return _render(request, "login.html", status_code=401, next=target, login=login,
                       error=str(e), notice=None)
    response = RedirectResponse(target, status_code=303)
    auth.set_session_cookie(response, token, secure=ctx.settings.secure_cookies,
                            hours=ctx.settings.session_hours)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get(auth.CSRF_FIELD, "")))
    cookie = request.cookies.get(auth.SESSION_COOKIE)
    if cookie:
        await run_in_threadpool(auth.logout, _ctx(request).db, cookie)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(auth.SESSION_COOKIE, path="/")
    return response


@router.get("/invite/{token}", response_class=HTMLResponse)
def invite_page(request: Request, token: str) -> Response:
    login = auth.invitation_login(_ctx(request).db, token)
    if login is None:
        return _render(request, "invite.html", status_code=404, valid=False, token="",
                       login="", min_length=auth.MIN_PASSWORD,
                       error="This invitation link is unknown, used or expired.")
    return _render(request, "invite.html", valid=True, token=token, login=login,
                   min_length=auth.MIN_PASSWORD, error=None)


@router.post("/invite/{token}", response_class=HTMLResponse)
async def invite_submit(request: Request, token: str) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get(auth.CSRF_FIELD, "")))
    ctx = _ctx(request)
    password, confirm = str(form.get("password", "")), str(form.get("confirm", ""))
    login = auth.invitation_login(ctx.db, token)
    if login is None:
        return _render(request, "invite.html", status_code=404, valid=False, token="",
                       login="", min_length=auth.MIN_PASSWORD,
                       error="This invitation link is unknown, used or expired.")
    error = None
    if password != confirm:
        error = "The two passwords differ; type the same password twice."
    else:
        try:
            user_id = await run_in_threadpool(auth.accept_invitation, ctx.db, token, password)
        except AuthError as e:
            error = str(e)
    if error:
        return _render(request, "invite.html", status_code=422, valid=True, token=token,
                       login=login, min_length=auth.MIN_PASSWORD, error=error)
    session = await run_in_threadpool(auth.open_session, ctx.db, user_id,
                                      ctx.settings.session_hours)
    response = RedirectResponse("/", status_code=303)
    auth.set_session_cookie(response, session, secure=ctx.settings.secure_cookies,
                            hours=ctx.settings.session_hours)
    return response


# --- the student's pages ---------------------------------------------------------------------

def _student_or_redirect(request: Request) -> Principal | Response:
    who = _who(request)
    if who is None:
        return _to_login(request)
    if who.student_pk is None:  # staff: their pages are under /staff
        return RedirectResponse("/staff", status_code=303)
    return who


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    who = _student_or_redirect(request)
    if isinstance(who, Response):
        return who
    ctx = _ctx(request)
    return _render(request, "assignments.html", user=who, me=_me(ctx, who),
                   assignments=_assignment_rows(ctx, who))


def _assignment_page(request: Request, who: Principal, name: str, *, error: str | None = None,
                     status_code: int = 200) -> Response:
    ctx = _ctx(request)
    ctx.assignment(name)  # 404 with the list of assignments
    row = next(r for r in _assignment_rows(ctx, who) if r["name"] == name)
    attempts = []
    for a in reversed(api.my_submissions(name, who, ctx)):
        late = None
        if a["state"] == JobState.GRADED:
            late = api.describe(ctx, who, a["id"]).get("late_days")
        attempts.append({**a, "state_text": STATE_TEXT.get(a["state"], a["state"]),
                         "received_text": _course_time(ctx, a["received_at"]),
                         "score_text": _points(a["score"], a["max_score"]), "late_days": late})
    return _render(request, "assignment.html", status_code=status_code, user=who,
                   me=_me(ctx, who), a=row, attempts=attempts, error=error)


@router.get("/assignments/{name}", response_class=HTMLResponse)
def assignment_page(request: Request, name: str) -> Response:
    who = _student_or_redirect(request)
    if isinstance(who, Response):
        return who
    from autograder.service.exams import is_exam

    if is_exam(_ctx(request).assignment(name).config):  # a timed exam has its own page
        return RedirectResponse(f"/exams/{name}", status_code=303)
    return _assignment_page(request, who, name)


@router.post("/assignments/{name}/submit", response_class=HTMLResponse)
async def assignment_submit(request: Request, name: str) -> Response:
    """The upload form: the same intake, caps and rate limit as the API's POST; on success the
    browser goes to the new submission's page (Post/Redirect/Get)."""
    received_at = _ctx(request).now()  # judged on receipt, as the API does
    who = _student_or_redirect(request)
    if isinstance(who, Response):
        return who
    ctx = _ctx(request)
    asg = ctx.assignment(name)
    try:
        uploads = await _read_upload_form(request, ctx, asg.config.main_module)
        enqueued = await run_in_threadpool(api._accept, ctx, who, asg, uploads, received_at)
    except HTTPException as e:
        if e.status_code == 403:
            raise
        return await run_in_threadpool(_assignment_page, request, who, name,
                                       error=str(e.detail), status_code=e.status_code)
    return RedirectResponse(f"/submissions/{enqueued.submission_id}", status_code=303)


async def _read_upload_form(request: Request, ctx: api.ServiceContext,
                            main_module: str) -> list[queue.Upload]:
    """The form's files, read by the API's own reader, after the form's CSRF token is checked
    (a browser sends an empty file input when nothing was chosen: it is not a file)."""
    return await api.read_uploads(
        request, ctx.settings, main_module, skip_empty=True,
        check_form=lambda form: check_csrf(request, str(form.get(auth.CSRF_FIELD, ""))))


def _submission(request: Request, submission_id: int) -> tuple[Principal, dict] | Response:
    who = _student_or_redirect(request)
    if isinstance(who, Response):
        return who
    ctx = _ctx(request)
    view = api.describe(ctx, who, submission_id)  # 404 for anyone else's submission
    return who, _status_view(ctx, view)


@router.get("/submissions/{submission_id}", response_class=HTMLResponse)
def submission_page(request: Request, submission_id: int) -> Response:
    found = _submission(request, submission_id)
    if isinstance(found, Response):
        return found
    who, view = found
    return _render(request, "submission.html", user=who, s=view,
                   **_regrade_request_context(request, who, view))


# --- regrade requests (the student's side; staff answer on /staff/regrade-requests) ----------

def _regrade_request_context(request: Request, who: Principal,
                             view: dict[str, Any]) -> dict[str, Any]:
    """The feedback page's regrade request part: the threads on this attempt, and whether a
    new request may be opened now (within ``[service] regrade_request_days`` of grading)."""
    from autograder.service import staff_views

    ctx = _ctx(request)
    threads = staff_views.regrade_requests(ctx.db, submission_id=view["id"],
                                           student_pk=who.student_pk)
    for t in threads:
        for m in t["messages"]:
            m["at_text"] = _course_time(ctx, m["at"].isoformat())
    _, until = staff_views.request_window(ctx.db, view["id"])
    open_now = (view["state"] == JobState.GRADED and until is not None
                and dt.datetime.now(UTC) <= until)
    return {"regrade_threads": threads, "regrade_open": open_now,
            "regrade_until": _course_time(ctx, until.isoformat()) if until else "",
            "regrade_tests": [t["name"] for t in view.get("tests", [])]}


@router.post("/submissions/{submission_id}/regrade-request", response_class=HTMLResponse)
async def regrade_request(request: Request, submission_id: int) -> Response:
    """Ask staff about one test of this attempt (or add to an open thread: ``request_id``)."""
    from autograder.errors import UserError
    from autograder.service import staff_views

    form = await request.form()
    check_csrf(request, str(form.get(auth.CSRF_FIELD, "")))
    found = await run_in_threadpool(_submission, request, submission_id)
    if isinstance(found, Response):
        return found
    who, view = found
    ctx = _ctx(request)
    body = str(form.get("body", ""))
    try:
        raw_id = str(form.get("request_id", "")).strip()
        if raw_id:
            mine = staff_views.regrade_requests(ctx.db, submission_id=view["id"],
                                                student_pk=who.student_pk)
            if not raw_id.isdigit() or int(raw_id) not in {t["id"] for t in mine}:
                raise HTTPException(404, detail="no such request on this attempt")
            await run_in_threadpool(staff_views.reply_regrade_request, ctx.db, int(raw_id),
                                    author=who.login, role="student", body=body, resolve=False)
        else:
            visible = {t["name"] for t in view.get("tests", [])}
            await run_in_threadpool(staff_views.open_regrade_request, ctx.db,
                                    submission_id=view["id"], student_pk=who.student_pk,
                                    login=who.login, test_name=str(form.get("test", "")),
                                    body=body, visible_tests=visible)
    except UserError as e:
        return _render(request, "submission.html", status_code=422, user=who, s=view,
                       regrade_error=str(e), **_regrade_request_context(request, who, view))
    return RedirectResponse(f"/submissions/{submission_id}#regrade-requests", status_code=303)


@router.get("/submissions/{submission_id}/status", response_class=HTMLResponse)
def submission_status(request: Request, submission_id: int) -> Response:
    """The fragment HTMX polls. A session that ended answers with a redirect htmx follows."""
    who = _who(request)
    if who is None or who.student_pk is None:
        return Response(status_code=204, headers={"HX-Redirect": "/login"})
    ctx = _ctx(request)
    view = _status_view(ctx, api.describe(ctx, who, submission_id))
    return _render(request, "_status.html", s=view)
