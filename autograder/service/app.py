"""The web application: ``create_app(settings)`` gives the FastAPI app that ``autograder serve``
runs (the JSON API, ``/healthz``, and the pages, which live beside it in this package).

The app only accepts and reports: it stores uploads and their jobs, and reads results. Grading
happens in worker processes (:mod:`autograder.service.workers`), never in the web process.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import importlib.util
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response

from autograder.config import load_course
from autograder.service import api, exams, instructor_pages, lti, queue, staff_pages
from autograder.service.auth import csrf_cookie_middleware
from autograder.service.database import ServiceDB
from autograder.service.headers import SecurityHeaders, registered_frame_origins
from autograder.service.settings import Clock, Settings, SystemClock
from autograder.service.storage import UploadStore


API_DOCS_PATH = "/api/docs"
API_DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>autograder API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/swagger/swagger-ui.css"></head>
<body><div id="swagger-ui" data-openapi-url="{openapi}"></div>
<script src="/static/swagger/swagger-ui-bundle.js"></script>
<script src="/static/swagger/init.js"></script></body></html>
"""

_FORBIDDEN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Not allowed</title><link rel="stylesheet" href="/static/pages.css"></head>
<body><main id="main"><h1>You may not open this page</h1><p>{detail}</p>
<p><a href="/">Back to your assignments</a> &middot; <a href="/login">Log in as someone else</a></p>
</main></body></html>
"""


def open_database(settings: Settings) -> ServiceDB:
    """Open the course database (migrated to the newest schema) with assignments and staff
    accounts synced."""
    db = ServiceDB.open(settings.database_url(), load_course(settings.course_root))
    db.gb.sync_assignments(settings.course_root)
    # Staff added with `autograder gradebook staff ...` get their account and current role.
    from autograder.service.permissions import sync_staff_accounts

    sync_staff_accounts(db)
    return db


def create_app(settings: Settings, db: ServiceDB | None = None,
               clock: Clock | None = None) -> FastAPI:
    """The service's app. ``db``: an already open database (tests); else the course's own.
    ``clock``: where every exam decision reads the time (tests pass a ManualClock)."""
    own_db = db is None
    database = db or open_database(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        # Exam attempts whose time is up are finalised even when no browser asks.
        finaliser = asyncio.create_task(exams.finalise_periodically(app.state.service))
        try:
            yield
        finally:
            finaliser.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await finaliser
            if own_db:
                database.close()

    # The API docs page is ours (api_docs below): FastAPI's loads Swagger UI from a CDN.
    app = FastAPI(title="autograder", lifespan=lifespan, docs_url=None,
                  redoc_url=None, openapi_url="/api/openapi.json")
    app.state.settings = settings
    app.state.service = api.ServiceContext(settings=settings, db=database,
                                           store=UploadStore(settings.uploads_dir),
                                           clock=clock or SystemClock())
    app.middleware("http")(csrf_cookie_middleware)
    # Added last, so outermost: every response gets the CSP and its companions (headers.py).
    app.add_middleware(SecurityHeaders,
                       frame_origins=registered_frame_origins(settings.course_root,
                                                              database.gb.config))
    app.include_router(api.router)

    @app.get(API_DOCS_PATH, include_in_schema=False)
    async def api_docs() -> HTMLResponse:
        # Swagger UI from the service's own static files (vendored from npm, as htmx is), its
        # set-up in a static script: the page runs under the same policy as every other page.
        return HTMLResponse(API_DOCS_PAGE.format(openapi=app.openapi_url))
    app.include_router(staff_pages.router)
    app.include_router(instructor_pages.router)
    app.include_router(lti.router)
    app.include_router(exams.router)

    @app.exception_handler(RequestValidationError)
    async def _readable(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default is a list of pydantic errors; say in one sentence what to fix.
        parts = []
        for err in exc.errors():
            where = ".".join(str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path"))
            parts.append(f"{where or 'request'}: {err.get('msg', 'invalid')}")
        return JSONResponse(status_code=422, content={"detail": "; ".join(parts)})

    @app.exception_handler(403)
    async def _forbidden(request: Request, exc: Any) -> Response:
        # A person's browser gets a page that says why and where to go; scripts get JSON.
        detail = str(getattr(exc, "detail", None) or "you may not open this page")
        wants_page = (request.method == "GET" and not request.url.path.startswith("/api/")
                      and not request.headers.get("hx-request")
                      and "text/html" in request.headers.get("accept", ""))
        if not wants_page:
            return JSONResponse(status_code=403, content={"detail": detail},
                                headers=getattr(exc, "headers", None))
        return HTMLResponse(status_code=403, content=_FORBIDDEN_PAGE.format(
            detail=html.escape(detail)))

    @app.exception_handler(404)
    async def _not_found(request: Request, exc: Any) -> JSONResponse:
        detail = getattr(exc, "detail", None)
        if not isinstance(exc, HTTPException) or detail in (None, "Not Found"):
            detail = f"no such address: {request.url.path}; the API is under /api/v1"
        return JSONResponse(status_code=404, content={"detail": detail},
                            headers=getattr(exc, "headers", None))

    @app.get("/healthz")
    def healthz() -> dict:
        """Alive, the database answers, and how many jobs are in each state."""
        return {"status": "ok", "jobs": queue.counts_by_state(database)}

    # The pages (templates, HTMX; login, invitations) live in their own module:
    # ``pages.register(app)`` adds them, using auth's functions and CSRF helpers.
    if importlib.util.find_spec("autograder.service.pages") is not None:
        from autograder.service import pages

        pages.register(app)
    return app
