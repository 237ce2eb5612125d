"""Where one cold ``autograder check`` spends its time: timestamps of its phases.

Run it inside a student's folder (a copy of ``release/ASSIGNMENT``, with or without work in it),
as a student runs ``autograder check`` there:

    cd /tmp/mine && /path/to/.venv/bin/python /path/to/benchmarks/check_phases.py [-k PATTERN]

It wraps a few of the grader's calls with timestamps (milliseconds from this script's first
line; the interpreter's own start, about 50 ms, comes before), runs the real ``check`` and
prints the phases to stderr before the process exits, beside the machine's load. The fork
server's imports run beside the grader's from its spawn on; the first test waits for what is
left of them.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MARKS: list[tuple[float, str]] = []


def mark(what: str) -> None:
    MARKS.append((time.perf_counter() - T0, what))


import autograder.cli as cli  # noqa: E402

mark("CLI imported")

from autograder.harness import plugin, remote, session  # noqa: E402


def _around(owner, name: str, label: str, *, end: bool = True) -> None:
    real = getattr(owner, name)

    def timed(*args, **kwargs):
        mark(f"{label} begins")
        try:
            return real(*args, **kwargs)
        finally:
            if end:
                mark(f"{label} ends")

    setattr(owner, name, timed)


_around(session, "start_sandbox", "fork server spawn")
_around(session, "run_session", "run_session")
_around(remote.StudentSession, "_start", "runner start and hello (waits for the fork server)")
_around(plugin.GradingPlugin, "_complete", "result completed", end=False)
_collection_finish = plugin.GradingPlugin.pytest_collection_finish


def _collected(self, session):  # pluggy passes hook arguments by name: the same signature
    mark("collection done")
    return _collection_finish(self, session)


plugin.GradingPlugin.pytest_collection_finish = _collected
_exit = os._exit


def _report_and_exit(code: int) -> None:
    mark("os._exit")
    print(f"check phases (load {os.getloadavg()[0]:.1f}; ms from this script's start):",
          file=sys.stderr)
    for at, what in MARKS:
        print(f"  {at * 1000:7.0f} ms  {what}", file=sys.stderr)
    _exit(code)


os._exit = _report_and_exit

if __name__ == "__main__":
    sys.argv = ["autograder", "check", *sys.argv[1:]]
    cli.main()
