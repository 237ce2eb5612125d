"""Two graders on one machine (a service's worker and a TA's ``grade`` beside it) never give two
runners the same uid: ``RLIMIT_NPROC`` counts processes per uid across the machine, so a shared
uid would let one student's fork bomb make another student's code crash, a fault charged to the
wrong student. The attack runs for real: a hostile runner fills its process allowance and holds
it while a runner of another sandbox, same slot, forks."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from autograder.sandbox import policy
from tests.support.sandboxes import sandbox_for

UID_BASE = 66000 + (os.getpid() % 400) * 4

HOG = textwrap.dedent('''
    import os, time

    def fill():
        """Fork until the process allowance is spent; the children wait. Returns how many."""
        n = 0
        while n < 500:
            try:
                pid = os.fork()
            except OSError:
                break
            if pid == 0:
                time.sleep(120)
                os._exit(0)
            n += 1
        return n

    def uid():
        return os.getuid()
''')

NEIGHBOUR = textwrap.dedent('''
    import os

    def spawn(k):
        """Fork ``k`` children that exit at once; returns how many forks succeeded."""
        done = 0
        for _ in range(k):
            try:
                pid = os.fork()
            except OSError:
                continue
            if pid == 0:
                os._exit(0)
            os.waitpid(pid, 0)
            done += 1
        return done

    def uid():
        return os.getuid()
''')


@pytest.fixture(params=["process", "docker"])
def backend(request):
    return request.param


def test_a_fork_bomb_under_one_grader_leaves_another_graders_runner_able_to_fork(
        backend, tmp_path):
    from autograder.harness.remote import StudentSession
    from autograder.sandbox.base import Limits

    for name, src in (("hog", HOG), ("neighbour", NEIGHBOUR)):
        (tmp_path / name).mkdir()
        (tmp_path / name / f"{name}.py").write_text(src)
    limits = Limits(memory_mb=512, cpu_s=60, max_processes=24)
    # Two sandboxes with the same uid base, each a grader of its own, both using slot 0.
    with sandbox_for(backend, UID_BASE) as first, sandbox_for(backend, UID_BASE) as second:
        hog = StudentSession(first, tmp_path / "hog", limits, ("hog",), slot=0)
        neighbour = StudentSession(second, tmp_path / "neighbour", limits, ("neighbour",),
                                   slot=0)
        try:
            for s in (hog, neighbour):
                s.deadline = time.monotonic() + 120
            held = hog.module("hog").fill()
            forked = neighbour.module("neighbour").spawn(8)
            uids = (hog.module("hog").uid(), neighbour.module("neighbour").uid())
        finally:
            hog.close()
            neighbour.close()
    assert 0 < held < 500, f"the hog's allowance was never reached ({held} forks)"
    assert forked == 8, f"the neighbour could fork only {forked} of 8 children"
    assert uids[0] != uids[1], f"both runners ran as uid {uids[0]}"
    assert all(UID_BASE <= u < UID_BASE + policy.UID_SPAN for u in uids), uids


def test_uid_leases_are_exclusive_across_processes_and_come_back_when_a_holder_dies(tmp_path):
    leases = policy.UidLeases(base=70000, span=3, directory=tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f'''
            import sys, time
            from pathlib import Path
            from autograder.sandbox.policy import UidLeases
            leases = UidLeases(base=70000, span=3, directory=Path({str(tmp_path)!r}))
            print(leases.uid(0), leases.uid(5), flush=True)
            time.sleep(120)
        ''')], stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    try:
        theirs = {int(u) for u in holder.stdout.readline().split()}
        assert theirs == {70000, 70001}
        assert leases.uid(0) == 70002, "the one uid another process does not hold"
        assert leases.uid(0) == 70002, "a slot keeps its uid"
        from autograder.sandbox.base import SandboxError

        with pytest.raises(SandboxError, match="all 3 runner uids from 70000 are in use"):
            leases.uid(1)
    finally:
        holder.kill()
        holder.wait()
    assert leases.uid(1) == 70000, "a dead holder's uids come back by themselves"
    leases.close()
    again = policy.UidLeases(base=70000, span=3, directory=tmp_path)
    assert again.uid(0) == 70000, "closed leases are given back"
    again.close()
