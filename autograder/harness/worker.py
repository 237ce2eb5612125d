"""The local worker pool: a batch split over several trusted grading processes.

Each worker is a fresh ``python -m autograder.harness.worker JOB`` (trusted: it holds tests
and references like the parent) with its own pytest session, its own fork server and its own
uid slots. Results come back as JSON lines on a dedicated pipe (not stdout, which test code may
print to). A worker that dies loses only its share, which is reported as a grader error.
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

from autograder.harness.plugin import GradingSpec, HarnessError, PreparedSubmission
from autograder.sandbox.base import Limits
from autograder.results import GradingResult


def _spec_to_json(spec: GradingSpec) -> dict:
    return {"assignment": spec.assignment, "modules": list(spec.modules),
            "test_files": [str(p) for p in spec.test_files],
            "hidden_files": [str(p) for p in spec.hidden_files],
            "reference_files": {m: str(p) for m, p in spec.reference_files.items()},
            "limits": asdict(spec.limits), "test_time_limit_s": spec.test_time_limit_s,
            "submission_time_limit_s": spec.submission_time_limit_s,
            "rootdir": str(spec.rootdir)}


def _spec_from_json(d: dict) -> GradingSpec:
    return GradingSpec(
        assignment=d["assignment"], modules=tuple(d["modules"]),
        test_files=[Path(p) for p in d["test_files"]],
        hidden_files=frozenset(Path(p) for p in d["hidden_files"]),
        reference_files={m: Path(p) for m, p in d["reference_files"].items()},
        limits=Limits(**d["limits"]), test_time_limit_s=d["test_time_limit_s"],
        submission_time_limit_s=d["submission_time_limit_s"], rootdir=Path(d["rootdir"]))


def run_workers(spec: GradingSpec, submissions: Sequence[PreparedSubmission], backend: str,
                jobs: int, on_result: Callable[[GradingResult], None] | None = None
                ) -> dict[str, GradingResult]:
    """Grade ``submissions`` in ``jobs`` worker processes; results by submission id."""
    chunks = [list(submissions[i::jobs]) for i in range(jobs)]
    chunks = [c for c in chunks if c]
    results: dict[str, GradingResult] = {}
    selector = selectors.DefaultSelector()
    procs = []
    with tempfile.TemporaryDirectory(prefix="autograder-workers-") as tmp:
        for slot, chunk in enumerate(chunks):
            job = Path(tmp) / f"job{slot}.json"
            job.write_text(json.dumps({
                "spec": _spec_to_json(spec), "backend": backend, "slot": slot,
                "submissions": [{"id": s.id, "files": str(s.files),
                                 "content_hash": s.content_hash, "notes": s.notes}
                                for s in chunk]}))
            read_fd, write_fd = os.pipe()
            proc = subprocess.Popen(
                [sys.executable, "-m", "autograder.harness.worker", str(job), str(write_fd)],
                pass_fds=[write_fd], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE)
            os.close(write_fd)
            stream = os.fdopen(read_fd, "rb")
            selector.register(stream, selectors.EVENT_READ, proc)
            procs.append((proc, chunk))
        open_streams = len(procs)
        while open_streams:
            for key, _ in selector.select():
                line = key.fileobj.readline()
                if not line:
                    selector.unregister(key.fileobj)
                    key.fileobj.close()
                    open_streams -= 1
                    continue
                result = GradingResult.from_json(json.loads(line))
                results[result.submission] = result
                if on_result is not None:
                    on_result(result)
        for proc, chunk in procs:
            _, stderr = proc.communicate()
            missing = [s.id for s in chunk if s.id not in results]
            if missing:
                raise HarnessError(f"a grading worker ended (exit code {proc.returncode}) "
                                   f"without grading {', '.join(missing[:5])}:\n"
                                   f"{stderr.decode(errors='replace')[-3000:]}")
    return results


def main() -> None:
    from autograder.harness.grader import make_sandbox, run_session

    job = json.loads(Path(sys.argv[1]).read_text())
    out = os.fdopen(int(sys.argv[2]), "w", buffering=1)
    spec = _spec_from_json(job["spec"])
    subs = [PreparedSubmission(s["id"], Path(s["files"]), s["content_hash"], s["notes"])
            for s in job["submissions"]]

    def emit(result: GradingResult) -> None:
        out.write(json.dumps(result.to_json()) + "\n")

    with make_sandbox(job["backend"]) as sandbox:
        run_session(spec, subs, sandbox, emit, slot=int(job["slot"]))
    out.close()


if __name__ == "__main__":
    main()
