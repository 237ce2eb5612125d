"""Timed assessments (``kind = "exam"`` or ``"quiz"``): pure functions, no clock and no database.

The grading service (start endpoint, timers, pages) and the gradebook call these; each takes
every moment it needs as an argument, so a test sets the time by passing it, never by sleeping.

* :func:`ends_at`: when one student's attempt ends,
  ``min(started_at + duration x time_factor + extra_minutes, closes + window_extension)``.
* :func:`start_refusal`: why a student may not start now (before ``opens``, after ``closes``,
  a wrong password, an address outside ``allowed_networks``), or ``None``.
* :func:`choose_variant`: the variant a student gets, from an HMAC of a course secret, the student
  and the exam: the same inputs always give the same variant, a student cannot predict another
  course's choice, and the students spread evenly over the variants.

Times: the ``[exam]`` table's ``opens`` and ``closes`` may be written without an offset (wall-clock
time in the course time zone, like ``due``); :func:`exam_window` makes them aware. Every other
moment given to these functions must be aware, so that no caller compares a UTC time with a
wall-clock one by mistake.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from autograder.config import ExamConfig

__all__ = ["Allowance", "ExamWindow", "exam_window", "ends_at", "start_refusal",
           "choose_variant", "NO_ALLOWANCE"]


@dataclass(frozen=True)
class Allowance:
    """What one student gets on one exam beyond the exam's own terms.

    ``time_factor`` and ``extra_minutes`` come from the student's accommodation (stored once per
    student, applied to every timed assessment); ``extra_minutes`` also adds any exam-specific
    override's minutes; ``window_extension_minutes`` moves that student's ``closes`` later (an
    exam-specific override only, e.g. a student who may start after the others)."""

    time_factor: float = 1.0
    extra_minutes: float = 0.0
    window_extension_minutes: float = 0.0

    def __post_init__(self) -> None:
        # A programming error, not a person's: the gradebook refuses such values on input.
        if not self.time_factor >= 1.0:
            raise ValueError(f"time_factor {self.time_factor} < 1 would shorten the exam")
        if not (self.extra_minutes >= 0 and self.window_extension_minutes >= 0):
            raise ValueError("extra minutes and window extensions cannot be negative")


NO_ALLOWANCE = Allowance()


@dataclass(frozen=True)
class ExamWindow:
    """An exam's terms with aware times: an attempt may start in ``[opens, closes)`` and lasts
    ``duration`` (times the student's allowance), never past ``closes`` (plus their extension)."""

    opens: dt.datetime
    closes: dt.datetime
    duration: dt.timedelta

    def closes_for(self, allowance: Allowance = NO_ALLOWANCE) -> dt.datetime:
        """The student's own ``closes``: the exam's, moved by their window extension."""
        return self.closes + dt.timedelta(minutes=allowance.window_extension_minutes)


def _aware(moment: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """A naive time is wall-clock time in the course zone; an aware one is kept as it is."""
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment


def _require_aware(moment: dt.datetime, what: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} {moment!r} has no time zone; pass an aware datetime "
                         f"(e.g. datetime.now(timezone.utc))")


def exam_window(exam: ExamConfig, zone: ZoneInfo) -> ExamWindow:
    """The ``[exam]`` table's window, with times written without an offset read in ``zone`` (the
    course time zone, ``course.config.zone``)."""
    return ExamWindow(_aware(exam.opens, zone), _aware(exam.closes, zone),
                      dt.timedelta(minutes=exam.duration_minutes))


def ends_at(started_at: dt.datetime, window: ExamWindow,
            allowance: Allowance = NO_ALLOWANCE) -> dt.datetime:
    """When an attempt started at ``started_at`` ends:
    ``min(started_at + duration x time_factor + extra_minutes, closes + window_extension)``.

    A 60-minute exam with ``time_factor = 1.5`` gives 90 minutes; ``extra_minutes = 10`` then
    gives 100; whatever the allowance, the attempt ends by the student's own ``closes``."""
    _require_aware(started_at, "started_at")
    own_time = (window.duration * allowance.time_factor
                + dt.timedelta(minutes=allowance.extra_minutes))
    return min(started_at + own_time, window.closes_for(allowance))


def start_refusal(window: ExamWindow, now: dt.datetime, *, password: str = "",
                  given_password: str = "", client_address: str | None = None,
                  allowed_networks: Sequence[str] = (),
                  allowance: Allowance = NO_ALLOWANCE) -> str | None:
    """Why a student may not start the exam at ``now``, as a message for them; ``None`` when they
    may. ``password`` is the exam's (empty: none); ``allowed_networks`` the exam's CIDR list
    (empty: any address). An address that cannot be read is refused when a list is set."""
    _require_aware(now, "now")
    zone = window.opens.tzinfo
    shown = "%Y-%m-%d %H:%M %Z"
    if now < window.opens:
        return f"the exam opens at {window.opens.astimezone(zone):{shown}}; start it then"
    closes = window.closes_for(allowance)
    if now >= closes:
        return (f"the exam closed at {closes.astimezone(zone):{shown}}; ask the course staff if "
                f"you could not take it")
    if password and not hmac.compare_digest(password.encode(), given_password.encode()):
        return "wrong exam password; ask the proctor for it"
    if allowed_networks:
        try:
            address = ipaddress.ip_address((client_address or "").strip())
        except ValueError:
            return "your network address could not be read; start the exam from the exam room"
        if not any(address in ipaddress.ip_network(net) for net in allowed_networks):
            return (f"this exam can only be started from the exam room's network (your address "
                    f"is {address}); connect there and try again")
    return None


def choose_variant(course_secret: str | bytes, student: str, exam: str,
                   variants: Sequence[str]) -> str:
    """The variant of ``exam`` that ``student`` gets: HMAC-SHA256 keyed with the course secret
    over the exam and the student id, reduced modulo the number of variants (sorted by name, so
    the order they are written in does not matter).

    Deterministic (a regrade or a reload gets the same one; the service still stores it with the
    attempt, so that adding a variant later changes no one's), unpredictable without the secret,
    and spread evenly over the variants."""
    if not variants:
        raise ValueError(f"{exam} has no variants to choose from")
    if not course_secret:
        raise ValueError("the course secret is empty; variant choice would be predictable")
    key = course_secret.encode() if isinstance(course_secret, str) else course_secret
    # The NUL separator keeps ("ab", "c") and ("a", "bc") apart.
    digest = hmac.new(key, f"{exam}\0{student}".encode(), hashlib.sha256).digest()
    ordered = sorted(variants)
    return ordered[int.from_bytes(digest, "big") % len(ordered)]
