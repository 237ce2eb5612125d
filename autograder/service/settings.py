"""How one running service is configured: ``autograder serve`` builds a :class:`Settings` from
its options; tests build one by hand with short leases."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from autograder.submissions import MAX_FILES, MAX_TOTAL_BYTES

#: Where the service keeps what it receives, inside the course directory (uploads by content).
DATA_DIR = "data"


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
