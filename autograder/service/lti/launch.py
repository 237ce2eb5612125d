"""What a validated launch leaves behind: the LMS course (context) with the service URLs it
offers, the person (account and role, :mod:`autograder.service.lti.people`), and the resource
link with the assignment it opens.

The assignment of a link: the custom parameter ``assignment=NAME`` (set on the link in the LMS),
else the ``tag`` (or ``resourceId``) of the line item the LMS made for the link. A link that
names no assignment of this course opens the assignment list; staff see a notice saying how to
link it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import requests
import sqlalchemy as sa
from pylti1p3.exception import LtiException

from autograder.errors import UserError
from autograder.service.database import ServiceDB
from autograder.service.lti.config import LtiConfig
from autograder.service.lti.models import LtiContext, LtiLink
from autograder.service.lti.passback import (PassbackError, ags_for, connector_for,
                                             ensure_lineitem)
from autograder.service.lti.people import Person, ensure_person
from gradebook import models as gm

UTC = dt.timezone.utc
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"


@dataclass(frozen=True)
class LaunchResult:
    """Who launched, as what, and where they go."""

    user_id: int
    role: str
    assignment: str | None
    redirect: str
    notice: str = ""


def _context(db: ServiceDB, body: dict[str, Any], client_id: str) -> LtiContext:
    ctx_claim = body.get(CLAIM + "context") or {}
    deployment = str(body.get(CLAIM + "deployment_id", ""))
    ags = body.get(AGS_CLAIM) or {}
    nrps = body.get(NRPS_CLAIM) or {}
    key = dict(course_id=db.course_id, issuer=str(body["iss"])[:255], client_id=client_id[:255],
               deployment_id=deployment[:255],
               # A launch without a context claim (rare): the deployment stands for the course.
               context_id=str(ctx_claim.get("id") or f"deployment:{deployment}")[:255])
    with db.write() as s:
        row = s.scalar(sa.select(LtiContext).filter_by(**key))
        if row is None:
            row = LtiContext(**key, ags_scopes=[])
            s.add(row)
        row.title = str(ctx_claim.get("title") or ctx_claim.get("label") or row.title or "")[:300]
        # The service URLs of the newest launch: platforms may move them.
        if nrps.get("context_memberships_url"):
            row.memberships_url = str(nrps["context_memberships_url"])
        if ags:
            row.lineitems_url = str(ags.get("lineitems") or "") or row.lineitems_url
            row.ags_scopes = [str(x) for x in ags.get("scope", [])]
        row.updated_at = dt.datetime.now(UTC)
        s.flush()
        s.expunge(row)
        return row


def _assignment_of(db: ServiceDB, cfg: LtiConfig, ctx: LtiContext, body: dict[str, Any],
                   lineitem_url: str | None) -> tuple[str | None, str]:
    """(assignment name, notice for staff) for a launch's resource link."""
    names = set(db.gb.assignment_names())
    custom = (body.get(CLAIM + "custom") or {}).get("assignment")
    if custom:
        if str(custom) in names:
            return str(custom), ""
        return None, (f"this link's custom parameter assignment={custom!r} names no assignment "
                      f"of the course ({', '.join(sorted(names))}); fix it in the LMS")
    if lineitem_url:
        try:
            item = ags_for(connector_for(cfg, ctx.issuer, ctx.client_id), ctx).get_lineitem(
                lineitem_url)
            for candidate in (item.get_tag(), item.get_resource_id()):
                if candidate and candidate in names:
                    return candidate, ""
        except (LtiException, requests.RequestException, UserError) as e:
            return None, f"the link's line item could not be read ({e})"
    return None, ("this link opens no assignment: add the custom parameter "
                  "assignment=NAME to it in the LMS (or tag its line item with the name)")


def _link(db: ServiceDB, ctx: LtiContext, body: dict[str, Any], assignment: str | None,
          lineitem_url: str | None) -> int:
    link_claim = body.get(CLAIM + "resource_link") or {}
    with db.write() as s:
        asg_pk = None
        if assignment:
            asg_pk = s.scalar(sa.select(gm.Assignment.id).where(
                gm.Assignment.course_id == db.course_id, gm.Assignment.name == assignment))
        row = s.scalar(sa.select(LtiLink).where(
            LtiLink.context_pk == ctx.id,
            LtiLink.resource_link_id == str(link_claim.get("id", ""))[:255]))
        if row is None:
            row = LtiLink(context_pk=ctx.id, resource_link_id=str(link_claim.get("id", ""))[:255])
            s.add(row)
        row.title = str(link_claim.get("title") or "")[:300]
        if asg_pk is not None:
            row.assignment_pk = asg_pk
        if lineitem_url:
            row.lineitem_url = lineitem_url
        row.updated_at = dt.datetime.now(UTC)
        s.flush()
        return row.id


def record_launch(db: ServiceDB, cfg: LtiConfig, body: dict[str, Any]) -> LaunchResult:
    """Record a validated resource-link launch (``body``: the id_token's claims) and say who
    it logs in. Raises :class:`~autograder.service.lti.people.LaunchRefused` for a role with no
    access here."""
    aud = body.get("aud")
    client_id = str(aud[0] if isinstance(aud, list) else aud)
    ctx = _context(db, body, client_id)
    lis = body.get(CLAIM + "lis") or {}
    person = Person(issuer=ctx.issuer, sub=str(body.get("sub", "")),
                    roles=tuple(str(r) for r in body.get(CLAIM + "roles", [])),
                    name=str(body.get("name") or " ".join(
                        str(body.get(k, "")) for k in ("given_name", "family_name")).strip()),
                    email=str(body.get("email", "")),
                    sourcedid=str(lis.get("person_sourcedid", "")))
    user_id, role = ensure_person(db, person)
    lineitem_url = (body.get(AGS_CLAIM) or {}).get("lineitem") or None
    assignment, notice = _assignment_of(db, cfg, ctx, body, lineitem_url)
    link_pk = _link(db, ctx, body, assignment, lineitem_url)
    if assignment and not lineitem_url:
        try:  # a line item tagged with the assignment, made now so passback has a column
            ensure_lineitem(db, cfg, link_pk)
        except (LtiException, requests.RequestException, PassbackError) as e:
            notice = f"no LMS grade column yet for {assignment} ({e}); Send all tries again"
    if role == "student":
        target = f"/assignments/{assignment}" if assignment else "/"
    else:
        target = "/staff/lti"
    return LaunchResult(user_id, role, assignment, target, notice if role != "student" else "")
