"""A deadline surge against a running grading service, over HTTP.

S students each submit N times (a mix of correct and buggy softmax work, the last attempt
correct) at random moments within T seconds, through ``POST /api/v1/assignments/softmax/
submissions`` with their API tokens. It runs on the embedded default (``autograder serve`` with
local workers) and on Celery (``autograder serve --workers 0``, a redis-server of its own and two
``autograder worker`` machines in separate folders), and prints per engine:

* acknowledged (202), graded, superseded (replaced while queued by the same student's newer
  attempt: by design), lost (acknowledged, never ended) and duplicated (a submission with more
  than one recorded result);
* p50, p95 and max seconds from the 202 to graded (the job's ``finished_at`` in the database,
  read directly so that measuring does not load the service);
* the service's CPU seconds per graded submission (the whole process tree: web process,
  workers, sandboxes) next to the batch CLI's (``autograder grade``) for the same files, in the
  same run; and the load average.

    python benchmarks/surge.py            # 300 students x 5 submissions in 10 minutes
    python benchmarks/surge.py --quick    # scaled down: under 2 minutes for both engines
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_cpu_s(roots: list[int]) -> float:
    """CPU seconds of the processes under ``roots`` (them included), with their reaped children's
    time (``cutime``/``cstime``): what the service has spent so far."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        times[pid] = sum(int(x) for x in fields[11:15]) / CLK_TCK
    total, todo, seen = 0.0, list(roots), set()
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += times.get(pid, 0.0)
        todo.extend(children.get(pid, []))
    return total


@dataclass
class Plan:
    students: int
    per_student: int
    duration_s: float
    seed: int = 7
    items: list[tuple[float, str, str]] = field(default_factory=list)  # (at, student, sample)

    def build(self) -> Plan:
        rng = random.Random(self.seed)
        for i in range(self.students):
            sid = f"st{i:04d}"
            moments = sorted(rng.uniform(0, self.duration_s) for _ in range(self.per_student))
            for n, at in enumerate(moments):
                last = n == self.per_student - 1
                sample = "correct.py" if last or rng.random() < 0.4 else "buggy.py"
                self.items.append((at, sid, sample))
        self.items.sort()
        return self


@dataclass
class Service:
    """A running service (and, for Celery, its broker and worker machines)."""

    url: str
    procs: list[subprocess.Popen]
    cpu_roots: list[int]

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for p in reversed(self.procs):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def make_course(work: Path, students: int):
    from autograder.authoring.release import build_release
    from autograder.course import Course
    from autograder.demo import build_demo_course
    from autograder.service.app import open_database
    from autograder.service.auth import issue_api_token
    from autograder.service.settings import Settings
    from gradebook.csvfiles import RosterRow

    root = build_demo_course(work / "course")
    build_release(Course(root).assignment("softmax"))
    settings = Settings(course_root=root)
    db = open_database(settings)
    ids = [f"st{i:04d}" for i in range(students)]
    db.gb.import_roster([RosterRow(i + 2, sid, sid, f"{sid}@example.edu")
                         for i, sid in enumerate(ids)])
    tokens = {sid: issue_api_token(db, sid) for sid in ids}
    return root, settings, db, tokens


def wait_healthy(url: str, procs: list[subprocess.Popen], log: Path, timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if any(p.poll() is not None for p in procs):
            break
        time.sleep(0.3)
    raise SystemExit(f"the service did not start; see {log}:\n"
                     + log.read_text(errors="replace")[-2000:])


def start_embedded(root: Path, work: Path, workers: int) -> Service:
    port = free_port()
    log = work / "serve.log"
    proc = subprocess.Popen([sys.executable, "-m", "autograder.cli", "serve", "--course",
                             str(root), "--port", str(port), "--workers", str(workers)],
                            cwd=work, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, [proc], log)
    return Service(url, [proc], [proc.pid])


def start_celery(root: Path, settings, work: Path, machines: int) -> Service:
    if not shutil.which("redis-server"):
        raise SystemExit("redis-server is not installed: run `bash scripts/services.sh`")
    rport = free_port()
    redis = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(rport),
                              "--save", "", "--appendonly", "no", "--dir", str(work)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    broker = f"redis://127.0.0.1:{rport}/0"
    port = free_port()
    log = work / "serve.log"
    serve = subprocess.Popen([sys.executable, "-m", "autograder.cli", "serve", "--course",
                              str(root), "--port", str(port), "--workers", "0"],
                             cwd=work, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                             start_new_session=True)
    procs = [redis, serve]
    for m in range(machines):
        folder = work / f"machine-{m + 1}"
        shutil.copytree(root, folder / "course",
                        ignore=shutil.ignore_patterns("gradebook.sqlite*", "data"))
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "autograder.cli", "worker", "--broker", broker,
             "--concurrency", "1", "--name", f"machine-{m + 1}", "--course",
             str(folder / "course"), "--db", settings.database_url(),
             "--data", str(settings.uploads_dir.parent)],
            cwd=folder, stdout=open(folder / "worker.log", "wb"), stderr=subprocess.STDOUT,
            start_new_session=True))
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, procs, log)
    # The broker's CPU is part of the engine's cost.
    return Service(url, procs, [p.pid for p in procs])


def warm_up(url: str, token: str, sample: bytes, db, timeout: float = 180) -> None:
    """One submission graded before the clock starts: workers start their sandboxes lazily."""
    import httpx

    r = httpx.post(f"{url}/api/v1/assignments/softmax/submissions",
                   headers={"Authorization": f"Bearer {token}"},
                   files=[("files", ("softmax.py", sample))], timeout=60)
    r.raise_for_status()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = httpx.get(f"{url}/api/v1/submissions/{r.json()['id']}",
                         headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
        if body["state"] not in ("queued", "running"):
            return
        time.sleep(0.5)
    raise SystemExit("the warm-up submission was not graded in time")


def run_surge(engine: str, args: argparse.Namespace, plan: Plan, samples: dict[str, bytes],
              work: Path) -> dict:
    import httpx
    import sqlalchemy as sa

    from autograder.service.models import TERMINAL_STATES, GradingJob, JobState
    from gradebook import models as gm

    work.mkdir(parents=True)
    root, settings, db, tokens = make_course(work, plan.students + 1)
    warm_token = tokens.pop(f"st{plan.students:04d}")
    service = (start_embedded(root, work, args.workers) if engine == "embedded"
               else start_celery(root, settings, work, machines=2))
    try:
        warm_up(service.url, warm_token, samples["correct.py"], db)
        cpu0 = tree_cpu_s(service.cpu_roots)
        acks: dict[int, float] = {}  # submission id -> wall time of the 202
        refused: list[str] = []
        lock = threading.Lock()
        start = time.time()
        client = httpx.Client(base_url=service.url, timeout=60,
                              limits=httpx.Limits(max_connections=32))

        def send(at: float, sid: str, sample: str) -> None:
            delay = start + at - time.time()
            if delay > 0:
                time.sleep(delay)
            try:
                r = client.post("/api/v1/assignments/softmax/submissions",
                                headers={"Authorization": f"Bearer {tokens[sid]}"},
                                files=[("files", ("softmax.py", samples[sample]))])
            except httpx.HTTPError as e:
                with lock:
                    refused.append(f"{type(e).__name__}")
                return
            now = time.time()
            with lock:
                if r.status_code == 202:
                    acks[r.json()["id"]] = now
                else:
                    refused.append(f"{r.status_code} {r.text[:100]}")

        threads: list[threading.Thread] = []
        sem = threading.Semaphore(24)

        def guarded(item: tuple[float, str, str]) -> None:
            with sem:
                send(*item)

        for item in plan.items:
            # Start each sender just before its moment (keeps the thread count small).
            while start + item[0] - time.time() > 1.0:
                time.sleep(0.2)
            t = threading.Thread(target=guarded, args=(item,), daemon=True)
            t.start()
            threads.append(t)
        for t in threads:
            t.join()
        sent_s = time.time() - start
        ids = list(acks)
        deadline = time.time() + args.drain_s
        while time.time() < deadline:
            with db.read() as s:
                open_jobs = s.scalar(sa.select(sa.func.count()).select_from(GradingJob).where(
                    GradingJob.submission_id.in_(ids),
                    GradingJob.state.not_in([str(x) for x in TERMINAL_STATES])))
            if not open_jobs:
                break
            time.sleep(0.5)
        cpu1 = tree_cpu_s(service.cpu_roots)
        load = os.getloadavg()
        with db.read() as s:
            jobs = list(s.execute(sa.select(GradingJob.submission_id, GradingJob.state,
                                            GradingJob.finished_at)
                                  .where(GradingJob.submission_id.in_(ids))))
            runs = dict(s.execute(sa.select(gm.GradingRun.submission_id, sa.func.count())
                                  .where(gm.GradingRun.submission_id.in_(ids))
                                  .group_by(gm.GradingRun.submission_id)).all())
        client.close()
    finally:
        service.stop()
    graded = [(sub, fin) for sub, state, fin in jobs if state == JobState.GRADED]
    ended = {sub for sub, state, _ in jobs if state in TERMINAL_STATES}
    superseded = sum(1 for _, state, _ in jobs if state == JobState.SUPERSEDED)
    latencies = sorted(fin.replace(tzinfo=dt.timezone.utc).timestamp() - acks[sub]
                       if fin.tzinfo is None else fin.timestamp() - acks[sub]
                       for sub, fin in graded)
    db.close()
    return {
        "engine": engine, "sent": len(plan.items), "sent_s": sent_s, "acknowledged": len(acks),
        "refused": refused, "graded": len(graded), "superseded": superseded,
        "lost": len(set(acks) - ended), "duplicated": sum(1 for n in runs.values() if n > 1),
        "p50": statistics.median(latencies) if latencies else float("nan"),
        "p95": latencies[int(0.95 * (len(latencies) - 1))] if latencies else float("nan"),
        "max": latencies[-1] if latencies else float("nan"),
        "cpu_s": cpu1 - cpu0, "load": load, "graded_ids": [sub for sub, _ in graded],
        "plan_samples": None, "root": root,
    }


def batch_cpu_s(root: Path, samples: dict[str, bytes], plan: Plan, count: int,
                work: Path) -> tuple[float, int]:
    """CPU seconds of ``autograder grade`` (its whole process tree) for ``count`` submissions
    drawn from the same plan (same mix of correct and buggy files)."""
    uploads = work / "batch"
    uploads.mkdir(parents=True)
    for n, (_, sid, sample) in enumerate(plan.items[:count]):
        folder = uploads / f"{sid}-{n}"
        folder.mkdir()
        (folder / "softmax.py").write_bytes(samples[sample])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-m", "autograder.cli", "grade", "softmax",
                    *sorted(str(p) for p in uploads.iterdir()), "--course", str(root),
                    "--output", str(work / "batch-out"), "--format", "json"],
                   cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=300)
    parser.add_argument("--per-student", type=int, default=5)
    parser.add_argument("--duration", type=float, default=600.0,
                        help="seconds over which the submissions arrive")
    parser.add_argument("--quick", action="store_true",
                        help="30 students x 2 submissions in 24 s per engine (2.5 per second)")
    parser.add_argument("--engines", default="embedded,celery")
    parser.add_argument("--workers", type=int, default=None,
                        help="local workers of the embedded engine (default: one per two CPUs)")
    parser.add_argument("--drain-s", type=float, default=None,
                        help="how long to wait for the queue to drain after the last submission")
    args = parser.parse_args()
    if args.quick:
        args.students, args.per_student, args.duration = 30, 2, 24.0
    if args.workers is None:
        args.workers = max(1, (os.cpu_count() or 2) // 2)
    if args.drain_s is None:
        args.drain_s = max(60.0, args.duration)
    plan = Plan(args.students, args.per_student, args.duration).build()
    rate = len(plan.items) / args.duration
    print(f"surge: {args.students} students x {args.per_student} submissions in "
          f"{args.duration:.0f} s ({rate:.2f}/s); {os.cpu_count()} CPUs", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="autograder-surge-") as tmp:
        from autograder.demo import build_demo_course

        src = build_demo_course(Path(tmp) / "samples-course")
        sample_dir = src / "solutions" / "softmax" / "samples"
        samples = {n: (sample_dir / n).read_bytes() for n in ("correct.py", "buggy.py")}
        for engine in [e.strip() for e in args.engines.split(",") if e.strip()]:
            t0 = time.time()
            r = run_surge(engine, args, plan, samples, Path(tmp) / engine)
            batch_cpu, n = batch_cpu_s(r["root"], samples, plan, min(len(plan.items), 40),
                                       Path(tmp) / engine)
            r["batch_cpu_per_sub"] = batch_cpu / n
            r["cpu_per_sub"] = r["cpu_s"] / max(1, r["graded"])
            r["wall_s"] = time.time() - t0
            results.append(r)
            print(f"\n[{engine}] acknowledged {r['acknowledged']}/{r['sent']} "
                  f"(refused {len(r['refused'])}{': ' + r['refused'][0] if r['refused'] else ''}), "
                  f"graded {r['graded']}, superseded {r['superseded']}, lost {r['lost']}, "
                  f"duplicated {r['duplicated']}", flush=True)
            print(f"[{engine}] 202 -> graded: p50 {r['p50']:.2f} s, p95 {r['p95']:.2f} s, "
                  f"max {r['max']:.2f} s", flush=True)
            print(f"[{engine}] CPU per graded submission: service {r['cpu_per_sub']:.2f} s, "
                  f"batch CLI {r['batch_cpu_per_sub']:.2f} s "
                  f"({r['cpu_per_sub'] / r['batch_cpu_per_sub']:.2f}x); load average "
                  f"{r['load'][0]:.2f} {r['load'][1]:.2f} {r['load'][2]:.2f}; "
                  f"{r['wall_s']:.0f} s in all", flush=True)


if __name__ == "__main__":
    main()
