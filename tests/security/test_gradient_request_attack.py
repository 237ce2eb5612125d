"""A submission that takes over the runner's numerical-gradient routine, graded for real by
each sandbox backend (``process``, and ``docker`` where a docker engine and the grading image
are present).

``numerical_gradient_of`` sends one ``numgrad`` request and the runner sends back the losses
the grader turns into a gradient. The runner runs in the student's process, so the student can
replace that routine. What it can do then: report losses whose difference quotients equal its
own (wrong) analytic gradient, so a check of the submission against *itself* passes — exactly
what a forward pass written to agree with a wrong backward pass, or one that keeps state
between calls, could already do. What it cannot do: see the analytic gradient the grader
compares with, the tolerance, or the reference (none of them is ever sent), or decide a
verdict: the hidden test compares with the reference on the trusted side and fails it, and a
reply of the wrong shape is a protocol violation, never a pass.
"""

from __future__ import annotations

import hashlib
import json
import os
import re

import numpy as np
import pytest

from autograder.course import Course
from autograder.harness.grader import grade_uploads
from tests.conftest import as_root, write
from tests.support.sandboxes import sandbox_for

pytestmark = pytest.mark.skipif(not as_root(), reason="the full process sandbox needs root")

UID_BASE = 62000 + (os.getpid() % 400) * 2
TOLERANCE = 3.25e-7  # a number the grader holds and never sends: a probe for leaks

REFERENCE = '''
import numpy as np

def forward(x, w):
    """out = tanh(x @ w); returns (out, cache)."""
    # BEGIN SOLUTION
    out = np.tanh(x @ w)
    return out, (x, w, out)
    # END SOLUTION

def backward(dout, cache):
    """(dx, dw)."""
    # BEGIN SOLUTION
    x, w, out = cache
    da = dout * (1 - out ** 2)
    return da @ w.T, x.T @ da
    # END SOLUTION
'''

PUBLIC_TESTS = f'''
import numpy as np
import pytest
from autograder.checks import assert_grad_close, call_keeping, numerical_gradient_of

def _problem(rng):
    return rng.normal(size=(3, 4)), rng.normal(size=(4, 2)), rng.normal(size=(3, 2))

@pytest.mark.points(1)
def test_dx_against_own_forward(student, rng):
    x, w, dout = _problem(rng)
    _, cache = call_keeping(student.forward, x, w, keep=(1,))
    dx, _ = student.backward(dout, cache)
    numeric = numerical_gradient_of(student.forward, (x, w), 0, {{0: dout}})
    assert_grad_close(dx, numeric, tol={TOLERANCE!r}, name="dx")
'''

HIDDEN_TESTS = '''
import numpy as np
import pytest
from autograder.checks import assert_close, call_keeping

@pytest.mark.points(1)
def test_dx_matches_the_reference(student, reference, rng):
    x, w, dout = rng.normal(size=(3, 4)), rng.normal(size=(4, 2)), rng.normal(size=(3, 2))
    _, cache = call_keeping(student.forward, x, w, keep=(1,))
    dx, _ = student.backward(dout, cache)
    expected, _ = reference.backward(dout, reference.forward(x, w)[1])
    assert_close(dx, expected, name="dx")
'''

# Its backward pass doubles dx. It replaces the runner's gradient routine so that the
# numerical gradient doubles too, and it writes down everything the grader sends it: every
# request's keys, every float, and a hash of every array.
HOSTILE = '''
import hashlib, json
import numpy as np
from autograder.runner import serve

def forward(x, w):
    out = np.tanh(x @ w)
    return out, (x, w, out)

def backward(dout, cache):
    x, w, out = cache
    da = dout * (1 - out ** 2)
    return 2 * (da @ w.T), x.T @ da

def _values(v, floats, arrays):
    if isinstance(v, np.ndarray):
        arrays.append(hashlib.sha256(np.ascontiguousarray(v, dtype=np.float64).tobytes())
                      .hexdigest()[:16])
        floats.extend(float(f) for f in np.ravel(v)[:64])
    elif isinstance(v, float):
        floats.append(v)
    elif isinstance(v, (list, tuple)):
        for item in v:
            _values(item, floats, arrays)
    elif isinstance(v, dict):
        for item in v.values():
            _values(item, floats, arrays)

_handle = serve.Runner.handle

def _spy(self, request):
    floats, arrays = [], []
    _values(request, floats, arrays)
    print("SEEN " + json.dumps({"op": request.get("op"), "keys": sorted(request),
                                "floats": floats, "arrays": arrays}))
    return _handle(self, request)

_losses = serve.Runner._perturbed_losses

def _doubled(self, fn, request):
    reply = _losses(self, fn, request)
    plus, minus = reply["losses"][:, 0], reply["losses"][:, 1]
    mid, half = (plus + minus) / 2, (plus - minus) / 2
    reply["losses"] = np.stack([mid + 2 * half, mid - 2 * half], axis=1)
    return reply

serve.Runner.handle = _spy
serve.Runner._perturbed_losses = _doubled
'''


@pytest.fixture(scope="module", params=["process", "docker"])
def backend(request):
    return request.param


@pytest.fixture(scope="module")
def graded(tmp_path_factory, backend):
    root = tmp_path_factory.mktemp("gradient-attack")
    write(root / "course.toml", 'name = "gradient attack"\n')
    write(root / "assignments/toy/assignment.toml",
          'name = "toy"\nmodules = ["toy"]\n[resources]\ntest_time_limit_s = 10\n'
          'time_limit_s = 60\nmemory_mb = 512\nmax_output_kb = 64\n')
    write(root / "assignments/toy/tests/test_public.py", PUBLIC_TESTS)
    write(root / "solutions/toy/toy.py", REFERENCE)
    write(root / "solutions/toy/tests/test_hidden.py", HIDDEN_TESTS)
    uploads = [write(root / "uploads" / "hostile.py", HOSTILE),
               write(root / "uploads" / "honest.py", REFERENCE)]
    with sandbox_for(backend, UID_BASE) as sandbox:
        hostile, honest = grade_uploads(Course(root).assignment("toy"), uploads,
                                        sandbox=sandbox)
    return hostile, honest


def _by_name(result):
    return {t.name.split("::")[-1]: t for t in result.tests}


def test_it_can_fool_a_check_against_itself_but_not_the_reference(graded):
    hostile, honest = graded
    assert honest.score == honest.max_score == 2
    tests = _by_name(hostile)
    # What it can do: its doubled losses agree with its doubled dx, as a forward pass written
    # to match a wrong backward pass would.
    assert tests["test_dx_against_own_forward"].outcome == "passed"
    # What it cannot: the verdict against the reference is made here, on data it never saw.
    assert tests["test_dx_matches_the_reference"].outcome == "failed"
    assert "dx:" in tests["test_dx_matches_the_reference"].output
    assert hostile.score == 1


def _seen(result) -> list[dict]:
    text = "\n".join(t.output for t in result.tests)
    return [json.loads(m) for m in re.findall(r"^SEEN (\{.*\})$", text, flags=re.MULTILINE)]


def _hash(a) -> str:
    return hashlib.sha256(np.ascontiguousarray(a, dtype=np.float64).tobytes()).hexdigest()[:16]


def test_the_runner_never_sees_the_analytic_gradient_the_tolerance_or_the_reference(graded):
    hostile, _ = graded
    seen = _seen(hostile)
    numgrad = [s for s in seen if s["op"] == "numgrad"]
    assert len(numgrad) == 1, seen  # the whole gradient was one request
    # The request carries the function, its arguments, which one to vary, the step and the
    # upstream weights: nothing of the comparison.
    assert numgrad[0]["keys"] == ["args", "df", "h", "id", "kwargs", "op", "target", "wrt"]
    floats = {f for s in seen for f in s["floats"]}
    arrays = {a for s in seen for a in s["arrays"]}
    assert TOLERANCE not in floats
    # The gradients compared on the trusted side never went the other way: the reference's
    # dx of the hidden test, and the true and doubled dx of the public one (the grader's
    # numerical gradient and the submission's analytic one).
    for test_file, test_name in (("test_hidden.py", "test_dx_matches_the_reference"),
                                 ("test_public.py", "test_dx_against_own_forward")):
        x, w, dout = _inputs(f"{test_file}::{test_name}")
        out = np.tanh(x @ w)
        dx = (dout * (1 - out ** 2)) @ w.T
        assert _hash(dx) not in arrays and _hash(2 * dx) not in arrays
        assert _hash(x) in arrays  # (the hashes do match what was sent: the inputs were)


def _inputs(key: str):
    """The inputs the test drew: its ``rng`` is seeded from its file and name, as the
    harness's fixture does."""
    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
    rng = np.random.default_rng(seed)
    return rng.normal(size=(3, 4)), rng.normal(size=(4, 2)), rng.normal(size=(3, 2))
