"""The local worker pool: a batch split over several trusted grading processes.

Each worker is a fresh interpreter (trusted: it holds tests and references like the parent)
with its own pytest session, its own fork server and its own uid slots. It is started isolated
(``python -I``: no current directory, no ``PYTHONPATH``, no user site on ``sys.path``) in a
private empty directory, with ``sys.path`` set to the parent's own import path minus anything
that is not a real directory of the installation, so no file of a TA's working directory or of an
upload is ever imported on the trusted side. Results come back as JSON lines on a dedicated pipe
(not stdout, which test code may print to).

Failure stays local: a worker that dies loses only the submissions it had not finished; they are
graded again in a new worker, one at a time, and a submission whose worker dies twice gets a
grader-error result (never charged to the student) instead of taking the batch down.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from autograder.harness.spec import GradingSpec, PreparedSubmission
from autograder.results import GradingResult, Outcome, ResourceUse, SubmissionIdentity, TestResult
from autograder.sandbox.base import Limits

#: How often a submission is tried in a fresh worker before it is given up as a grader error.
ATTEMPTS = 2


def _spec_to_json(spec: GradingSpec) -> dict:
    return {"assignment": spec.assignment, "modules": list(spec.modules),
            "test_files": [str(p) for p in spec.test_files],
            "hidden_files": [str(p) for p in spec.hidden_files],
            "reference_files": {m: str(p) for m, p in spec.reference_files.items()},
            "limits": asdict(spec.limits), "test_time_limit_s": spec.test_time_limit_s,
            "submission_time_limit_s": spec.submission_time_limit_s,
            "rootdir": str(spec.rootdir), "test_set": spec.test_set}


def _spec_from_json(d: dict) -> GradingSpec:
    return GradingSpec(
        assignment=d["assignment"], modules=tuple(d["modules"]),
        test_files=[Path(p) for p in d["test_files"]],
        hidden_files=frozenset(Path(p) for p in d["hidden_files"]),
        reference_files={m: Path(p) for m, p in d["reference_files"].items()},
        limits=Limits(**d["limits"]), test_time_limit_s=d["test_time_limit_s"],
        submission_time_limit_s=d["submission_time_limit_s"], rootdir=Path(d["rootdir"]),
        test_set="public" if d.get("test_set") == "public" else "full")


def _submission_to_json(s: PreparedSubmission) -> dict:
    return {"id": s.id, "files": str(s.files), "content_hash": s.content_hash, "notes": s.notes,
            "identity": s.identity.to_json(), "run_id": s.run_id}


def _submission_from_json(d: dict) -> PreparedSubmission:
    return PreparedSubmission(d["id"], Path(d["files"]), d["content_hash"], list(d["notes"]),
                              SubmissionIdentity.from_json(d.get("identity")), d.get("run_id", ""))


def trusted_sys_path() -> list[str]:
    """The import path a trusted child process gets: this interpreter's, without the empty
    entry or the current directory (which ``python -m`` and ``python -c`` would add) and without
    anything that is not an existing directory or zip of the installation."""
    cwd = os.getcwd()
    return [p for p in sys.path
            if p and os.path.isabs(p) and p != cwd and (os.path.isdir(p) or os.path.isfile(p))]


def trusted_python(module: str, *args: str) -> list[str]:
    """The command line that runs ``module.main()`` in an isolated interpreter whose sys.path is
    :func:`trusted_sys_path`: for every trusted process the platform starts."""
    bootstrap = ("import sys, json; sys.path[:] = json.loads(sys.argv.pop(1)); "
                 f"import {module} as m; m.main()")
    return [sys.executable, "-I", "-c", bootstrap, json.dumps(trusted_sys_path()), *args]


def _lost(spec: GradingSpec, sub: PreparedSubmission, why: str, backend: str) -> GradingResult:
    """The result of a submission whose grading worker died twice: a grader error, not counted
    against the student, with the reason for staff."""
    return GradingResult(
        assignment=spec.assignment, submission=sub.id, backend=backend, resources=ResourceUse(),
        tests=(TestResult(name="grading", score=0.0, max_score=0.0,
                          outcome=Outcome.GRADER_ERROR,
                          output="This submission could not be graded because of a fault of the "
                                 "grading platform (not of your code); it does not count against "
                                 f"you and staff have been told. {why}"),),
        content_hash=sub.content_hash, identity=sub.identity, run_id=sub.run_id,
        test_set=spec.test_set)


def _run_batch(spec: GradingSpec, chunks: list[list[PreparedSubmission]], backend: str,
               tmp: Path, on_result: Callable[[GradingResult], None] | None,
               results: dict[str, GradingResult]) -> list[tuple[PreparedSubmission, str]]:
    """Run one worker per chunk; return the submissions left ungraded, with why."""
    selector = selectors.DefaultSelector()
    procs = []
    # The workers of one round run together (distinct uid slots); rounds run one after another.
    round_dir = Path(tempfile.mkdtemp(dir=tmp))
    for slot, chunk in enumerate(chunks):
        job = round_dir / f"job{slot}.json"
        job.write_text(json.dumps({
            "spec": _spec_to_json(spec), "backend": backend, "slot": slot,
            "submissions": [_submission_to_json(s) for s in chunk]}))
        workdir = round_dir / f"cwd{slot}"
        workdir.mkdir()
        read_fd, write_fd = os.pipe()
        proc = subprocess.Popen(
            trusted_python("autograder.harness.worker", str(job), str(write_fd)),
            pass_fds=[write_fd], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, cwd=workdir)
        os.close(write_fd)
        stream = os.fdopen(read_fd, "rb")
        selector.register(stream, selectors.EVENT_READ, proc)
        procs.append((proc, chunk))
    open_streams = len(procs)
    while open_streams:
        for key, _ in selector.select():
            line = key.fileobj.readline()  # type: ignore[union-attr]
            if not line:
                selector.unregister(key.fileobj)
                key.fileobj.close()  # type: ignore[union-attr]
                open_streams -= 1
                continue
            try:
                result = GradingResult.from_json(json.loads(line))
            except (ValueError, KeyError, TypeError):
                continue  # a line cut by the worker's death: that submission is retried
            results[result.submission] = result
            if on_result is not None:
                on_result(result)
    left: list[tuple[PreparedSubmission, str]] = []
    for proc, chunk in procs:
        _, stderr = proc.communicate()
        why = (f"A grading worker ended (exit code {proc.returncode}): "
               f"{stderr.decode(errors='replace').strip()[-1500:]}")
        left.extend((s, why) for s in chunk if s.id not in results)
    return left


def run_workers(spec: GradingSpec, submissions: Sequence[PreparedSubmission], backend: str,
                jobs: int, on_result: Callable[[GradingResult], None] | None = None
                ) -> dict[str, GradingResult]:
    """Grade ``submissions`` in ``jobs`` worker processes; results by submission id. A worker
    that dies costs only the submissions it had not finished, which are graded again."""
    chunks = [c for c in (list(submissions[i::jobs]) for i in range(jobs)) if c]
    results: dict[str, GradingResult] = {}
    with tempfile.TemporaryDirectory(prefix="autograder-workers-") as tmp_name:
        tmp = Path(tmp_name)
        left = _run_batch(spec, chunks, backend, tmp, on_result, results)
        for _ in range(1, ATTEMPTS):
            if not left:
                break
            # One submission per worker: a submission that kills its worker takes only itself.
            retry = [[s] for s, _ in left]
            left = _run_batch(spec, retry, backend, tmp, on_result, results)
        for sub, why in left:
            results[sub.id] = _lost(spec, sub, why, backend)
            if on_result is not None:
                on_result(results[sub.id])
    return results


def main() -> None:
    from autograder.harness.session import make_sandbox, run_session

    job = json.loads(Path(sys.argv[1]).read_text())
    out = os.fdopen(int(sys.argv[2]), "w", buffering=1)
    spec = _spec_from_json(job["spec"])
    subs = [_submission_from_json(s) for s in job["submissions"]]

    def emit(result: GradingResult) -> None:
        out.write(json.dumps(result.to_json()) + "\n")

    with make_sandbox(job["backend"]) as sandbox:
        run_session(spec, subs, sandbox, emit, slot=int(job["slot"]))
    out.close()


if __name__ == "__main__":
    main()
