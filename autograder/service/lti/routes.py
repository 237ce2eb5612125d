"""The LTI routes:

* ``GET|POST /lti/login``: third-party initiated login; redirects to the platform's OIDC auth
  endpoint with a fresh state (also a short-lived cookie) and nonce;
* ``POST /lti/launch``: the platform posts the ``id_token``; validated (signature against the
  platform's JWKS, nonce used up, state, issuer, audience, deployment, expiry), it logs the
  user in (the service's session cookie) and sends them to their page. Not CSRF-checked by
  design: the state and nonce are this request's protection;
* ``GET /lti/jwks``: the tool's public key, for the platform to check our token requests;
* ``GET /staff/lti`` (``lti.passback.view``): each student's passback state, the linked
  assignments, and the instructors' buttons: **Send all** (``lti.passback.view``) and **Sync
  roster** (``roster.sync``); ``GET /api/v1/staff/lti/passback`` the same states as JSON.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pylti1p3.exception import LtiException, OIDCException, ToolConfException

from autograder.errors import UserError
from autograder.service import auth
from autograder.service.auth import Principal
from autograder.service.lti import config as lti_config
from autograder.service.lti.launch import record_launch
from autograder.service.lti.passback import send_all, status_rows, linked_assignments
from autograder.service.lti.platform import Launch, LtiCookies, LtiRequest, LtiSessions, OidcLogin
from autograder.service.lti.roster import sync_roster
from autograder.service.permissions import can, require

router = APIRouter(include_in_schema=False)


def _ctx(request: Request) -> Any:
    return request.app.state.service


def _config(request: Request) -> lti_config.LtiConfig | None:
    ctx = _ctx(request)
    return lti_config.load_lti(ctx.settings.course_root, ctx.db.gb.config)


def _secure(request: Request) -> bool:
    return bool(_ctx(request).settings.secure_cookies or request.url.scheme == "https")


def _problem(request: Request, status_code: int, message: str) -> Response:
    """The page a person sees when a launch cannot go on: what happened and what to do."""
    from autograder.service.pages import templates

    ctx = _ctx(request)
    return templates.TemplateResponse(request, "staff/lti/launch_error.html", {
        "course_name": ctx.db.gb.config.name, "timezone": ctx.db.gb.config.timezone,
        "csrf_token": auth.csrf_token(request), "static_url": lambda n: f"/static/{n}",
        "user": None, "message": message}, status_code=status_code)


async def _params(request: Request) -> dict[str, str]:
    params = {k: v for k, v in request.query_params.items()}
    if request.method == "POST":
        form = await request.form()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    return params


@router.api_route(lti_config.LOGIN_PATH, methods=["GET", "POST"])
async def lti_login(request: Request) -> Response:
    """OIDC login initiation from the platform."""
    cfg = _config(request)
    if cfg is None:
        return _problem(request, 404, "This course is not set up for LTI: its course.toml has "
                                      "no [lti] table (see docs/lti.md).")
    params = await _params(request)
    ctx = _ctx(request)
    launch_url = ctx.settings.public_url.rstrip("/") + lti_config.LAUNCH_PATH

    def work() -> Response:
        lti_request = LtiRequest(params, request.cookies, _secure(request))
        cookies = LtiCookies(lti_request)
        login = OidcLogin(lti_request, lti_config.tool_conf(cfg),
                          session_service=LtiSessions(lti_request, ctx.db),
                          cookie_service=cookies)
        return login.redirect(launch_url)

    try:
        return await run_in_threadpool(work)
    except (OIDCException, LtiException, ToolConfException) as e:
        return _problem(request, 400, f"The LMS's login request was refused: {e}. Launch the "
                                      f"tool again from the LMS; if it keeps failing, staff "
                                      f"should compare the LMS's issuer and client id with "
                                      f"course.toml [lti].")
    except UserError as e:
        return _problem(request, 500, f"LTI is misconfigured: {e}")


@router.post(lti_config.LAUNCH_PATH)
async def lti_launch(request: Request) -> Response:
    """The id_token POST: validate, record, log in, redirect."""
    cfg = _config(request)
    if cfg is None:
        return _problem(request, 404, "This course is not set up for LTI.")
    params = await _params(request)
    ctx = _ctx(request)

    def work() -> Response:
        lti_request = LtiRequest(params, request.cookies, _secure(request))
        launch = Launch(lti_request, lti_config.tool_conf(cfg), ctx.db, cfg.passback.timeout_s)
        try:
            body = dict(launch.get_launch_data())
            if not launch.is_resource_launch():
                return _problem(request, 400, "Only resource-link launches open the "
                                              "autograder (this was another kind of message).")
        except (LtiException, ToolConfException) as e:
            return _problem(request, 403, f"The launch could not be verified: {e}. Launch the "
                                          f"tool again from the LMS (a launch can be used "
                                          f"once, within five minutes).")
        try:
            result = record_launch(ctx.db, cfg, body)
        except UserError as e:
            return _problem(request, 403, str(e))
        token = auth.open_session(ctx.db, result.user_id, ctx.settings.session_hours)
        target = result.redirect
        if result.notice:
            target += "?flash=" + quote(result.notice)
        response = RedirectResponse(target, status_code=303)
        auth.set_session_cookie(response, token, secure=ctx.settings.secure_cookies,
                                hours=ctx.settings.session_hours)
        return response

    try:
        return await run_in_threadpool(work)
    except UserError as e:  # the tool's own set-up (its key): staff's to fix, said as at login
        return _problem(request, 500, f"LTI is misconfigured: {e}")


@router.get(lti_config.JWKS_PATH)
def lti_jwks(request: Request) -> Response:
    """The tool's public key set."""
    cfg = _config(request)
    if cfg is None:
        return JSONResponse({"detail": "this course is not set up for LTI"}, status_code=404)
    try:
        pem = cfg.private_key_pem()
    except UserError as e:
        return JSONResponse({"detail": f"LTI is misconfigured: {e}"}, status_code=500)
    return JSONResponse({"keys": [lti_config.public_jwk(pem)]})


# -- the staff page --------------------------------------------------------------------------

STATE_TEXT = {"pending": "pending", "sent": "sent", "failed": "failed"}


@router.get("/staff/lti", response_class=HTMLResponse)
def passback_page(request: Request, assignment: str = "",
                  who: Principal = Depends(require("lti.passback.view"))) -> Response:
    """Each student's passback state per line item, and the instructors' buttons."""
    from autograder.service.staff_pages import render

    ctx = _ctx(request)
    rows = status_rows(ctx.db, assignment or None)
    counts = {state: sum(1 for r in rows if r.state == state) for state in STATE_TEXT}
    zone = ctx.db.gb.config.zone
    return render(request, "staff/lti/passback.html", who, rows=rows, counts=counts,
                  assignment=assignment, links=linked_assignments(ctx.db),
                  configured=_config(request) is not None,
                  may_sync=can(who, "roster.sync"),
                  when=lambda t: t.astimezone(zone).strftime("%d %b %Y %H:%M"))


@router.post("/staff/lti/send-all")
def passback_send_all(request: Request,
                      who: Principal = Depends(require("lti.passback.view"))) -> Response:
    """Bring every student's LMS score up to date (failed ones tried again), sent in the
    background; the page then shows each one's state."""
    cfg = _config(request)
    if cfg is None:
        return RedirectResponse("/staff/lti?error=" + quote("LTI is not set up (course.toml "
                                                            "[lti])"), status_code=303)
    try:
        pending, _ = send_all(_ctx(request).db, cfg)
    except UserError as e:
        return RedirectResponse("/staff/lti?error=" + quote(str(e)), status_code=303)
    note = (f"{len(pending)} score(s) being sent; reload to see them arrive" if pending
            else "every score in the LMS is up to date")
    return RedirectResponse("/staff/lti?flash=" + quote(note), status_code=303)


@router.post("/staff/lti/roster-sync")
def roster_sync(request: Request, who: Principal = Depends(require("roster.sync"))) -> Response:
    """Names and Role Provisioning: bring the roster and staff up to the LMS course."""
    cfg = _config(request)
    if cfg is None:
        return RedirectResponse("/staff/lti?error=" + quote("LTI is not set up (course.toml "
                                                            "[lti])"), status_code=303)
    try:
        report = sync_roster(_ctx(request).db, cfg)
    except (UserError, LtiException) as e:
        return RedirectResponse("/staff/lti?error=" + quote(f"roster sync failed: {e}"),
                                status_code=303)
    except OSError as e:  # requests' network errors are OSErrors
        return RedirectResponse("/staff/lti?error=" + quote(f"the LMS did not answer: {e}"),
                                status_code=303)
    return RedirectResponse("/staff/lti?flash=" + quote("Roster synced: " + report.summary()),
                            status_code=303)


@router.get("/api/v1/staff/lti/passback")
def passback_json(request: Request, assignment: str = "",
                  who: Principal = Depends(require("lti.passback.view"))) -> dict:
    """Each student's passback state as JSON (for scripts and tests)."""
    return {"passback": [{
        "student": r.student, "assignment": r.assignment, "state": r.state,
        "score": r.score, "max_score": r.max_score, "sent_score": r.sent_score,
        "updated_at": r.updated_at.isoformat(), "attempts": r.attempts, "error": r.error,
        "lineitem": r.lineitem_url} for r in status_rows(_ctx(request).db, assignment or None)]}
