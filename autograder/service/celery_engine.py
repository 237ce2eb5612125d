"""The distributed engine: Celery on Redis carries "a job is waiting" messages to workers on other
machines; the database stays the queue of record.

How the pieces fit (and why nothing acknowledged is lost):

* The service only writes jobs to the database (:func:`autograder.service.queue.enqueue`).
* A **sweeper** (one at a time across all workers, elected with a Redis lock) reads the
  database several times a second and keeps, for every Celery queue, at least as many messages
  waiting as there are claimable jobs (queued, or running under a lapsed lease). A message
  lost with a Redis restart, or held by a worker that was killed, is simply published again.
* A message carries only a job id, and it is a token: the worker that receives it **claims
  through the database** (:func:`~autograder.service.queue.claim`), which applies the queue's
  own order (students before regrades, the student with the fewest recent jobs first) and gives
  a lease renewed by a heartbeat. A spare message claims nothing and is acknowledged; a result
  is recorded only under the current lease, so a job is graded and recorded exactly once
  whatever Celery redelivers.
* Queues: ``cpu`` (students' submissions), ``regrade`` (the low-priority lane: a regrade's
  message never takes a job ahead of a student's, because the claim order decides) and ``gpu``
  (consumed only by worker processes that own a GPU, one process and one job per GPU). CPU and
  GPU work run in separate worker processes, so a GPU backlog never delays a CPU job.
* Each worker process is a Celery worker with the ``solo`` pool, ``acks_late`` and a prefetch of
  one: it holds at most the message it is working on, and keeps its sandbox and per-assignment
  graders warm across tasks (no per-job interpreter or import start-up). It warms them before
  its first task, and writes its heartbeat row for the operations page from a thread, as the
  embedded engine's local workers do.

``autograder worker`` (see :func:`worker_command`) is the supervisor on one machine: it starts
``--concurrency`` CPU worker processes and one per GPU, and the sweeper thread.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from celery import Celery

    from autograder.service.database import ServiceDB
    from autograder.service.settings import Settings
    from autograder.service.workers import JobRunner

# Only click and the standard library at import time: `autograder --help` loads this module to
# list the worker command, and Celery, SQLAlchemy and the models load when a worker starts.

QUEUE_CPU = "cpu"
QUEUE_GPU = "gpu"
QUEUE_REGRADE = "regrade"
QUEUES = (QUEUE_CPU, QUEUE_GPU, QUEUE_REGRADE)
TASK_NAME = "autograder.grade_job"

DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
BROKER_ENV = "AUTOGRADER_BROKER"
COURSE_ENV = "AUTOGRADER_COURSE"
DATA_ENV = "AUTOGRADER_DATA_DIR"
BACKEND_ENV = "AUTOGRADER_BACKEND"
LANES_ENV = "AUTOGRADER_WORKER_LANES"
LEASE_ENV = "AUTOGRADER_LEASE_S"
WORKER_NAME_ENV = "AUTOGRADER_WORKER_NAME"
SCRATCH_ENV = "AUTOGRADER_WORKER_SCRATCH"

SWEEPER_LOCK = "autograder:sweeper"
# A message a worker received this recently is about to claim a job: count it as waiting.
FRESH_DELIVERY_S = 5.0


def queue_for(lane: str, priority: int) -> str:
    """The Celery queue whose message announces a job of ``lane`` and ``priority``."""
    from autograder.service.models import PRIORITY_REGRADE

    if lane == "gpu":
        return QUEUE_GPU
    return QUEUE_REGRADE if priority >= PRIORITY_REGRADE else QUEUE_CPU


def make_celery(broker_url: str | None = None) -> Celery:
    """A Celery app for the engine, with its task. Results go to the database, never to Celery
    (no result backend)."""
    from celery import Celery

    app = Celery("autograder", broker=broker_url or os.environ.get(BROKER_ENV, DEFAULT_BROKER))
    app.conf.update(
        task_acks_late=True,               # a message is acknowledged after its task ran
        task_reject_on_worker_lost=True,   # a killed worker's message goes back to the queue
        worker_prefetch_multiplier=1,      # hold only the message being worked on
        task_ignore_result=True,
        task_serializer="json", accept_content=["json"],
        task_default_queue=QUEUE_CPU,
        # Redelivery of an unacknowledged message is only a spare token (the claim decides), so
        # a short visibility timeout costs nothing and brings a dead worker's message back soon.
        broker_transport_options={"visibility_timeout": 300},
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # ride out a Redis restart
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        worker_enable_remote_control=False,  # no pidbox queues: fewer keys, nothing to restore
    )
    app.task(name=TASK_NAME, acks_late=True, ignore_result=True)(grade_job)
    from celery.signals import worker_ready

    # Fires only in a worker process (never in the service or the supervisor's sweeper).
    worker_ready.connect(_on_worker_ready, weak=False)
    return app


_app: Celery | None = None


def __getattr__(name: str) -> Any:
    # `celery -A autograder.service.celery_engine:celery_app` finds the app here, made on use.
    global _app
    if name == "celery_app":
        if _app is None:
            _app = make_celery()
        return _app
    raise AttributeError(name)


# --- the worker side -------------------------------------------------------------------------

@dataclass
class WorkerContext:
    """What one worker process keeps across tasks: the database, its settings, its lanes and a
    warm grading engine. Built on the first task (after Celery started the process)."""

    name: str
    lanes: tuple[str, ...]
    settings: Settings
    db: ServiceDB
    engine: JobRunner
    graded: int = 0


_context: WorkerContext | None = None
_context_lock = threading.Lock()


def _settings_from_env():
    from autograder.service.settings import Settings
    from gradebook.store import DB_ENV  # the gradebook's own name for "the database URL"

    course = os.environ.get(COURSE_ENV)
    if not course:
        raise RuntimeError(f"{COURSE_ENV} is not set: start workers with `autograder worker`")
    data = os.environ.get(DATA_ENV)
    kwargs: dict = {"course_root": Path(course), "db_url": os.environ.get(DB_ENV) or None,
                    "data_dir": Path(data) if data else None,
                    "backend": os.environ.get(BACKEND_ENV, "process")}
    if os.environ.get(LEASE_ENV):
        kwargs["lease_s"] = float(os.environ[LEASE_ENV])
    return Settings(**kwargs)


def worker_context() -> WorkerContext:
    """This process's context (created once)."""
    global _context
    with _context_lock:
        if _context is None:
            from autograder.config import load_course
            from autograder.service.database import ServiceDB
            from autograder.service.workers import JobRunner

            settings = _settings_from_env()
            db = ServiceDB.open(settings.database_url(), load_course(settings.course_root))
            name = os.environ.get(WORKER_NAME_ENV) or f"{socket.gethostname()}:{os.getpid()}"
            lanes = tuple(os.environ.get(LANES_ENV, "cpu").split(","))
            # The same job runner as the embedded default's local workers: one way to grade.
            engine = JobRunner(settings, db, name)
            _context = WorkerContext(name=name, lanes=lanes, settings=settings, db=db,
                                     engine=engine)
        return _context


ALIVE_EVERY_S = 5.0


def _report_alive_forever(ctx: WorkerContext) -> None:
    """This worker's heartbeat row for the operations page, written from a thread of its own so
    a long job or a long warm-up never makes the worker look dead."""
    while True:
        ctx.engine.report_alive(ctx.lanes, every_s=0.0)
        time.sleep(ALIVE_EVERY_S)


def _on_worker_ready(**_kwargs: Any) -> None:
    """Celery's ``worker_ready`` in a worker process: build its context, start its heartbeat,
    and warm its sandbox and graders before it takes its first job (as the embedded engine's
    local workers do), so no student waits for a cold start. Messages that arrive meanwhile
    wait in Redis for a warm worker; the sweeper republishes any this one holds too long."""
    ctx = worker_context()
    threading.Thread(target=_report_alive_forever, args=(ctx,), name="alive",
                     daemon=True).start()
    started = time.monotonic()
    ctx.engine.warm_up()
    print(f"worker {ctx.name}: warm in {time.monotonic() - started:.1f} s "
          f"({', '.join(a for a, _ in ctx.engine.graders) or 'nothing to warm'})",
          file=sys.stderr, flush=True)


def grade_job(job_id: int) -> str:
    """Claim the next job of this worker's lanes (``job_id`` names the job the message was
    published for; the database's order decides which job runs) and grade it."""
    ctx = worker_context()
    from autograder.service import queue

    claimed = queue.claim(ctx.db, ctx.name, lanes=ctx.lanes, lease_s=ctx.settings.lease_s,
                          max_failures=ctx.settings.max_failures,
                          fairness_window_s=ctx.settings.fairness_window_s)
    if claimed is None:
        return f"message for job {job_id}: nothing left to claim"
    outcome = ctx.engine.grade(claimed)
    ctx.graded += 1
    return f"message for job {job_id}: job {claimed.job_id} {outcome}"


# --- the sweeper -----------------------------------------------------------------------------

def claimable_counts(db, now: dt.datetime | None = None) -> dict[str, list[int]]:
    """Per Celery queue, the ids of the jobs a claim could take now: queued, or running under a
    lapsed lease (its worker died; the next claim hands it out again)."""
    import sqlalchemy as sa

    from autograder.service.models import GradingJob, JobState

    now = now or dt.datetime.now(dt.timezone.utc)
    out: dict[str, list[int]] = {q: [] for q in QUEUES}
    with db.read() as s:
        rows = s.execute(sa.select(GradingJob.id, GradingJob.lane, GradingJob.priority)
                         .where(sa.or_(GradingJob.state == JobState.QUEUED,
                                       sa.and_(GradingJob.state == JobState.RUNNING,
                                               GradingJob.lease_expires_at < now)))
                         .order_by(GradingJob.id))
        for job_id, lane, priority in rows:
            out[queue_for(lane, priority)].append(job_id)
    return out


def waiting_messages(client, now: float | None = None) -> dict[str, int]:
    """Per queue, the messages that will still claim a job: those waiting in Redis, plus those
    a worker received in the last few seconds (about to claim). Messages held longer belong to
    jobs already claimed, or to dead workers (whose jobs come back as claimable)."""
    now = time.time() if now is None else now
    counts = {q: int(client.llen(q)) for q in QUEUES}
    tags = client.zrangebyscore("unacked_index", now - FRESH_DELIVERY_S, "+inf")
    if tags:
        for raw in client.hmget("unacked", tags):
            if raw is None:
                continue
            try:
                routing_key = json.loads(raw)[2]
            except (ValueError, IndexError, TypeError):
                continue
            if routing_key in counts:
                counts[routing_key] += 1
    return counts


class Sweeper:
    """Publishes a message for every claimable job that has none. Exactly one sweeper acts at a
    time (a Redis lock that lapses if its holder dies); the others stand by."""

    def __init__(self, db, broker_url: str, *, interval_s: float = 0.25,
                 app: Celery | None = None) -> None:
        import redis

        self.db = db
        self.app = app or make_celery(broker_url)
        self.client = redis.Redis.from_url(broker_url, socket_timeout=5,
                                           socket_connect_timeout=2)
        self.interval_s = interval_s
        self.lock_ttl_ms = int(max(2.0, interval_s * 12) * 1000)
        self.ident = uuid.uuid4().hex
        self.published = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _hold_lock(self) -> bool:
        # Renew if ours, else take it if free. (Two commands: a renewal racing an expiry can at
        # worst let two sweepers act for one tick, which only publishes spare tokens.)
        if self.client.get(SWEEPER_LOCK) == self.ident.encode():
            self.client.pexpire(SWEEPER_LOCK, self.lock_ttl_ms)
            return True
        return bool(self.client.set(SWEEPER_LOCK, self.ident, nx=True, px=self.lock_ttl_ms))

    def tick(self) -> int:
        """One pass; returns how many messages it published."""
        if not self._hold_lock():
            return 0
        wanted = claimable_counts(self.db)
        have = waiting_messages(self.client)
        sent = 0
        with self.app.producer_or_acquire() as producer:
            for q, job_ids in wanted.items():
                missing = len(job_ids) - have.get(q, 0)
                # Announce the newest jobs: the older ones' messages are the likelier to exist.
                for job_id in job_ids[len(job_ids) - missing:] if missing > 0 else []:
                    self.app.send_task(TASK_NAME, args=[job_id], queue=q, routing_key=q,
                                       producer=producer)
                    sent += 1
        self.published += sent
        return sent

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception as e:  # Redis restarting, the database busy: try again shortly
                print(f"sweeper: {type(e).__name__}: {e}; retrying", file=sys.stderr, flush=True)
                self._stop.wait(1.0)
            self._stop.wait(self.interval_s)

    def start(self) -> Sweeper:
        self._thread = threading.Thread(target=self.run, name="celery-sweeper", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            if self.client.get(SWEEPER_LOCK) == self.ident.encode():
                self.client.delete(SWEEPER_LOCK)
        except Exception:
            pass


# --- the supervisor: `autograder worker` -----------------------------------------------------

@dataclass
class Supervisor:
    """Starts and watches one machine's worker processes and its sweeper."""

    broker_url: str
    queues: Sequence[str]
    concurrency: int
    env: dict[str, str]
    gpus: Sequence[str] = ()
    machine: str = field(default_factory=socket.gethostname)
    procs: list[subprocess.Popen] = field(default_factory=list)

    def _spawn(self, name: str, queues: str, lanes: str, extra: dict[str, str]) -> None:
        env = {**os.environ, **self.env, LANES_ENV: lanes, BROKER_ENV: self.broker_url,
               WORKER_NAME_ENV: f"{self.machine}:{name}:{os.getpid()}", **extra}
        # -I: no current directory or PYTHONPATH on sys.path (nothing imported by accident).
        cmd = [sys.executable, "-I", "-m", "celery", "-A", "autograder.service.celery_engine:celery_app",
               "worker", "--pool", "solo", "--concurrency", "1", "--prefetch-multiplier", "1",
               "-Q", queues, "-n", f"{name}.{os.getpid()}@{self.machine}",
               "--loglevel", "WARNING", "--without-gossip", "--without-mingle",
               "--without-heartbeat"]
        scratch = Path(self.env.get(SCRATCH_ENV, ".")) / name
        scratch.mkdir(parents=True, exist_ok=True)
        self.procs.append(subprocess.Popen(cmd, env=env, cwd=scratch, stdin=subprocess.DEVNULL))

    def start(self) -> None:
        if QUEUE_CPU in self.queues:
            for i in range(self.concurrency):
                self._spawn(f"cpu{i + 1}", f"{QUEUE_CPU},{QUEUE_REGRADE}", "cpu", {})
        if QUEUE_GPU in self.queues:
            for i, device in enumerate(self.gpus):
                # One process per GPU, and it sees only its device: one job per GPU.
                self._spawn(f"gpu{i + 1}", QUEUE_GPU, "gpu",
                            {"CUDA_VISIBLE_DEVICES": device, "AUTOGRADER_GPUS": device})

    def stop(self, sig: int = signal.SIGTERM) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(sig)  # SIGTERM: Celery's warm shutdown finishes the current job

    def wait(self) -> int:
        codes = [p.wait() for p in self.procs]
        return max(codes, default=0)


@click.command("worker")
@click.option("--broker", "broker_url", default=None, metavar="URL",
              help=f"The Redis broker (default: ${BROKER_ENV}, else {DEFAULT_BROKER}).")
@click.option("--queues", default="cpu", show_default=True,
              help="Comma-separated: cpu, gpu (the regrade lane comes with cpu). gpu needs a GPU "
                   "on this machine (nvidia-smi or AUTOGRADER_GPUS).")
@click.option("--concurrency", "-c", type=click.IntRange(min=1), default=None,
              help="CPU worker processes (default: one per two CPUs).")
@click.option("--course", "course_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="This machine's copy of the course repository "
                                 "(default: the one containing the current directory).")
@click.option("--db", "db_url", default=None, metavar="URL",
              help="The service's database (the queue of record), e.g. postgresql+psycopg://...")
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The service's data folder holding the uploads (a shared mount; default: "
                   "<course>/data).")
@click.option("--backend", type=click.Choice(["process", "docker"]), default="process",
              show_default=True, help="The sandbox the jobs run in.")
@click.option("--name", "machine", default=None,
              help="This machine's name in job leases and logs (default: the host name).")
def worker_command(broker_url: str | None, queues: str, concurrency: int | None,
                   course_dir: Path | None, db_url: str | None, data_dir: Path | None,
                   backend: str, machine: str | None) -> None:
    """Grade jobs of a running service on this machine, through Celery on Redis.

    The database stays the queue of record: workers claim jobs there with a lease, so a Redis
    restart or a killed worker loses nothing. Stop with Ctrl-C (finishes the current jobs)."""
    from autograder.course import Course, CourseNotFound
    from autograder.sandbox.gpu import detect_gpus
    from autograder.service.database import ServiceDB
    from autograder.service.settings import Settings, default_workers
    from gradebook.store import DB_ENV

    broker_url = broker_url or os.environ.get(BROKER_ENV, DEFAULT_BROKER)
    wanted = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = [q for q in wanted if q not in (QUEUE_CPU, QUEUE_GPU)]
    if unknown or not wanted:
        raise click.UsageError(f"--queues takes cpu and/or gpu (comma-separated), not {queues!r}")
    gpus = detect_gpus() if QUEUE_GPU in wanted else []
    if QUEUE_GPU in wanted and not gpus:
        raise click.UsageError("--queues gpu: this machine has no GPU (no nvidia-smi, and "
                               "AUTOGRADER_GPUS is not set); drop gpu from --queues")
    try:
        course = Course.find(course_dir)
    except CourseNotFound as e:
        raise click.UsageError(str(e)) from None
    try:
        import redis

        redis.Redis.from_url(broker_url, socket_connect_timeout=3).ping()
    except Exception as e:
        raise click.ClickException(f"cannot reach the broker at {broker_url} ({e}); start Redis "
                                   f"(bash scripts/services.sh) or pass --broker") from None
    settings = Settings(course_root=course.root, db_url=db_url, data_dir=data_dir,
                        backend=backend)
    env = {COURSE_ENV: str(course.root), DB_ENV: settings.database_url(), BACKEND_ENV: backend}
    if data_dir is not None:
        env[DATA_ENV] = str(data_dir.resolve())
    # Each worker process runs in its own scratch folder on this machine.
    env[SCRATCH_ENV] = str((Path.cwd() / ".autograder-worker").resolve())
    if os.environ.get(LEASE_ENV):
        env[LEASE_ENV] = os.environ[LEASE_ENV]
    db = ServiceDB.open(settings.database_url(), course.config)
    sup = Supervisor(broker_url, wanted, concurrency or default_workers(), env, gpus,
                     machine=(machine or socket.gethostname()).replace(":", "-"))
    sweeper = Sweeper(db, broker_url)

    def on_signal(signum, _frame):
        sweeper._stop.set()
        sup.stop(signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sup.start()
    sweeper.start()
    n_cpu = sup.concurrency if QUEUE_CPU in wanted else 0
    click.echo(f"worker: {n_cpu} cpu process(es), {len(gpus)} gpu process(es) on {broker_url}; "
               f"queue of record {settings.database_url()}", err=True)
    try:
        code = sup.wait()
    finally:
        sweeper.stop()
        db.close()
    sys.exit(code if code and code > 0 else 0)
