"""The docker backend for real: same results as the process backend, containers always removed,
the image holds only the runner."""

from __future__ import annotations

import os
import socket
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from autograder.course import Course
from autograder.harness.grader import grade_uploads
from autograder.image.build import DEFAULT_TAG, RUNNER_FILES, build_image, docker_cli
from autograder.sandbox.base import Limits
from autograder.sandbox.docker import (INSTANCE_LABEL, LABEL, OWNER_LABEL, DockerSandbox,
                                       docker_status)
from tests.conftest import REPO, as_root, write
from tests.support.services import need

pytestmark = pytest.mark.skipif(not as_root(), reason="the docker backend needs root here")


@pytest.fixture(scope="module")
def docker_sandbox():
    status = docker_status()
    need("docker", status is None, status or "")
    with DockerSandbox() as sb:
        yield sb


def _summary(results):
    return [(r.submission, r.score, r.max_score,
             [(t.name, t.outcome, t.score) for t in r.tests]) for r in results]


def _containers(*filters: str) -> list[str]:
    args = [docker_cli(), "ps", "-a", "--format", "{{.Names}}"]
    for f in filters:
        args += ["--filter", f]
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout.split()


def test_softmax_grades_the_same_in_both_backends(docker_sandbox, sandbox, tmp_path):
    """The reference, every mutant and the stub of the real softmax assignment."""
    assignment = Course(REPO).assignment("softmax")
    uploads = [assignment.reference_files()["softmax"], *assignment.mutant_files()]
    stub = assignment.release_dir / "softmax.py"
    if stub.is_file():
        uploads.append(stub)
    copies = []
    for i, path in enumerate(uploads):
        copies.append(write(tmp_path / f"s{i:02d}_{path.stem}" / "softmax.py",
                            path.read_text()))
    by_process = grade_uploads(assignment, [c.parent for c in copies], sandbox=sandbox)
    by_docker = grade_uploads(assignment, [c.parent for c in copies], sandbox=docker_sandbox)
    assert {r.backend for r in by_process} == {"process"}
    assert {r.backend for r in by_docker} == {"docker"}
    assert _summary(by_docker) == _summary(by_process)
    assert by_docker[0].score == by_docker[0].max_score > 0      # the reference earns it all
    assert any(r.score < r.max_score for r in by_docker[1:])     # mutants lose points


TOY_REFERENCE = '''
import numpy as np
def affine(x, w, b):
    # BEGIN SOLUTION
    return x @ w + b
    # END SOLUTION
'''
TOY_TESTS = '''
import numpy as np
import pytest
from autograder.checks import assert_close

@pytest.mark.points(2)
def test_affine(student, reference, rng):
    x, w, b = rng.normal(size=(4, 3)), rng.normal(size=(3, 5)), rng.normal(size=5)
    assert_close(student.affine(x, w, b), reference.affine(x, w, b), name="out")

def test_handles_stay_remote(student):
    obj = student.make()
    assert student.use(obj) == 42

def test_tensor(student):
    out = student.double_tensor([1.0, 2.0])
    assert list(out) == [2.0, 4.0]
'''
TOY_SUBMISSIONS = {
    "good": '''
        import numpy as np
        def affine(x, w, b): return x @ w + b
        class Box:
            value = 42
        def make(): return Box()
        def use(box): return box.value
        def double_tensor(v):
            import torch
            return torch.tensor(v) * 2
        ''',
    "raises": '''
        def affine(x, w, b): raise ValueError("nope")
        def make(): raise RuntimeError("no box")
        ''',
    "crashes": "import os\ndef affine(x, w, b): os._exit(3)\n",
    "hangs": "def affine(x, w, b):\n    while True: pass\n",
    "prints": "import sys\nprint('hello from import')\ndef affine(x, w, b):\n"
              "    print('out', file=sys.stderr); return x @ w + b\n",
    "memory": "def affine(x, w, b):\n    h = []\n    while True: h.append(bytearray(2**26))\n",
}


def test_edge_cases_grade_the_same_in_both_backends(docker_sandbox, sandbox, make_course,
                                                     tmp_path):
    root = make_course({"solutions/toy/toy.py": TOY_REFERENCE,
                        "solutions/toy/tests/test_hidden.py": TOY_TESTS},
                       # Generous: the first runner starts inside its test's time (a container
                       # start, and torch for "good"), and this machine is shared.
                       resources="test_time_limit_s = 10\ntime_limit_s = 60\nmemory_mb = 512")
    uploads = [write(tmp_path / "up" / f"{name}.py", textwrap.dedent(src))
               for name, src in TOY_SUBMISSIONS.items()]
    assignment = Course(root).assignment("toy")
    by_process = grade_uploads(assignment, uploads, sandbox=sandbox)
    by_docker = grade_uploads(assignment, uploads, sandbox=docker_sandbox)
    differ = [(d, p, [t.output[:300] for t in rd.tests])
              for d, p, rd in zip(_summary(by_docker), _summary(by_process), by_docker) if d != p]
    assert not differ, differ
    docker = {r.submission: r for r in by_docker}
    assert docker["good"].score == docker["good"].max_score == 4
    assert {t.outcome for t in docker["hangs"].tests} >= {"timeout"}
    assert "memory" in {t.outcome for t in docker["memory"].tests}
    assert "hello from import" in docker["prints"].output + "".join(
        t.output for t in docker["prints"].tests)


def test_kill_ends_and_removes_the_container(docker_sandbox, tmp_path):
    write(tmp_path / "files" / "x.py", "X = 1\n")
    runner = docker_sandbox.start(tmp_path / "files", Limits(memory_mb=256, cpu_s=30))
    hello = runner.channel.recv_bytes(wait=runner.waiter(time.monotonic() + 60))
    assert b"hello" in hello
    assert _containers(f"name={runner.name}") == [runner.name]
    runner.kill()
    info = runner.exit_info(timeout=10)
    assert info is not None and info.code == 137 and info.signaled
    runner.close()
    runner._done.wait(30)
    assert _containers(f"name={runner.name}") == []
    assert not os.path.exists(runner.run_dir)


def test_a_container_that_cannot_start_is_a_runner_death_not_a_hang(tmp_path):
    status = docker_status()
    need("docker", status is None, status or "")
    write(tmp_path / "files" / "x.py", "X = 1\n")
    with DockerSandbox(image=DEFAULT_TAG) as sb:
        sb.image = "autograder-no-such-image:none"
        runner = sb.start(tmp_path / "files", Limits(memory_mb=256, cpu_s=30))
        from autograder.protocol import ChannelClosed
        with pytest.raises(ChannelClosed):
            runner.channel.recv_bytes(wait=runner.waiter(time.monotonic() + 60))
        info = runner.exit_info(timeout=10)
        assert info is not None and info.code == 125
        assert "could not be started by docker" in info.describe()
        runner.close()


def test_no_container_outlives_its_sandbox(tmp_path):
    status = docker_status()
    need("docker", status is None, status or "")
    write(tmp_path / "files" / "x.py", "X = 1\n")
    sb = DockerSandbox()
    runners = [sb.start(tmp_path / "files", Limits(memory_mb=256, cpu_s=30), slot=i)
               for i in range(2)]
    for r in runners:  # running, past the hello
        assert b"hello" in r.channel.recv_bytes(wait=r.waiter(time.monotonic() + 60))
    # Two runners, and warm containers waiting for the next runners of those slots.
    assert len(_containers(f"label={INSTANCE_LABEL}={sb.instance}")) >= 2
    sb.close()  # runners never closed by a harness: the sandbox still removes them
    assert _containers(f"label={INSTANCE_LABEL}={sb.instance}") == []
    for r in runners:
        r.channel.close()


def test_containers_of_a_dead_grader_are_removed_at_start(tmp_path):
    status = docker_status()
    need("docker", status is None, status or "")
    dead_owner = f"{socket.gethostname()}:999999999.1"
    name = f"ag-stale-{os.getpid()}"
    subprocess.run([docker_cli(), "create", "--name", name, "--label", f"{LABEL}=1",
                    "--label", f"{OWNER_LABEL}={dead_owner}", "--network", "none",
                    DEFAULT_TAG, "true"], check=True, capture_output=True)
    try:
        with DockerSandbox() as sb:
            assert _containers(f"name={name}") == []
            assert sb.owner != dead_owner
    finally:
        subprocess.run([docker_cli(), "rm", "-f", name], capture_output=True)


def test_the_image_holds_the_runner_and_nothing_else_of_the_platform():
    status = docker_status()
    need("docker", status is None, status or "")
    script = ("import os, autograder, numpy, msgpack, torch\n"
              "root = os.path.dirname(autograder.__file__)\n"
              "print(sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in "
              "os.walk(root) for f in fs if not f.endswith('.pyc')))\n"
              "print(numpy.__version__, msgpack.version, torch.__version__)\n")
    out = subprocess.run([docker_cli(), "run", "--rm", "--network", "none", DEFAULT_TAG,
                          "python3", "-I", "-c", script], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert eval(out[0]) == sorted(RUNNER_FILES)  # noqa: S307 - our own print of a list
    import numpy
    assert out[1].split()[0] == numpy.__version__


def test_an_unchanged_image_is_not_rebuilt():
    status = docker_status()
    need("docker", status is None, status or "")
    started = time.monotonic()
    result = build_image(DEFAULT_TAG, log=lambda m: None)
    assert not result.built
    assert time.monotonic() - started < 30


def test_the_cli_reports_a_missing_image_plainly(make_course, tmp_path, monkeypatch):
    status = docker_status()
    need("docker", status is None, status or "")
    from click.testing import CliRunner

    from autograder.cli import main
    root = make_course({"solutions/toy/toy.py": TOY_REFERENCE,
                        "solutions/toy/tests/test_hidden.py": TOY_TESTS})
    sub = write(tmp_path / "good.py", "def affine(x, w, b): return x @ w + b\n")
    monkeypatch.setenv("AUTOGRADER_IMAGE", "autograder-no-such-image:none")
    res = CliRunner().invoke(main, ["grade", "toy", str(sub), "--backend", "docker",
                                    "--course", str(root), "--output", str(tmp_path / "out")])
    assert res.exit_code != 0
    assert "autograder image build" in res.output
    assert "Traceback" not in res.output


def test_a_warm_container_serves_the_next_submission_with_its_own_files(tmp_path):
    status = docker_status()
    need("docker", status is None, status or "")
    from autograder import protocol
    with DockerSandbox(warm=1) as sb:
        for i in range(3):
            files = write(tmp_path / f"f{i}" / "m.py", f"VALUE = {i}\n").parent
            runner = sb.start(files, Limits(memory_mb=256, cpu_s=30), slot=0)
            wait = runner.waiter(time.monotonic() + 60)
            assert protocol.decode(runner.channel.recv_bytes(wait=wait))["op"] == "hello"
            runner.channel.send_bytes(protocol.encode(
                {"op": "getattr", "id": 1, "target": {"module": "m", "name": "VALUE"}}))
            assert protocol.decode(runner.channel.recv_bytes(wait=wait))["ok"] == i
            runner.close()
        assert len(sb._pool[(Limits(memory_mb=256, cpu_s=30), 0)]) == 1


def test_an_image_with_another_runner_is_refused(docker_sandbox):
    """An out-of-date image would grade with an old runner: the sandbox refuses it and says how
    to fix it. The base image (no runner at all) stands in for an old one."""
    from autograder.sandbox.docker import DockerUnavailable, check_engine

    check_engine(docker_cli(), DEFAULT_TAG)  # the current image is accepted
    with pytest.raises(DockerUnavailable, match="different student runner.*autograder image build"):
        check_engine(docker_cli(), "autograder-base:bookworm")


def test_a_batch_launches_no_container_that_no_submission_takes(tmp_path, monkeypatch):
    """Warm containers are launched ahead, but within a batch no more than its remaining
    submissions need: each one thrown away at the end cost up to a second of CPU (more with
    torch), on every batch."""
    status = docker_status()
    need("docker", status is None, status or "")
    from autograder.demo import build_demo_course

    root = build_demo_course(tmp_path / "course")
    correct = (root / "solutions/softmax/samples/correct.py").read_text()
    uploads = [write(tmp_path / "uploads" / f"s{i}.py", correct) for i in range(3)]
    launched = []
    real_launch = DockerSandbox._launch

    def launch(self, limits, slot, lease):
        launched.append(slot)
        return real_launch(self, limits, slot, lease)

    monkeypatch.setattr(DockerSandbox, "_launch", launch)
    with DockerSandbox() as sb:
        results = grade_uploads(Course(root).assignment("softmax"), uploads, sandbox=sb)
        left = sum(len(q) for q in sb._pool.values())
    assert [r.score for r in results] == [r.max_score for r in results]
    assert len(launched) == 3, launched  # one per submission: none launched for nobody
    assert left == 0
