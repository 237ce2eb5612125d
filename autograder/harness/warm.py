"""A warm grader: one assignment's trusted side kept ready across many grading jobs.

The grading service's workers hold one :class:`WarmGrader` per assignment. It runs one pytest
session for its whole life, in a thread of its own: the tests are collected once (their modules,
torch, the reference imported once), parametrized over a single placeholder submission, and a
run loop of our own (``pytest_runtestloop``) binds the placeholder to each job in turn and runs
every test for it. The last test of a job tears down all fixtures (the student's runner, the
session-scoped ones too), so nothing of one submission survives into the next. The sandbox (its
fork server) stays up between jobs. A job pays only for its own tests.

A fault in the loop itself makes the session unusable: that job gets the error (a
:class:`~autograder.errors.PlatformError`, retried by the caller) and the next job starts a new
session.
"""

from __future__ import annotations

import queue
import sys
import tempfile
import threading
import uuid
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path

import pytest

from autograder.errors import GraderError, PlatformError
from autograder.harness import plugin as plugin_module
from autograder.harness.plugin import GradingPlugin, HarnessError
from autograder.harness.session import forget_modules_imported_since, make_sandbox, pytest_args
from autograder.harness.spec import GradingSpec, PreparedSubmission
from autograder.results import GradingResult, SubmissionIdentity
from autograder.sandbox.base import Sandbox

_PLACEHOLDER = "warm-placeholder"
_Job = tuple[PreparedSubmission, "Future[GradingResult]"]


class _JobLoop:
    """The pytest plugin that replaces the run loop: run every collected test once per job."""

    def __init__(self, grading: GradingPlugin, jobs: queue.Queue[_Job | None],
                 ready: Future[None]):
        self.grading = grading
        self.jobs = jobs
        self.ready = ready

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        if self.grading.collect_errors:
            self.ready.set_exception(HarnessError(
                "the tests could not be collected:\n" + "\n".join(self.grading.collect_errors)))
            return True
        items = list(session.items)
        self.ready.set_result(None)
        while (job := self.jobs.get()) is not None:
            prepared, future = job
            try:
                job_id = self.grading.begin_job(prepared, len(items))
                for i, item in enumerate(items):
                    nextitem = items[i + 1] if i + 1 < len(items) else None
                    item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
                result = self.grading.results.pop(job_id, None)
                if result is None:
                    raise GraderError(f"the warm session ran {len(items)} tests for "
                                      f"{prepared.id} without a result")
                future.set_result(result)
            except BaseException as e:  # noqa: BLE001 - the session is unusable: hand it over
                future.set_exception(e if isinstance(e, PlatformError) else GraderError(
                    f"the warm grading session failed: {type(e).__name__}: {e}"))
                return True
        return True


class WarmGrader:
    """Grades submissions of one assignment, one at a time, with the tests collected once and
    the sandbox kept warm. ``grade`` may be called from any thread (jobs run one at a time)."""

    def __init__(self, spec: GradingSpec, backend: str = "process", slot: int = 0,
                 sandbox: Sandbox | None = None):
        self.spec = spec
        self.backend = backend
        self.slot = slot
        self._own_sandbox = sandbox is None
        self._sandbox = sandbox
        self._lock = threading.Lock()
        self._jobs: queue.Queue[_Job | None] | None = None
        self._thread: threading.Thread | None = None
        self.sessions_started = 0  # how many times tests were collected (1 while healthy)

    def _sandbox_ready(self) -> Sandbox:
        if self._sandbox is None:
            self._sandbox = make_sandbox(self.backend)
        return self._sandbox

    def _start_session(self) -> queue.Queue[_Job | None]:
        jobs: queue.Queue[_Job | None] = queue.Queue()
        ready: Future[None] = Future()
        placeholder = PreparedSubmission(_PLACEHOLDER, Path(tempfile.gettempdir()))
        grading = GradingPlugin(self.spec, [placeholder], self._sandbox_ready(), slot=self.slot)
        loop = _JobLoop(grading, jobs, ready)

        def run() -> None:
            with tempfile.TemporaryDirectory(prefix="autograder-warm-") as tmp:
                before = set(sys.modules)
                try:
                    pytest.main(pytest_args(self.spec, Path(tmp)),
                                plugins=[loop, grading, plugin_module])
                except BaseException as e:  # noqa: BLE001 - reported to whoever waits
                    if not ready.done():
                        ready.set_exception(GraderError(f"pytest failed to start: {e}"))
                finally:
                    forget_modules_imported_since(before, self.spec)
                    if not ready.done():
                        ready.set_exception(GraderError("the grading session ended at start"))
                    _fail_waiting(jobs)

        thread = threading.Thread(target=run, name=f"warm-{self.spec.assignment}", daemon=True)
        thread.start()
        ready.result()  # raises the collection error, if any
        self._thread, self._jobs = thread, jobs
        self.sessions_started += 1
        return jobs

    def grade(self, prepared: PreparedSubmission,
              identity: SubmissionIdentity | None = None, run_id: str = "") -> GradingResult:
        """Grade one staged submission; the result carries ``identity`` and ``run_id`` (a fresh
        one when not given). Faults of the platform raise :class:`PlatformError` (the caller
        retries the job); everything the student's code did is in the result."""
        job = replace(prepared, identity=identity or prepared.identity,
                      run_id=run_id or prepared.run_id or uuid.uuid4().hex)
        with self._lock:
            if self._jobs is None or self._thread is None or not self._thread.is_alive():
                self._jobs = self._start_session()
            future: Future[GradingResult] = Future()
            self._jobs.put((job, future))
            try:
                return future.result()
            except PlatformError:
                self._stop_session()
                raise

    def _stop_session(self) -> None:
        jobs, thread = self._jobs, self._thread
        self._jobs = self._thread = None
        if jobs is not None:
            jobs.put(None)
        if thread is not None:
            thread.join(timeout=30)

    def close(self) -> None:
        with self._lock:
            self._stop_session()
            if self._sandbox is not None and self._own_sandbox:
                self._sandbox.close()
            self._sandbox = None

    def __enter__(self) -> WarmGrader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _fail_waiting(jobs: queue.Queue[_Job | None]) -> None:
    """Jobs queued behind a session that ended get a platform error, never a hang."""
    while True:
        try:
            job = jobs.get_nowait()
        except queue.Empty:
            return
        if job is not None and not job[1].done():
            job[1].set_exception(GraderError("the grading session ended before this job ran"))
