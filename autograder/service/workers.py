"""The embedded default's grading workers: N local processes that claim jobs from the course
database, grade them with a warm grader per assignment, and record each result once.

Each worker is started isolated (``python -I`` with an explicit ``sys.path`` holding the
platform's own code, its current directory a private scratch folder), so it never imports from
the directory the service was started in nor from an upload. It keeps a
:class:`~autograder.harness.warm.WarmGrader` per assignment (the sandbox's fork server with
numpy/torch imported, pytest warm), renews its job's lease with a heartbeat thread, and reports:

* a result: :func:`queue.complete` (discarded if the lease was lost meanwhile);
* an upload that cannot be read: :func:`queue.not_gradable` (the intake's message);
* a fault of the platform (sandbox, harness, a bug): :func:`queue.fail`; after three the job
  ends ``system_error``.

:class:`LocalWorkers` (used by ``autograder serve``) starts them, restarts one that dies, and
stops them (a worker stopped mid-job gives the job back, uncounted).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from autograder.config import load_course
from autograder.course import Assignment, Course
from autograder.errors import PlatformError
from autograder.harness.grader import make_sandbox, spec_for
from autograder.harness.warm import WarmGrader
from autograder.service import queue
from autograder.service.database import ServiceDB
from autograder.service.settings import Settings
from autograder.service.storage import UploadStore, stage_uploads
from autograder.sandbox.base import Sandbox
from autograder.submissions import IntakeError

#: The platform's own code: the only directory a worker adds to its ``sys.path``.
CODE_ROOT = Path(__file__).resolve().parents[2]
_BOOT = ("import sys; sys.path.insert(0, {root!r}); "
         "from autograder.service.workers import worker_main; worker_main(sys.argv[1:])")


class Stop(BaseException):
    """Raised in a worker's main thread by SIGTERM: give the job back and exit."""


@dataclass
class JobRunner:
    """Grades claimed jobs for one worker: warm graders by assignment, a heartbeat per job."""

    settings: Settings
    db: ServiceDB
    name: str
    slot: int = 0
    # Keyed by (assignment, variant): an exam's variants have different tests.
    graders: dict[tuple[str, str | None], WarmGrader] = field(default_factory=dict)
    _sandbox: Sandbox | None = None
    jobs_done: int = 0
    _alive_at: float = 0.0

    def report_alive(self, lanes: tuple[str, ...] = ("cpu",), every_s: float = 5.0) -> None:
        """Write this worker's heartbeat for the operations page (at most every ``every_s``)."""
        if time.monotonic() - self._alive_at < every_s:
            return
        self._alive_at = time.monotonic()
        try:
            queue.worker_alive(self.db, self.name, lanes, self.jobs_done)
        except Exception as e:  # the page shows a silent worker; grading goes on
            print(f"worker {self.name}: heartbeat not written: {e}", file=sys.stderr, flush=True)

    @property
    def store(self) -> UploadStore:
        return UploadStore(self.settings.uploads_dir)

    def sandbox(self) -> Sandbox:
        """The worker's one sandbox (its fork server keeps numpy/torch imported), shared by its
        graders: one job at a time runs in it."""
        if self._sandbox is None:
            self._sandbox = make_sandbox(self.settings.backend)
        return self._sandbox

    def grader(self, assignment: str, variant: str | None = None) -> WarmGrader:
        """The warm grader of ``assignment`` (of its ``variant`` for an exam with variants)."""
        key = (assignment, variant)
        if key not in self.graders:
            asg = graded_as(Course(self.settings.course_root).assignment(assignment), variant)
            self.graders[key] = WarmGrader(spec_for(asg), self.settings.backend,
                                           slot=self.slot, sandbox=self.sandbox())
        return self.graders[key]

    def warm_up(self) -> None:
        """Start the sandbox and the graders of every assignment before the first job, so no
        student waits for a cold start."""
        course = Course(self.settings.course_root)
        for name in course.assignment_names():
            work = self.settings.work_dir / self.name / f"warm-{name}"
            try:
                asg = course.assignment(name)
                if asg.variant_names():
                    # An exam's variants are warmed by their first job: which variants will be
                    # graded is known only once students start, and the exam itself has no tests.
                    continue
                # Grading the reference once starts the fork server (numpy/torch imported) and
                # imports the tests; its result is thrown away.
                refs = [(f"{m}.py", p.read_bytes()) for m, p in asg.reference_files().items()
                        if p.is_file()]
                grader = self.grader(name)
                if refs:
                    shutil.rmtree(work, ignore_errors=True)
                    grader.grade(stage_uploads(refs, work / "staged", asg.config.modules,
                                               support_files=asg.support_files()))
            except Exception as e:  # an assignment that cannot be graded fails its own jobs
                print(f"worker {self.name}: {name} not warmed: {e}", file=sys.stderr, flush=True)
                self.reset()
            finally:
                shutil.rmtree(work, ignore_errors=True)

    def reset(self) -> None:
        """Forget every grader and the sandbox after a platform fault: the next job starts
        fresh ones (a broken fork server is never reused)."""
        graders, self.graders = list(self.graders.values()), {}
        for grader in graders:  # each holds a pytest session of its own
            try:
                grader.close()
            except Exception:  # a grader broken by the fault may fail to close; dropped anyway
                pass
        if self._sandbox is not None:
            try:
                self._sandbox.close()
            except Exception:  # a broken sandbox may fail to close; it is dropped anyway
                pass
        self._sandbox = None

    def run_once(self, lanes: tuple[str, ...] = ("cpu",)) -> bool:
        """Claim and grade one job; False when none was waiting."""
        job = queue.claim(self.db, self.name, lanes=lanes, lease_s=self.settings.lease_s,
                          max_failures=self.settings.max_failures,
                          fairness_window_s=self.settings.fairness_window_s)
        if job is None:
            return False
        self.grade(job)
        return True

    def grade(self, job: queue.ClaimedJob) -> str:
        """Grade a claimed job and report it; returns what happened (for logs and tests)."""
        beat = _Heartbeat(self.db, job, self.settings.lease_s)
        beat.start()
        work = self.settings.work_dir / self.name / f"job{job.job_id}-try{job.attempts}"
        try:
            asg = graded_as(Course(self.settings.course_root).assignment(job.assignment),
                            job.variant)
            uploads = [(u["name"], self.store.get(u["sha256"])) for u in job.uploads]
            try:
                prepared = stage_uploads(uploads, work / "staged", asg.config.modules,
                                         support_files=asg.support_files())
            except IntakeError as e:
                beat.stop()
                queue.not_gradable(self.db, job.job_id, job.token, str(e))
                return "not_gradable"
            prepared_at = queue._now()
            result = self.grader(job.assignment, job.variant).grade(prepared, job.identity,
                                                                    job.run_id)
            ran_at = queue._now()
            beat.stop()
            kept = queue.complete(self.db, job.job_id, job.token, result,
                                  prepared_at=prepared_at, ran_at=ran_at)
            self.jobs_done += 1
            if kept:  # the LMS gets the counted score in the background, never in grading's way
                try:
                    from autograder.service.lti.passback import schedule_passback

                    schedule_passback(self.db, self.settings.course_root, job.submission_id)
                except Exception as e:  # recorded is recorded: LTI trouble is only logged
                    print(f"worker {self.name}: LMS passback not scheduled: {e}",
                          file=sys.stderr, flush=True)
            return "graded" if kept else "discarded"
        except Stop:
            beat.stop()
            queue.release(self.db, job.job_id, job.token)
            raise
        except Exception as e:
            beat.stop()
            self.reset()
            kind = "platform fault" if isinstance(e, PlatformError) else "bug"
            detail = f"{kind} in worker {self.name}: {type(e).__name__}: {e}\n" \
                     f"{traceback.format_exc(limit=8)}"
            state = queue.fail(self.db, job.job_id, job.token, detail,
                               self.settings.max_failures)
            # Staff read the service's log: say which job, whose, and why.
            print(f"worker {self.name}: job {job.job_id} ({job.identity.student}, "
                  f"{job.assignment}, attempt {job.identity.attempt}): {kind}: "
                  f"{type(e).__name__}: {e} -> {state}", file=sys.stderr, flush=True)
            return f"failed ({state})"
        finally:
            beat.stop()
            shutil.rmtree(work, ignore_errors=True)

    def close(self) -> None:
        self.reset()


def graded_as(asg: Assignment, variant: str | None) -> Assignment:
    """What a job of ``asg`` is graded as: the stored variant of an exam with variants (its own
    tests, reference and modules; the exam's name), else the assignment itself."""
    if variant:
        return asg.variant_of(variant)
    if asg.variant_names():
        raise PlatformError(f"{asg.name} has variants but this submission has no exam attempt "
                            f"(no stored variant); it was not received through the exam")
    return asg


class _Heartbeat(threading.Thread):
    """Renews a job's lease every third of its length while the job is graded."""

    def __init__(self, db: ServiceDB, job: queue.ClaimedJob, lease_s: float) -> None:
        super().__init__(daemon=True, name=f"heartbeat-job{job.job_id}")
        self.db, self.job, self.lease_s = db, job, lease_s
        self._done = threading.Event()
        self.lost = False

    def run(self) -> None:
        while not self._done.wait(self.lease_s / 3):
            try:
                if not queue.heartbeat(self.db, self.job.job_id, self.job.token, self.lease_s):
                    self.lost = True  # taken over: our result will be discarded
                    return
            except Exception:  # a database hiccup: try again at the next beat
                continue

    def stop(self) -> None:
        self._done.set()


def _die_with_parent() -> None:
    """Ask Linux to send SIGTERM when the service that started this worker dies (even by
    SIGKILL), so no worker outlives it."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def worker_main(argv: list[str]) -> None:
    """A worker process (started by :class:`LocalWorkers`): claim and grade until SIGTERM."""
    parser = argparse.ArgumentParser(prog="autograder-worker")
    parser.add_argument("--settings", required=True, help="the Settings as JSON")
    parser.add_argument("--name", required=True)
    parser.add_argument("--slot", type=int, default=0)
    parser.add_argument("--parent", type=int, default=0)
    args = parser.parse_args(argv)
    _die_with_parent()
    if args.parent and os.getppid() != args.parent:
        return  # the service died before we got here
    settings = settings_from_json(args.settings)

    def _stop(signum: int, frame: object) -> None:
        raise Stop

    signal.signal(signal.SIGTERM, _stop)
    db = ServiceDB.open(settings.database_url(), load_course(settings.course_root))
    runner = JobRunner(settings, db, args.name, slot=args.slot)
    try:
        runner.report_alive()
        runner.warm_up()
        while True:
            try:
                runner.report_alive()
                if not runner.run_once():
                    time.sleep(settings.poll_s)
            except Stop:
                raise
            except Exception as e:  # the database went away for a moment: wait, go on
                print(f"worker {args.name}: {type(e).__name__}: {e}", file=sys.stderr,
                      flush=True)
                time.sleep(max(1.0, settings.poll_s))
    except Stop:
        pass
    finally:
        runner.close()
        db.close()


def settings_to_json(settings: Settings) -> str:
    values = {k: (str(v) if isinstance(v, Path) else v) for k, v in settings.__dict__.items()}
    return json.dumps(values)


def settings_from_json(text: str) -> Settings:
    values = json.loads(text)
    for key in ("course_root", "data_dir"):
        if values.get(key) is not None:
            values[key] = Path(values[key])
    return Settings(**values)


class LocalWorkers:
    """N worker processes for one service: started, restarted when one dies, stopped."""

    def __init__(self, settings: Settings, count: int | None = None) -> None:
        self.settings = settings
        self.count = settings.workers if count is None else count
        self.procs: dict[str, subprocess.Popen] = {}
        self._stopping = threading.Event()
        self._watch: threading.Thread | None = None

    def _start_one(self, index: int) -> None:
        name = f"{os.uname().nodename}-{os.getpid()}-w{index}"
        scratch = self.settings.work_dir / name
        scratch.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-I", "-c", _BOOT.format(root=str(CODE_ROOT)),
               "--settings", settings_to_json(self.settings), "--name", name,
               "--slot", str(index), "--parent", str(os.getpid())]
        # Its own folder as the current directory: nothing there to import by accident.
        self.procs[name] = subprocess.Popen(cmd, cwd=scratch, stdin=subprocess.DEVNULL)

    def start(self) -> None:
        self.settings.work_dir.mkdir(parents=True, exist_ok=True)
        for i in range(self.count):
            self._start_one(i)
        self._watch = threading.Thread(target=self._supervise, daemon=True,
                                       name="worker-supervisor")
        self._watch.start()

    def _supervise(self) -> None:
        while not self._stopping.wait(1.0):
            for name, proc in list(self.procs.items()):
                if proc.poll() is not None and not self._stopping.is_set():
                    # A dead worker's job is taken over when its lease lapses; start another.
                    index = int(name.rsplit("-w", 1)[1])
                    del self.procs[name]
                    self._start_one(index)

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs.values() if p.poll() is None]

    def __enter__(self) -> LocalWorkers:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
