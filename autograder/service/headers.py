"""Security headers on every response of the service: defense in depth behind escaping.

Jinja2 escapes every student-controlled string (names, messages, regrade requests, file names,
test output) on the pages; these headers make one escaping mistake anywhere harmless rather than
a stored XSS against a TA's session:

* **Pages** (``text/html``) get :func:`page_policy`: scripts only from the service's own files
  (no inline ``<script>``, no ``on*=`` handler, no ``javascript:`` URL, no ``eval``), images only
  from the service and ``data:`` (a handout's ``![](https://...)`` cannot tell a third party
  that a student opened an exam), no plugins, no ``<base>``, forms posting only to the service,
  and framing only by the service itself and the LMS platforms registered for LTI 1.3 (their
  origins, read from the registration: :func:`registered_frame_origins`). Styles may be inline:
  the templates use ``style`` attributes and htmx inserts its indicator rule; an injected style
  still cannot load anything from elsewhere (``default-src 'self'``), so it cannot carry data out.
* **Everything else** (the JSON API, downloads, plots, static files) gets
  :data:`NON_PAGE_POLICY`: nothing may load, run or frame it, and ``sandbox`` makes a document
  opened from it (a student's file, an SVG) an opaque origin with no script.
* **Every response**: ``X-Content-Type-Options: nosniff`` (a ``text/plain`` student file is never
  guessed to be HTML) and ``Referrer-Policy: same-origin`` (exam links and tokens in URLs never
  reach another site in a ``Referer``).

A response that sets its own ``Content-Security-Policy`` (the similarity report's stricter one)
keeps it, and the service's policy is sent beside it: browsers enforce both, so the stricter
wins directive by directive and the framing rule still applies.

The API docs page (``/api/docs``) is no exception: Swagger UI is vendored from npm under
``static/swagger/`` and set up by a static script, so it runs under the page policy.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

CSP = "Content-Security-Policy"
#: Every response that is not a page: nothing loads, runs or frames it.
NON_PAGE_POLICY = "default-src 'none'; frame-ancestors 'none'; sandbox"

# An origin we are willing to write into a policy: scheme, host (a name, IPv4, or bracketed
# IPv6) and an optional port. Nothing that could end a directive (";", ",", spaces, quotes).
_ORIGIN = re.compile(r"https?://(?:[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?")


def page_policy(frame_origins: Sequence[str] = ()) -> str:
    """The Content-Security-Policy of every page. ``frame_origins``: origins (besides the
    service's own) that may frame it: the registered LMS platforms."""
    return "; ".join([
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        # No auto-posting form to the LMS exists: the OIDC login and the launch answer with
        # redirects, and only resource-link launches are accepted (no deep-linking response).
        "form-action 'self'",
        "frame-ancestors " + " ".join(["'self'", *frame_origins]),
    ])


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of an http(s) URL, lower-cased; None when ``url`` is not one
    (or holds anything that could not stand in a policy)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        return None
    host = f"[{host}]" if ":" in host else host
    origin = f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")
    origin = origin.lower()
    return origin if _ORIGIN.fullmatch(origin) else None


def platform_origins(platforms: Iterable[Any]) -> tuple[str, ...]:
    """The web origins of registered LTI platforms: each one's issuer and OIDC login endpoint
    (the LMS's own pages, which frame the tool after a launch), without repeats. An issuer that
    is not a URL adds nothing."""
    out: list[str] = []
    for p in platforms:
        for url in (p.issuer, p.auth_login_url):
            origin = origin_of(url)
            if origin and origin not in out:
                out.append(origin)
    return tuple(out)


def registered_frame_origins(course_root: Path, course_config: Any) -> tuple[str, ...]:
    """The origins that may frame the pages: those of the LMS platforms in course.toml's
    ``[lti]`` table (read once, when the app is made, as course.toml is). A course without LTI,
    or whose LTI table is invalid, allows none: the LTI pages say what to fix in the table, and
    until then no other site frames the service."""
    from autograder.errors import UserError
    from autograder.service.lti.config import load_lti

    try:
        cfg = load_lti(course_root, course_config)
    except UserError as e:
        log.warning("no LMS may frame the pages until the [lti] table is fixed: %s", e)
        return ()
    return platform_origins(cfg.platforms) if cfg is not None else ()


class SecurityHeaders:
    """ASGI middleware that puts the service's security headers on every HTTP response
    (see the module's docstring). Pure ASGI: a streamed response is not buffered."""

    def __init__(self, app: ASGIApp, frame_origins: Sequence[str] = ()) -> None:
        self.app = app
        self.frame_origins = tuple(frame_origins)
        self.page_policy = page_policy(self.frame_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                self._secure(headers, self.page_policy if _is_page(headers)
                             else NON_PAGE_POLICY)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    @staticmethod
    def _secure(headers: MutableHeaders, policy: str) -> None:
        # A route's own policy is kept and ours sent beside it: both are enforced.
        headers.append(CSP, policy)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "same-origin")


def _is_page(headers: MutableHeaders) -> bool:
    return headers.get("content-type", "").lower().startswith("text/html")
