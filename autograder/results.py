"""The result of grading one submission: the one result type the whole platform passes around.

Its JSON form is Gradescope's ``results.json`` shape (``score``, ``max_score``,
``tests: [{name, score, max_score, status, output, visibility}]``) so that tools which already
read Gradescope results read ours; our own fields (timings, resource use, the sandbox backend,
the outcome kind of every test, protections that were not available) sit beside them.

Every score in a ``GradingResult`` was computed by the trusted harness; nothing in it comes from
the student process except captured output, which is only ever shown as text.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

#: Gradescope's visibility values. ``visible`` is what course material calls "public".
VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")

#: Which tests a result covers: every test (public and hidden), or the public ones only
#: (``grade --public-only``, a student's ``check``). Only a ``full`` result may count as a grade.
TestSet = Literal["full", "public"]


class Outcome(StrEnum):
    """Why a test ended as it did: the platform's one vocabulary of verdicts, used by the harness,
    the reports, the gradebook and the service. ``status`` (passed/failed) is derived from it.
    Which outcome a test gets is decided in one place, :mod:`autograder.harness.verdict`."""

    PASSED = "passed"
    FAILED = "failed"                  # a check in the test failed: wrong values, shapes, dtypes
    ERROR = "error"                    # the student's code raised an exception
    NOT_IMPLEMENTED = "not_implemented"  # the student's code raised NotImplementedError (a stub)
    TIMEOUT = "timeout"                # a call or the test ran past its time limit
    MEMORY = "memory"                  # the student process ran out of its memory limit
    CRASH = "crash"                    # the student process died (exit, signal) during the test
    PROTOCOL = "protocol"              # the student process sent something the protocol refuses
    BUDGET = "budget"                  # the submission's total time budget was spent before this test
    INTAKE = "intake"                  # the upload could not be read (bad zip, notebook, names)
    GRADER_ERROR = "grader_error"      # the platform or the test itself failed; never the student's fault

    @property
    def charged_to_student(self) -> bool:
        """False for a fault of the platform: such a test is not counted against anyone."""
        return self is not Outcome.GRADER_ERROR


@dataclass(frozen=True)
class TestResult:
    """One test of one submission."""

    name: str
    score: float
    max_score: float
    outcome: Outcome
    output: str = ""
    visibility: str = "visible"
    duration_s: float = 0.0
    # Which file the test came from: "public" (assignments/<name>/tests) or "hidden" (solutions/).
    suite: str = "public"
    # Extra credit (Gradescope's convention): max_score is 0 and a pass adds its points on top.
    extra_credit: bool = False
    # What a pass of an extra-credit test adds (0 for a regular test), so a failed one can say
    # how many bonus points exist ("0 / +3 extra").
    extra_points: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "outcome", Outcome(self.outcome))  # refuses an unknown kind

    @property
    def status(self) -> str:
        return "passed" if self.outcome == Outcome.PASSED else "failed"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "score": self.score,
            "max_score": self.max_score,
            "status": self.status,
            "output": self.output,
            "visibility": self.visibility,
            "outcome": self.outcome,
            "duration_s": round(self.duration_s, 6),
            "suite": self.suite,
            "extra_credit": self.extra_credit,
            "extra_points": self.extra_points,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TestResult:
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        return cls(**values)


@dataclass(frozen=True)
class ResourceUse:
    """What the student process(es) of one submission used, as the sandbox measured it."""

    cpu_s: float = 0.0
    max_rss_mb: float = 0.0
    wall_s: float = 0.0
    runner_starts: int = 0  # >1 means a runner died or timed out and was restarted


@dataclass(frozen=True)
class SubmissionIdentity:
    """Who submitted what, and when it was received: made when a submission is stored, carried
    by its grading job and by every result, so the gradebook never reconstructs it.

    ``received_at`` is an ISO 8601 time with its UTC offset (deadlines are judged on it, never
    on when grading ran); ``attempt`` counts from 1 (0: not yet numbered by a gradebook)."""

    student: str = ""
    attempt: int = 0
    received_at: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"student": self.student, "attempt": self.attempt,
                "received_at": self.received_at}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> SubmissionIdentity:
        data = data or {}
        return cls(student=str(data.get("student", "")), attempt=int(data.get("attempt", 0)),
                   received_at=str(data.get("received_at", "")))


@dataclass(frozen=True)
class GradingResult:
    """The graded submission. ``score`` is always the sum of the tests' scores.

    ``submission`` is the submission's id in its batch (or its gradebook id); ``identity`` says
    whose it is and when it was received; ``run_id`` names this grading run (a regrade is a new
    run); ``test_set`` says which tests ran (only a ``full`` result may count as a grade)."""

    assignment: str
    submission: str
    tests: tuple[TestResult, ...]
    backend: str
    content_hash: str = ""
    execution_time_s: float = 0.0
    resources: ResourceUse = field(default_factory=ResourceUse)
    # Protections the sandbox could not apply on this machine (never silently degraded).
    degraded: tuple[str, ...] = ()
    # A submission-level message: intake problems, import errors, output truncation.
    output: str = ""
    graded_at: str = ""
    identity: SubmissionIdentity = field(default_factory=SubmissionIdentity)
    run_id: str = ""
    test_set: TestSet = "full"

    @property
    def grader_errors(self) -> tuple[TestResult, ...]:
        """Tests that ended in a fault of the platform: staff must look, the student is not
        charged."""
        return tuple(t for t in self.tests if t.outcome is Outcome.GRADER_ERROR)

    @property
    def score(self) -> float:
        """Points earned, extra credit included (so it may exceed ``max_score``)."""
        return round(sum(t.score for t in self.tests), 6)

    @property
    def max_score(self) -> float:
        return round(sum(t.max_score for t in self.tests), 6)

    def to_json(self) -> dict[str, Any]:
        """Gradescope's results.json, plus our own fields."""
        return {
            "score": self.score,
            "max_score": self.max_score,
            "output": self.output,
            "execution_time": round(self.execution_time_s, 3),
            "tests": [t.to_json() for t in self.tests],
            "assignment": self.assignment,
            "submission": self.submission,
            "content_hash": self.content_hash,
            "backend": self.backend,
            "resources": asdict(self.resources),
            "degraded_protections": list(self.degraded),
            "graded_at": self.graded_at,
            "identity": self.identity.to_json(),
            "run_id": self.run_id,
            "test_set": self.test_set,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GradingResult:
        return cls(
            assignment=data["assignment"],
            submission=data["submission"],
            tests=tuple(TestResult.from_json(t) for t in data["tests"]),
            backend=data["backend"],
            content_hash=data.get("content_hash", ""),
            execution_time_s=float(data.get("execution_time", 0.0)),
            resources=ResourceUse(**data.get("resources", {})),
            degraded=tuple(data.get("degraded_protections", ())),
            output=data.get("output", ""),
            graded_at=data.get("graded_at", ""),
            identity=SubmissionIdentity.from_json(data.get("identity")),
            run_id=str(data.get("run_id", "")),
            test_set="public" if data.get("test_set") == "public" else "full",
        )

    def write(self, path: Path) -> None:
        """Write results.json atomically: a reader never sees half a file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2, sort_keys=False) + "\n")
        tmp.replace(path)

    @classmethod
    def read(cls, path: Path) -> GradingResult:
        return cls.from_json(json.loads(Path(path).read_text()))
