"""The LTI tables (migration ``gradebook/migrations/versions/0007_lti.py``), on the gradebook's
``Base`` so they live in the course database beside the service's own:

* :class:`LtiContext`: a course of an LMS (issuer, client id, deployment, context id) whose
  launches land in this course, with the service URLs its last launch advertised (NRPS
  memberships, AGS line items);
* :class:`LtiLink`: a resource link placed in that LMS course, and the assignment it opens;
* :class:`LtiUser`: who an LMS user (issuer + ``sub``) is here (a service account);
* :class:`LtiPassback`: per student and line item, the score to send, the last score the LMS
  accepted, and the state of sending it (pending, sent, failed, with the time and reason);
* :class:`LtiLaunchState`: OIDC nonces and states between the login and the launch (single use,
  with an expiry), so a launch works whichever process of the service answers it.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gradebook.models import Base, UTCDateTime, utcnow

__all__ = ["LtiContext", "LtiLink", "LtiUser", "LtiPassback", "LtiLaunchState",
           "PassbackState"]


class PassbackState(StrEnum):
    """Where one student's score for one line item is."""

    PENDING = "pending"  # a new score waits to be sent (or is being sent)
    SENT = "sent"        # the LMS accepted the score shown
    FAILED = "failed"    # sending gave up; ``error`` says why ("send all" tries again)


class LtiContext(Base):
    """A course of an LMS linked to this course by a launch."""

    __tablename__ = "lti_contexts"
    # Named by hand: the convention's name would pass PostgreSQL's 63-character limit.
    __table_args__ = (UniqueConstraint("course_id", "issuer", "client_id", "deployment_id",
                                       "context_id", name="uq_lti_contexts_identity"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    issuer: Mapped[str] = mapped_column(String(255))
    client_id: Mapped[str] = mapped_column(String(255))
    deployment_id: Mapped[str] = mapped_column(String(255))
    context_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(String(300), default="")
    # Names and Role Provisioning Services: the roster's URL (None: the platform offers none).
    memberships_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Assignment and Grade Services: the context's line items and the scopes granted.
    lineitems_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    ags_scopes: Mapped[list] = mapped_column(JSON, default=list)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class LtiLink(Base):
    """A resource link in an LMS course; ``assignment_pk`` is the assignment it opens (from the
    custom parameter ``assignment=NAME`` or its line item's tag), ``lineitem_url`` the column of
    the LMS gradebook its scores go to."""

    __tablename__ = "lti_links"
    __table_args__ = (UniqueConstraint("context_pk", "resource_link_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    context_pk: Mapped[int] = mapped_column(ForeignKey("lti_contexts.id", ondelete="CASCADE"),
                                            index=True)
    resource_link_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(String(300), default="")
    assignment_pk: Mapped[int | None] = mapped_column(
        ForeignKey("assignments.id", ondelete="SET NULL"), nullable=True, index=True)
    lineitem_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class LtiUser(Base):
    """An LMS user (``issuer`` + ``sub``, the id AGS scores are sent to) and their account here."""

    __tablename__ = "lti_users"
    __table_args__ = (UniqueConstraint("course_id", "issuer", "sub"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    issuer: Mapped[str] = mapped_column(String(255))
    sub: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[int] = mapped_column(ForeignKey("service_users.id", ondelete="CASCADE"),
                                         index=True)
    roles: Mapped[list] = mapped_column(JSON, default=list)  # as the LMS sent them
    email: Mapped[str] = mapped_column(String(320), default="")
    name: Mapped[str] = mapped_column(String(300), default="")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class LtiPassback(Base):
    """One student's score for one line item: what should be there (``score_given`` /
    ``score_maximum``, from the gradebook's counted score), what the LMS last accepted
    (``sent_*``), and the state of sending. A score equal to the one sent is never sent again."""

    __tablename__ = "lti_passback"
    __table_args__ = (UniqueConstraint("student_pk", "lineitem_url"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    student_pk: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"),
                                            index=True)
    assignment_pk: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"))
    context_pk: Mapped[int] = mapped_column(ForeignKey("lti_contexts.id", ondelete="CASCADE"))
    lineitem_url: Mapped[str] = mapped_column(String(1000))
    lms_user_id: Mapped[str] = mapped_column(String(255))  # the LTI ``sub``
    state: Mapped[str] = mapped_column(String(20), default=PassbackState.PENDING, index=True)
    score_given: Mapped[float] = mapped_column(Float)
    score_maximum: Mapped[float] = mapped_column(Float)
    result_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)  # the result's time
    sent_score_given: Mapped[float | None] = mapped_column(Float, nullable=True)
    sent_score_maximum: Mapped[float | None] = mapped_column(Float, nullable=True)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # tries for the current score
    error: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A sender holds the row while it sends (so two processes never send it together).
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class LtiLaunchState(Base):
    """A value of the OIDC handshake (a nonce, a state) until it is used or expires."""

    __tablename__ = "lti_launch_state"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[dict] = mapped_column(JSON)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
