"""Names and Role Provisioning Services: the LMS course's members become this course's roster
(learners: roster students with service accounts) and staff (with the role their LTI roles map
to, see :mod:`autograder.service.lti.people`), each linked to their LMS id so that their scores
can be sent back before they ever launch the tool.

A learner the LMS reports ``Inactive`` or ``Deleted`` is marked dropped (records kept); a
member whose roles map to nothing here (a mentor) is skipped and counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from pylti1p3.names_roles import NamesRolesProvisioningService

from autograder.service.database import ServiceDB
from autograder.service.lti.config import LtiConfig
from autograder.service.lti.models import LtiContext
from autograder.service.lti.passback import PassbackError, connector_for
from autograder.service.lti.people import (LaunchRefused, Person, ensure_staff, link_student,
                                           service_role, student_row)


@dataclass
class RosterSync:
    """What a sync did."""

    students_added: list[str] = field(default_factory=list)
    students_updated: list[str] = field(default_factory=list)
    students_dropped: list[str] = field(default_factory=list)
    staff: dict[str, str] = field(default_factory=dict)  # e-mail -> role
    skipped: list[str] = field(default_factory=list)     # "who: why"

    def summary(self) -> str:
        return (f"{len(self.students_added)} students added, {len(self.students_updated)} "
                f"updated, {len(self.students_dropped)} dropped, {len(self.staff)} staff, "
                f"{len(self.skipped)} skipped")


def sync_roster(db: ServiceDB, cfg: LtiConfig, context_pk: int | None = None) -> RosterSync:
    """Fetch the members of every LMS context of this course with an NRPS URL (or just
    ``context_pk``) and bring roster, staff and accounts up to them."""
    with db.read() as s:
        q = sa.select(LtiContext).where(LtiContext.course_id == db.course_id,
                                        LtiContext.memberships_url.is_not(None))
        if context_pk is not None:
            q = q.where(LtiContext.id == context_pk)
        contexts = list(s.scalars(q))
    if not contexts:
        raise PassbackError("no LMS course has offered its roster yet: launch the tool once "
                            "from the LMS course (with Names and Role Provisioning enabled)")
    report = RosterSync()
    for ctx in contexts:
        nrps = NamesRolesProvisioningService(connector_for(cfg, ctx.issuer, ctx.client_id),
                                             {"context_memberships_url": ctx.memberships_url or ""})
        members = nrps.get_members()
        learners: list[tuple[Person, str]] = []
        for m in members:
            person = Person(issuer=ctx.issuer, sub=str(m.get("user_id", "")),
                            roles=tuple(m.get("roles", [])), name=str(m.get("name", "")),
                            email=str(m.get("email", "")),
                            sourcedid=str(m.get("lis_person_sourcedid", "")))
            who = person.email or person.name or person.sub
            if not person.sub:
                report.skipped.append(f"{who}: no user_id in the membership")
                continue
            role = service_role(person.roles)
            if role is None:
                report.skipped.append(f"{who}: no role here for "
                                      f"{', '.join(r.rsplit('#', 1)[-1] for r in person.roles)}")
            elif role == "student":
                learners.append((person, str(m.get("status", "Active"))))
            else:
                try:
                    ensure_staff(db, person, role)
                    report.staff[person.email] = role
                except LaunchRefused as e:
                    report.skipped.append(f"{who}: {e}")
        _sync_learners(db, learners, report)
    return report


def _sync_learners(db: ServiceDB, learners: list[tuple[Person, str]], report: RosterSync) -> None:
    rows = [(person, status, student_row(db, person)) for person, status in learners]
    active = [row for _, status, row in rows if status == "Active"]
    if active:
        result = db.gb.import_roster(active)  # one transaction; matched students keep id/section
        report.students_added += result.added
        report.students_updated += result.updated + result.reactivated
    for person, status, row in rows:
        if status != "Active":
            try:
                db.gb.set_student_status(row.student_id, "dropped")
                report.students_dropped.append(row.student_id)
            except Exception:  # never in the roster: nothing to drop
                continue
        link_student(db, person, row.student_id)
