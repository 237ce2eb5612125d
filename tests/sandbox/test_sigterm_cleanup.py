"""A grading run stopped with SIGTERM (a scheduler, `timeout`, a cancelled CI job) closes its
sandbox on the way out: no runner container of it is left behind, those started ahead included."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tests.support.services import need

SLOW = "import time\ntime.sleep(60)\n"


def _containers(prefix: str) -> list[str]:
    out = subprocess.run(["docker", "ps", "-a", "--filter", f"name={prefix}", "--format",
                          "{{.Names}}"], capture_output=True, text=True, timeout=60)
    return [n for n in out.stdout.split() if n.startswith(prefix)]


def test_sigterm_during_a_docker_grading_run_leaves_no_container(tmp_path):
    from autograder.authoring.release import build_release
    from autograder.course import Course
    from autograder.demo import build_demo_course
    from autograder.sandbox.docker import docker_status

    status = docker_status()
    need("docker", status is None, status or "")
    root = build_demo_course(tmp_path / "course")
    build_release(Course(root).assignment("softmax"))
    # Two submissions: while the first is graded, the second's container is started ahead.
    uploads = []
    for name in ("slow.py", "slow2.py"):
        upload = tmp_path / "uploads" / name
        upload.parent.mkdir(exist_ok=True)
        upload.write_text(SLOW + (root / "solutions/softmax/samples/correct.py").read_text())
        uploads.append(upload)
    proc = subprocess.Popen(
        [sys.executable, "-m", "autograder.cli", "grade", "softmax", *map(str, uploads),
         "--backend", "docker", "--jobs", "1", "--course", str(root)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    prefix = f"ag-{proc.pid}-"
    try:
        deadline = time.monotonic() + 120
        while len(_containers(prefix)) < 2:  # the runner and the next one, started ahead
            assert proc.poll() is None, proc.stdout.read().decode(errors="replace")
            assert time.monotonic() < deadline, "no runner container appeared"
            time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    left = _containers(prefix)
    if left:  # leave the machine clean whatever the verdict
        subprocess.run(["docker", "rm", "-f", *left], capture_output=True, timeout=120)
    output = proc.stdout.read().decode(errors="replace")
    assert proc.returncode != 0, output
    assert not (tmp_path / "graded").exists() or not list((tmp_path / "graded").rglob("results.json")), output
    assert not left, f"left behind: {left}"
    assert all(os.path.exists(u) for u in uploads)
