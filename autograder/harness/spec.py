"""The types a grading session is made of, shared by the grader, its workers, the pytest plugin,
``verify`` and the service (kept out of the plugin so none of them imports another's internals).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from autograder.results import SubmissionIdentity, TestSet
from autograder.sandbox.base import Limits


@dataclass
class PreparedSubmission:
    """A submission ready to grade: a directory holding only the student's files (and the
    assignment's public support files), with the identity its result will carry."""

    id: str
    files: Path
    content_hash: str = ""
    notes: list[str] = field(default_factory=list)
    identity: SubmissionIdentity = field(default_factory=SubmissionIdentity)
    run_id: str = ""  # empty: the session names the run


@dataclass
class GradingSpec:
    """Everything one grading session needs."""

    assignment: str
    modules: tuple[str, ...]
    test_files: list[Path]                 # public first, then hidden
    hidden_files: frozenset[Path]          # which of them are hidden tests
    reference_files: dict[str, Path]       # module -> trusted reference source; {} in `check`
    limits: Limits
    test_time_limit_s: float
    submission_time_limit_s: float
    rootdir: Path
    # ``full``: every test of the assignment (a grade); ``public``: the public ones only.
    test_set: TestSet = "full"
