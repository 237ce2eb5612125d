"""The pytest plugin that turns ordinary pytest tests into a grader.

One pytest session grades a whole batch: every test is parametrized over the submissions at
session scope, so pytest collects the tests once and runs all tests of one submission together
(one student runner per submission, restarted only after a crash or timeout). This plugin gives
the tests their fixtures (``student``, ``submission``, ``reference``, ``rng``), reads their
markers (``points``, ``visibility``, ``time_limit``), enforces time limits, and turns every
test's outcome into a :class:`~autograder.results.TestResult`. It is the one place that decides
a score.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import re
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Literal

import numpy as np
import pytest

from autograder.errors import GraderError
from autograder.harness.remote import StudentSession, StudentSideFailure
from autograder.harness.spec import GradingSpec, PreparedSubmission
from autograder.harness.verdict import verdict
from autograder.sandbox.base import Limits, Sandbox
from autograder.results import VISIBILITIES, GradingResult, Outcome, ResourceUse, TestResult

_PARAM = "_ag_submission"
_ID_PREFIX = "AGSUB"
MAX_TEST_OUTPUT = 4000


class HarnessError(GraderError):
    """The tests themselves are broken (collection error, bad marker): never the student's fault."""


class BudgetExhausted(StudentSideFailure):
    outcome = Outcome.BUDGET


@dataclass
class _TestRecord:
    item: pytest.Item
    started: float = 0.0
    finished: float = 0.0
    excinfo: Any = None
    skipped: str | None = None
    output_mark: tuple[int, int] = (0, 0)
    output: str = ""
    replies_before: int = 0       # student replies before the test began (see verdict.py)
    student_values_seen: bool = False
    output_cut: bool = False      # the output cap was reached during this test
    cut_before: bool = False      # ... or already before it began


class SubmissionHandle:
    """The ``submission`` fixture: the submission's id and its modules."""

    def __init__(self, prepared: PreparedSubmission, session: StudentSession):
        self.id = prepared.id
        self._session = session

    def module(self, name: str):
        return self._session.module(name)


class GradingPlugin:
    def __init__(self, spec: GradingSpec, submissions: list[PreparedSubmission],
                 sandbox: Sandbox, on_result: Callable[[GradingResult], None] | None = None,
                 slot: int = 0):
        self.spec = spec
        self.submissions = submissions
        self.sandbox = sandbox
        self.on_result = on_result
        self.slot = slot
        self.results: dict[str, GradingResult] = {}
        self.collect_errors: list[str] = []
        self._sessions: dict[str, StudentSession] = {}
        self._records: dict[str, list[_TestRecord]] = {s.id: [] for s in submissions}
        self._pending: dict[str, int] = {}
        self._started: dict[str, float] = {}
        self._current: _TestRecord | None = None
        self._reference: dict[str, ModuleType] = {}
        self._by_id = {s.id: s for s in submissions}
        self._param_ids = {s.id: f"{_ID_PREFIX}{i}" for i, s in enumerate(submissions)}
        self._index = {s.id: i for i, s in enumerate(submissions)}
        self._prefetched: dict[str, Any] = {}
        # Submissions whose tests are done and whose runner is ending: their results are
        # completed once it has (see _finish_submission).
        self._ending: list[_Ending] = []
        self._seeds: dict[str, int] = {}
        self._warm = False  # a warm grader's session: jobs keep coming, their number unknown

    # -- configuration ---------------------------------------------------------------------------
    def pytest_configure(self, config: pytest.Config) -> None:
        _active.plugin = self
        config.addinivalue_line("markers", "points(p, extra_credit=False): the test is worth p "
                                           "points (on top of the total if extra_credit)")
        config.addinivalue_line("markers", "visibility(v): visible/public, hidden, "
                                           "after_due_date or after_published")
        config.addinivalue_line("markers", "time_limit(seconds): wall-clock limit of the test")

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if _PARAM in metafunc.fixturenames:
            metafunc.parametrize(_PARAM, self.submissions, indirect=True, scope="session",
                                 ids=[self._param_ids[s.id] for s in self.submissions])

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collect_errors.append(f"{report.nodeid}: {report.longreprtext}")

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # Tests that compute expected values with torch: one thread. Intra-op threads only
        # add scheduling cost for these small tensors, and the grader shares the machine.
        torch = sys.modules.get("torch")
        if torch is not None:
            torch.set_num_threads(1)
        # Every submission's copy of a test has the same file and line; pytest works them out
        # from the function's source for each item it runs (~0.1 ms), so only once per test
        # here. (`location` is a cached property: a value set beforehand is the one used.)
        places: dict[tuple[Any, ...], tuple[str, int | None]] = {}
        for item in session.items:
            key = (item.path, getattr(item, "originalname", item.name), getattr(item, "cls", None))
            place = places.get(key)
            if place is None:
                places[key] = item.location[:2]
            elif isinstance(item, pytest.Function):
                item.__dict__["location"] = (*place, item.getmodpath())

    # After pytest's own `-k`/`-m` deselection (`check -k PATTERN`): only the tests that run
    # are waited for.
    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            sub = self._submission_of(item)
            self._pending[sub] = self._pending.get(sub, 0) + 1
            self._check_markers(item)

    @staticmethod
    def _check_markers(item: pytest.Item) -> None:
        m = item.get_closest_marker("points")
        if m is not None and (len(m.args) != 1 or not isinstance(m.args[0], (int, float))
                              or m.args[0] < 0 or set(m.kwargs) - {"extra_credit"}
                              or not isinstance(m.kwargs.get("extra_credit", False), bool)):
            raise HarnessError(f"{item.nodeid}: write @pytest.mark.points(p) with one "
                               f"non-negative number (and optionally extra_credit=True)")
        v = item.get_closest_marker("visibility")
        if v is not None and (len(v.args) != 1 or _visibility(v.args[0]) is None):
            raise HarnessError(f"{item.nodeid}: visibility must be one of "
                               f"{', '.join(VISIBILITIES)} (or 'public')")
        t = item.get_closest_marker("time_limit")
        if t is not None and (len(t.args) != 1 or not isinstance(t.args[0], (int, float))
                              or t.args[0] <= 0):
            raise HarnessError(f"{item.nodeid}: write @pytest.mark.time_limit(seconds) with "
                               f"one positive number")

    # -- warm sessions: one collection, many submissions (see harness/warm.py) ---------------
    def begin_job(self, prepared: PreparedSubmission, item_count: int) -> str:
        """Bind every collected test to ``prepared`` for its next run. The tests were collected
        once, parametrized over one placeholder submission; the placeholder takes this job's
        fields, and the per-submission bookkeeping starts afresh. Returns the job's id."""
        self._warm = True
        slot = self.submissions[0]
        for f in dataclasses.fields(PreparedSubmission):
            setattr(slot, f.name, getattr(prepared, f.name))
        self._by_id = {slot.id: slot}
        self._index = {slot.id: 0}
        self._records = {slot.id: []}
        self._pending = {slot.id: item_count}
        self._prefetched.clear()
        self.results.pop(slot.id, None)
        return slot.id

    # -- what the fixtures ask of the plugin ------------------------------------------------------
    def open_session(self, prepared: PreparedSubmission) -> StudentSession:
        index = self._index[prepared.id]
        self._expect_after(index)
        session = StudentSession(self.sandbox, prepared.files, self.spec.limits,
                                 self.spec.modules, self._slot_of(index),
                                 prestarted=self._prefetched.pop(prepared.id, None))
        self._sessions[prepared.id] = session
        self._started[prepared.id] = time.monotonic()
        if not self._ending:
            self._prefetch(index + 1)
        return session

    def session_done(self, session: StudentSession) -> None:
        """The submission fixture's end: close a session that no result has taken over."""
        if not any(e.session is session for e in self._ending):
            session.close()

    def _current_item(self) -> pytest.Item:
        if self._current is None:
            raise HarnessError("a per-test fixture was used outside a test")
        return self._current.item

    def current_submission(self) -> PreparedSubmission:
        """The submission the running test is bound to."""
        return self._by_id[self._submission_of(self._current_item())]

    def current_seed(self) -> int:
        """The running test's seed, from its name (not the submission's)."""
        item = self._current_item()
        key = f"{item.path.name}::{_strip_param(item.name)}"
        seed = self._seeds.get(key)
        if seed is None:
            seed = self._seeds[key] = int.from_bytes(
                hashlib.sha256(key.encode()).digest()[:8], "little")
        return seed

    def reference_module(self) -> ModuleType:
        if not self.spec.reference_files:
            raise HarnessError("this test uses the `reference` fixture, but no reference "
                               "solution is available here (public tests must not use it)")
        return self._load_reference(self.spec.modules[0])

    def _load_reference(self, module: str) -> ModuleType:
        if module not in self._reference:
            path = self.spec.reference_files[module]
            name = f"_autograder_reference_{self.spec.assignment}_{module}"
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                raise HarnessError(f"cannot import the reference {path}")
            mod = importlib.util.module_from_spec(spec)
            sys.modules[name] = mod
            spec.loader.exec_module(mod)
            self._reference[module] = mod
        return self._reference[module]

    def _slot_of(self, index: int) -> int:
        # Neighbours in the batch run at the same time (one is prefetched): different uids.
        return self.slot * 2 + index % 2

    def _expect_after(self, index: int) -> None:
        """Tell the sandbox how many runner starts each of this batch's slots still expects
        after submission ``index``'s (a warm grader's placeholder: unknown, so no hint)."""
        if self._warm:
            return
        # Slots alternate (_slot_of): the later submissions of each parity are its starts.
        for first in (index + 1, index + 2):
            self.sandbox.expect_starts(self._slot_of(first),
                                       len(range(first, len(self.submissions), 2)))

    def _prefetch(self, index: int) -> None:
        """Start the next submission's runner now, so its setup overlaps this one's tests."""
        if index >= len(self.submissions):
            return
        nxt = self.submissions[index]
        if nxt.id in self._prefetched:
            return
        if self.spec.limits.gpu in ("optional", "required"):
            # A runner started ahead would find the GPU held by this one: it would run on the
            # CPU (or be refused), or hold a second device while it waits.
            return
        self._expect_after(index)
        try:
            self._prefetched[nxt.id] = self.sandbox.start(nxt.files, self.spec.limits,
                                                          self._slot_of(index))
        except Exception:  # noqa: BLE001 - it will be started (and fail visibly) when needed
            pass

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if getattr(_active, "plugin", None) is self:
            _active.plugin = None

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self._complete_ended(wait=True)
        if not self._warm:  # the batch is over: a later user of the sandbox gives its own hints
            for slot in {self._slot_of(0), self._slot_of(1)}:
                self.sandbox.expect_starts(slot, None)
        for runner in self._prefetched.values():
            runner.close()
        self._prefetched.clear()

    # -- running a test ------------------------------------------------------------------
    def _submission_of(self, item: pytest.Item) -> str:
        callspec = getattr(item, "callspec", None)
        if callspec is None or _PARAM not in callspec.params:
            raise HarnessError(f"{item.nodeid} is not bound to a submission")
        return callspec.params[_PARAM].id

    def _time_limit(self, item: pytest.Item) -> float:
        m = item.get_closest_marker("time_limit")
        return float(m.args[0]) if m is not None else self.spec.test_time_limit_s

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        sub = self._submission_of(item)
        record = _TestRecord(item=item, started=time.monotonic())
        self._records[sub].append(record)
        self._current = record
        session = self._sessions.get(sub)
        budget_end = self._started.get(sub, time.monotonic()) + self.spec.submission_time_limit_s
        if session is not None:
            session.deadline = min(time.monotonic() + self._time_limit(item), budget_end)
            record.output_mark = session.output_position
            record.replies_before = session.replies
            record.cut_before = _output_cut(session)
        if time.monotonic() >= budget_end:
            raise BudgetExhausted(f"the submission used up its time budget of "
                                  f"{self.spec.submission_time_limit_s:g} s before this test")

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> None:
        # Fixture setup may have started the runner; the deadline counts from the call.
        sub = self._submission_of(item)
        session = self._sessions[sub]
        budget_end = self._started[sub] + self.spec.submission_time_limit_s
        session.deadline = min(time.monotonic() + self._time_limit(item), budget_end)
        if self._current is not None and self._current.output_mark == (0, 0):
            self._current.output_mark = session.output_position
            self._current.cut_before = _output_cut(session)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        """Record the outcome for grading and return a minimal report. pytest's own report
        renders the failing source with AST walks (~3 ms per failure); the grader never shows
        it, and buggy submissions fail many tests, so it is not built."""
        record = self._current
        if record is not None and record.item is item:
            if call.excinfo is not None and record.excinfo is None:
                if call.excinfo.errisinstance(pytest.skip.Exception):
                    record.skipped = str(call.excinfo.value)
                else:
                    record.excinfo = call.excinfo
            if call.when == "call" or (call.when == "setup" and call.excinfo is not None):
                session = self._sessions.get(self._submission_of(item))
                if session is not None:
                    record.output = session.output_since(record.output_mark)
                    record.student_values_seen = session.replies > record.replies_before
                    record.output_cut = _output_cut(session) and not record.cut_before
            if call.when == "teardown":
                record.finished = time.monotonic()
                self._finish_test(item)
        outcome: Literal["passed", "failed", "skipped"]
        longrepr: Any
        if call.excinfo is None:
            outcome, longrepr = "passed", None
        elif call.excinfo.errisinstance(pytest.skip.Exception):
            outcome, longrepr = "skipped", (str(item.path), item.location[1] or 0,
                                            str(call.excinfo.value))
        else:
            outcome = "failed"
            longrepr = f"{call.excinfo.typename}: {str(call.excinfo.value)[:2000]}"
        when = call.when if call.when != "collect" else "setup"
        return pytest.TestReport(item.nodeid, item.location, {}, outcome, longrepr, when,
                                 duration=call.duration, start=call.start, stop=call.stop)

    def _finish_test(self, item: pytest.Item) -> None:
        sub = self._submission_of(item)
        self._pending[sub] -= 1
        if self._pending[sub] == 0:
            self._finish_submission(sub)
        elif self._ending:
            # The previous submission's runner has likely ended by now: its result is
            # completed, and only then is the next runner started (it takes that one's uid).
            self._complete_ended(wait=False)
            if not self._ending:
                self._prefetch(self._index[sub] + 1)

    # -- results -------------------------------------------------------------------------------
    def _test_result(self, record: _TestRecord) -> TestResult | None:
        item = record.item
        if record.skipped is not None and record.excinfo is None:
            return None
        m = item.get_closest_marker("points")
        points = float(m.args[0]) if m is not None else 1.0
        extra_credit = bool(m is not None and m.kwargs.get("extra_credit", False))
        suite = "hidden" if Path(item.path) in self.spec.hidden_files else "public"
        v = item.get_closest_marker("visibility")
        visibility = _visibility(v.args[0]) if v is not None else (
            "hidden" if suite == "hidden" else "visible")
        excinfo = record.excinfo
        found = verdict(excinfo.value if excinfo is not None else None,
                        time_limit=self._time_limit(item),
                        student_values_seen=record.student_values_seen,
                        # Read from the test's source (an AST walk, ~0.03 s a test) only for
                        # a bare `assert`, the one verdict that shows it.
                        failing_statement=_failing_statement(excinfo)
                        if excinfo is not None and excinfo.errisinstance(AssertionError)
                        and not str(excinfo.value).strip() else "")
        outcome, output = found.outcome, found.message
        student_output = record.output.strip("\n")
        if student_output:
            if len(student_output) > MAX_TEST_OUTPUT:
                student_output = student_output[:MAX_TEST_OUTPUT] + "\n[output truncated]"
            output += ("\n\n" if output else "") + "Your code printed:\n" + student_output
        if record.output_cut:
            # Noted on the test that caused it, with that test's visibility: a note at the
            # always-visible top level would leak a bit of a hidden test's input.
            output += ("\n\n" if output else "") + ("The output of your code was longer than "
                                                     "the limit and was cut here.")
        return TestResult(
            name=f"{item.path.name}::{_strip_param(item.name)}",
            score=points if outcome == Outcome.PASSED else 0.0,
            max_score=0.0 if extra_credit else points, outcome=outcome, output=output,
            visibility=visibility or "visible",
            duration_s=(record.finished or time.monotonic()) - record.started, suite=suite,
            extra_credit=extra_credit, extra_points=points if extra_credit else 0.0)

    def _finish_submission(self, sub: str) -> None:
        """The submission's last test is done. Its result needs how its runner ended (the
        student code's CPU time and memory), which the runner's init reports a few
        milliseconds after it is asked to end: within a batch, the result is completed while
        the next submission's tests run (one submission ends at a time, so a runner started
        ahead never shares a uid with one still ending)."""
        session = self._sessions.pop(sub, None)
        ending = _Ending(
            sub=sub, session=session,
            tests=tuple(t for t in (self._test_result(r) for r in self._records[sub]) if t),
            wall_s=round(time.monotonic() - self._started[sub], 3))
        self._complete_ended(wait=True)
        if session is not None and self._may_defer(sub) and session.end():
            self._ending.append(ending)
        else:
            self._complete(ending)

    def _may_defer(self, sub: str) -> bool:
        # The last submission of the run (and a warm session's one job) is completed at once;
        # so is a GPU runner's, whose device the next submission's runner waits for.
        return (self._index[sub] + 1 < len(self.submissions)
                and self.spec.limits.gpu not in ("optional", "required"))

    def _complete_ended(self, wait: bool) -> None:
        while self._ending and (wait or _has_ended(self._ending[0].session)):
            self._complete(self._ending.pop(0))

    def _complete(self, ending: _Ending) -> None:
        sub, session = ending.sub, ending.session
        prepared = self._by_id[sub]
        notes = list(prepared.notes)
        degraded: tuple[str, ...] = ()
        resources = ResourceUse()
        if session is not None:
            session.close()
            degraded = tuple(session.degraded)
            resources = ResourceUse(
                cpu_s=round(sum(e.cpu_s for e in session.exits), 3),
                max_rss_mb=round(max((e.maxrss_kb for e in session.exits), default=0) / 1024, 1),
                wall_s=ending.wall_s, runner_starts=session.runner_starts)
        result = GradingResult(
            assignment=self.spec.assignment, submission=sub, tests=ending.tests,
            backend=self.sandbox.name, content_hash=prepared.content_hash,
            execution_time_s=resources.wall_s, resources=resources, degraded=degraded,
            output="\n".join(notes),
            graded_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            identity=prepared.identity, run_id=prepared.run_id or uuid.uuid4().hex,
            test_set=self.spec.test_set)
        self.results[sub] = result
        if self.on_result is not None:
            self.on_result(result)


# --- the fixtures tests use ------------------------------------------------------------------------
# None takes pytest's `request`: pytest builds a fixture definition for `request` (an
# inspect.signature) every time a fixture that asks for it is used, about seven times a test.
# The plugin is the one of the pytest session running in this thread (a warm grader runs its
# session in a thread of its own), and it knows the running test and its submission.
_active = threading.local()


def _this_plugin() -> GradingPlugin:
    plugin = getattr(_active, "plugin", None)
    if plugin is None:
        raise HarnessError("the grading fixtures are used outside a grading session")
    return plugin


@pytest.fixture(scope="session", autouse=True)
def _ag_submission():
    """One submission's student side: a runner started on first use, closed at the end.
    (Parametrized indirectly over the batch: set up at the first test of each submission.)"""
    plugin = _this_plugin()
    session = plugin.open_session(plugin.current_submission())
    yield session
    plugin.session_done(session)


@pytest.fixture
def student(_ag_submission: StudentSession):
    """The submission's main module, living in the student process."""
    return _ag_submission.module(_this_plugin().spec.modules[0])


@pytest.fixture
def submission(_ag_submission: StudentSession):
    """The submission: ``submission.module(name)`` for assignments with several modules."""
    return SubmissionHandle(_this_plugin().current_submission(), _ag_submission)


@pytest.fixture(scope="session")
def reference() -> ModuleType:
    """The reference solution, imported in this (trusted) process. Hidden tests only."""
    return _this_plugin().reference_module()


@pytest.fixture
def rng() -> np.random.Generator:
    """Seeded from the test's name (not the submission): every student gets the same inputs."""
    return np.random.default_rng(_this_plugin().current_seed())


def _has_ended(session: StudentSession | None) -> bool:
    return session is None or session.ended()


@dataclasses.dataclass
class _Ending:
    """A submission whose tests are done, waiting for how its runner ended."""

    sub: str
    session: StudentSession | None
    tests: tuple[TestResult, ...]
    wall_s: float


def _output_cut(session: StudentSession) -> bool:
    runner = session.runner
    return session.output_truncated or (runner is not None and runner.output.truncated)


def _visibility(value: Any) -> str | None:
    if value == "public":
        return "visible"
    return value if value in VISIBILITIES else None


def _strip_param(name: str) -> str:
    """``test_x[AGSUB3-2-3]`` -> ``test_x[2-3]``; ``test_x[AGSUB3]`` -> ``test_x``."""
    m = re.match(r"^(.*?)\[(.*)\]$", name)
    if not m:
        return name
    ids = [p for p in m.group(2).split("-") if not re.fullmatch(rf"{_ID_PREFIX}\d+", p)]
    return f"{m.group(1)}[{'-'.join(ids)}]" if ids else m.group(1)


def _failing_statement(excinfo: Any) -> str:
    try:
        return str(excinfo.traceback[-1].statement).strip()
    except Exception:  # noqa: BLE001 - the source may not be available
        return "an assertion in the test"
