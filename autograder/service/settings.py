"""How one running service is configured: ``autograder serve`` builds a :class:`Settings` from
its options; tests build one by hand with short leases."""

from __future__ import annotations

import datetime as dt
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from autograder.submissions import MAX_FILES, MAX_TOTAL_BYTES

#: Where the service keeps what it receives, inside the course directory (uploads by content).
DATA_DIR = "data"


class Clock(Protocol):
    """Where the service reads the time for every exam decision (start, accept, finalise): the
    app holds one (``create_app(..., clock=)``), so tests set the time instead of sleeping."""

    def now(self) -> dt.datetime:
        """The current moment, aware."""
        ...


class SystemClock:
    """The real time, in UTC (the default)."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.timezone.utc)


class ManualClock:
    """A clock that stands still until told: ``set(moment)`` or ``advance(seconds=...)``."""

    def __init__(self, start: dt.datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        with self._lock:
            return self._now

    def set(self, moment: dt.datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        with self._lock:
            self._now = moment

    def advance(self, **delta: float) -> dt.datetime:
        """Move on by ``dt.timedelta(**delta)`` (e.g. ``advance(minutes=30)``)."""
        with self._lock:
            self._now += dt.timedelta(**delta)
            return self._now


def default_workers() -> int:
    """One local grading worker per two CPUs: a grader keeps the trusted process and the student
    runner busy, so more would only queue on the CPUs (as ``grade --jobs 0``)."""
    return max(1, (os.cpu_count() or 2) // 2)


@dataclass(frozen=True)
class Settings:
    """One service's configuration. ``db_url`` defaults to the course's gradebook
    (``gradebook.store.database_url``); uploads go under ``data_dir`` (default ``<course>/data``)."""

    course_root: Path
    db_url: str | None = None
    data_dir: Path | None = None
    workers: int = field(default_factory=default_workers)
    backend: str = "process"
    # A job's lease: renewed by its worker's heartbeat every lease_s / 3; a job whose lease
    # lapsed (its worker died) is taken over by the next claim, so within lease_s + poll_s.
    lease_s: float = 30.0
    poll_s: float = 0.2
    # Faults of the platform (a worker dying, a sandbox failing) before a job ends system_error.
    max_failures: int = 3
    # Caps on one upload, checked while it streams in, before anything is stored.
    max_upload_bytes: int = MAX_TOTAL_BYTES
    max_upload_files: int = min(MAX_FILES, 50)
    # Cookies only over HTTPS: on for a deployment behind TLS, off for 127.0.0.1.
    secure_cookies: bool = False
    session_hours: float = 12.0
    invitation_days: float = 14.0
    # The address students reach the service at (for invitation links).
    public_url: str = "http://127.0.0.1:8000"
    # "Fewest recent jobs first": the window in which a student's started jobs are counted.
    fairness_window_s: float = 3600.0
    # Exams. The key of the variant choice (HMAC of the student and the exam): None reads
    # <data>/exam_secret, generated once (kept out of the public course repository).
    exam_secret: str | None = None
    # Proxies (addresses or CIDR networks) whose X-Forwarded-For is believed when an exam's
    # allowed_networks is checked; empty: the peer address of the connection is the client's.
    trusted_proxies: tuple[str, ...] = ()
    # How often the service finalises attempts whose time is up (the last submission counts).
    exam_finalise_every_s: float = 15.0

    @property
    def uploads_dir(self) -> Path:
        return (self.data_dir or self.course_root / DATA_DIR) / "uploads"

    @property
    def work_dir(self) -> Path:
        """Scratch space of the local workers (staging); their current directory."""
        return (self.data_dir or self.course_root / DATA_DIR) / "work"

    def database_url(self) -> str:
        from gradebook.store import database_url

        return database_url(self.course_root, self.db_url)
