"""How long exporting a 1,000-student x 15-assessment gradebook takes, on SQLite and on
PostgreSQL (when AUTOGRADER_TEST_POSTGRES_URL is set), side by side.

    .venv/bin/python benchmarks/gradebook_export.py [--students 1000] [--repeat 3]

The gradebook holds 12 autograded assessments (10 homeworks, 2 quizzes; 1-3 graded submissions
per student each, a results.json of 6 tests per run, some late) and 3 imported scores (midterm,
final, project), plus a few extensions. Timed, per database (median of --repeat runs):
``grades`` (load the records and apply the policy to every student) and each export format
including that. Filling the database is reported but not part of the export.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa  # noqa: E402

from autograder.config import CourseConfig  # noqa: E402
from gradebook import models as m  # noqa: E402
from gradebook.csvfiles import RosterRow, ScoreRow  # noqa: E402
from gradebook.export import write_export  # noqa: E402
from gradebook.store import Gradebook  # noqa: E402

ZONE = ZoneInfo("America/New_York")
UTC = dt.timezone.utc
START = dt.datetime(2026, 9, 4, 23, 59, tzinfo=ZONE)


def course_config() -> CourseConfig:
    return CourseConfig.model_validate({
        "name": "bench", "timezone": "America/New_York",
        "slack": {"days": 8, "grace_minutes": 15, "allocation": "best"},
        "assessments": {"midterm": {"kind": "exam", "due": dt.datetime(2026, 10, 20, 12), "points": 100},
                        "final": {"kind": "exam", "due": dt.datetime(2026, 12, 15, 12), "points": 100},
                        "project": {"kind": "project", "due": dt.datetime(2026, 12, 10, 23, 59), "points": 50}},
    })


def fill(gb: Gradebook, students: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    course = Path(tempfile.mkdtemp())
    assignments = [(f"hw{i + 1:02d}", "homework", START + dt.timedelta(days=7 * i)) for i in range(10)]
    assignments += [(f"quiz{i + 1}", "quiz", START + dt.timedelta(days=20 + 35 * i)) for i in range(2)]
    for name, kind, due in assignments:
        (course / "assignments" / name).mkdir(parents=True)
        (course / "assignments" / name / "assignment.toml").write_text(
            f'name = "{name}"\nkind = "{kind}"\ndue = {due.replace(tzinfo=None).isoformat()}\n'
            f'points = 30\nmodules = ["{name}"]\n')
    gb.sync_assignments(course)
    gb.import_roster([RosterRow(i + 2, f"s{i:05d}", f"Student {i}", f"s{i:05d}@uni.edu",
                                f"S{i % 8}") for i in range(students)])
    with gb._tx() as s:
        sids = dict(s.execute(sa.select(m.Student.student_id, m.Student.id)).all())
        aids = {a.name: (a.id, a.due) for a in s.scalars(sa.select(m.Assignment))}
        subs, runs = [], []
        next_id = (s.scalar(sa.select(sa.func.max(m.Submission.id))) or 0) + 1
        for sid, spk in sids.items():
            for name, (apk, due) in aids.items():
                if name in ("midterm", "final", "project"):
                    continue
                for attempt in range(1, rng.choice((1, 1, 2, 3)) + 1):
                    late_h = rng.choice([-30, -5, -1, -1, 2, 20, 50]) if "hw" in name else -2
                    at = due + dt.timedelta(hours=late_h + attempt)
                    tests = [{"name": f"test_{k}", "score": 5.0 if rng.random() < 0.8 - k * 0.08 else 0.0,
                              "max_score": 5.0, "status": "passed", "output": "", "visibility": "visible",
                              "outcome": "passed", "duration_s": 0.01, "suite": "hidden"} for k in range(6)]
                    score = sum(t["score"] for t in tests)
                    subs.append(dict(id=next_id, student_pk=spk, assignment_pk=apk, attempt=attempt,
                                     content_hash=uuid.uuid4().hex, submitted_at=at, chosen=False,
                                     recorded_at=m.utcnow()))
                    runs.append(dict(run_id=f"run-{next_id}", submission_id=next_id, backend="process",
                                     status="graded", score=score, max_score=30.0,
                                     result={"score": score, "max_score": 30.0, "tests": tests},
                                     execution_time_s=1.0, graded_at="", recorded_at=m.utcnow()))
                    next_id += 1
        s.execute(sa.insert(m.Submission), subs)
        s.execute(sa.insert(m.GradingRun), runs)
    gb.import_scores([ScoreRow(0, sid, name, rng.uniform(40, pts), pts, None)
                      for sid in sids for name, pts in (("midterm", 100), ("final", 100), ("project", 50))],
                     "bench")
    for sid in list(sids)[::50]:
        gb.grant_extension(sid, "hw03", days=2)


def measure(url: str, students: int, repeat: int, out_dir: Path) -> dict[str, float]:
    gb = Gradebook.open(url, course_config())
    t0 = time.perf_counter()
    fill(gb, students)
    times = {"fill (not part of the export)": time.perf_counter() - t0}
    as_of = dt.datetime(2026, 12, 31, tzinfo=UTC)
    samples: dict[str, list[float]] = {}
    for _ in range(repeat):
        t0 = time.perf_counter()
        grades = gb.grades(as_of)
        samples.setdefault("grades (load + policy)", []).append(time.perf_counter() - t0)
        assert len(grades) == students
        for fmt in ("csv", "canvas", "xlsx"):
            t0 = time.perf_counter()
            g = gb.grades(as_of)
            people = {st.student_id: {"email": st.email, "section": st.section} for st in gb.students()}
            write_export(fmt, out_dir / f"export.{fmt}", g, gb.specs(), gb.config, people)
            samples.setdefault(f"export --format {fmt}", []).append(time.perf_counter() - t0)
    gb.close()
    times.update({k: statistics.median(v) for k, v in samples.items()})
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        results["sqlite"] = measure(f"sqlite:///{tmp_path / 'bench.sqlite'}", args.students,
                                    args.repeat, tmp_path)
        pg = os.environ.get("AUTOGRADER_TEST_POSTGRES_URL")
        if pg:
            schema = f"gbbench_{uuid.uuid4().hex[:10]}"
            engine = sa.create_engine(pg)
            with engine.begin() as conn:
                conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
            try:
                sep = "&" if "?" in pg else "?"
                results["postgresql"] = measure(f"{pg}{sep}options=-csearch_path%3D{schema}",
                                                args.students, args.repeat, tmp_path)
            finally:
                with engine.begin() as conn:
                    conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
                engine.dispose()
    dbs = list(results)
    print(f"gradebook export: {args.students} students x 15 assessments "
          f"(median of {args.repeat}; seconds)")
    print(f"{'':34}" + "".join(f"{d:>12}" for d in dbs))
    for key in results["sqlite"]:
        print(f"{key:34}" + "".join(f"{results[d][key]:12.3f}" for d in dbs))
    if "postgresql" not in results:
        print("postgresql: skipped (set AUTOGRADER_TEST_POSTGRES_URL; `bash scripts/services.sh` "
              "starts a local server)")


if __name__ == "__main__":
    main()
