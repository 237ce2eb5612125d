"""A warm grader: one assignment's trusted side kept ready across many grading jobs.

The grading service's workers hold one :class:`WarmGrader` per assignment they grade: the sandbox
(its fork server with numpy/torch imported) stays up between jobs, so a job pays only for its own
tests. ``grade`` is called from one thread at a time.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import replace

from autograder.harness.grader import make_sandbox, run_session
from autograder.harness.plugin import GradingSpec, PreparedSubmission
from autograder.results import GradingResult, SubmissionIdentity
from autograder.sandbox.base import Sandbox


class WarmGrader:
    """Grades submissions of one assignment, one at a time, with a sandbox kept warm."""

    def __init__(self, spec: GradingSpec, backend: str = "process", slot: int = 0,
                 sandbox: Sandbox | None = None):
        self.spec = spec
        self.backend = backend
        self.slot = slot
        self._own_sandbox = sandbox is None
        self._sandbox = sandbox
        self._lock = threading.Lock()

    def _ensure_sandbox(self) -> Sandbox:
        if self._sandbox is None:
            self._sandbox = make_sandbox(self.backend)
        return self._sandbox

    def grade(self, prepared: PreparedSubmission,
              identity: SubmissionIdentity | None = None, run_id: str = "") -> GradingResult:
        """Grade one staged submission; the result carries ``identity`` and ``run_id`` (a fresh
        one when not given). Faults of the platform raise :class:`~autograder.errors.PlatformError`
        (the caller retries the job); everything the student's code did is in the result."""
        with self._lock:
            sandbox = self._ensure_sandbox()
            result = run_session(self.spec, [prepared], sandbox, slot=self.slot)[prepared.id]
        return replace(result, identity=identity or SubmissionIdentity(),
                       run_id=run_id or uuid.uuid4().hex,
                       test_set="full" if self.spec.hidden_files or self.spec.reference_files
                       else "public")

    def close(self) -> None:
        if self._sandbox is not None and self._own_sandbox:
            self._sandbox.close()
        self._sandbox = None

    def __enter__(self) -> WarmGrader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
