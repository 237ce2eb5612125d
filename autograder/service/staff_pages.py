"""The TA pages under ``/staff``: submissions, regrades, overrides, extensions, accommodations,
regrade requests, the audit log and operations; staff invitations and the roster.

Each route declares its action with ``Depends(require("..."))`` (the one permission table is
:mod:`autograder.service.permissions`). Pages render ``templates/staff/*.html``, which extend
``staff/base.html``; :func:`render` gives every page its navigation (only the links the user may
follow, to pages that exist), the CSRF token and the course's name. Jinja2 autoescaping is on:
student text is shown as text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from autograder.service.auth import Principal, csrf_token
from autograder.service.permissions import can, require

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
    NavItem("Audit log", "/staff/audit", "audit.view"),
    NavItem("Operations", "/staff/operations", "operations.view"),
    NavItem("Gradebook", "/staff/gradebook", "gradebook.view"),
    NavItem("Statistics", "/staff/stats", "stats.view"),
    NavItem("Similarity", "/staff/similarity", "similarity.review"),
    NavItem("LMS passback", "/staff/lti", "lti.passback.view"),
    NavItem("Staff & roster", "/staff/people", "staff.invite"),
]


def _route_paths(request: Request) -> set[str]:
    return {getattr(r, "path", "") for r in request.app.routes}


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
    values.setdefault("error", None)
    return templates.TemplateResponse(request, template, {
        "course_name": ctx.db.gb.config.name, "timezone": ctx.db.gb.config.timezone,
        "csrf_token": csrf_token(request), "static_url": lambda name: f"/static/{name}",
        "user": who, "nav": nav_for(request, who), **values}, status_code=status_code)


@router.get("/staff", response_class=HTMLResponse)
def staff_home(request: Request,
               who: Principal = Depends(require("submissions.view"))) -> Response:
    """The staff start page: the pages this user may open."""
    return render(request, "staff/home.html", who)
