"""Many calls in one request: numerical gradients computed by the student process, judged here.

``numerical_gradient_of`` of a student function is one ``numgrad`` request: the runner calls
the function twice per entry and sends back only the ``2 x size`` reduced numbers. These tests
hold it to the local (in-process) path it must equal, number for number and message for
message, and to the boundary's rules: a runner that sends the wrong count, dtype or a false
"could not reduce" is a protocol violation, never a pass; a NaN is the student's failure; a
function that edits its inputs cannot disturb the check; the call's deadline still holds in the
middle of the batch. ``call_keeping`` leaves chosen elements of a tuple result in the student
process as handles that can be passed back.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from autograder.checks import call_keeping, numerical_gradient, numerical_gradient_of
from autograder.harness.remote import (CallTimedOut, ProtocolViolation, RemoteHandle,
                                       StudentError, StudentSession)
from autograder.sandbox.base import Limits
from tests.conftest import write

STUDENT = '''
import collections
import time
import numpy as np

CALLS = [0]

def step(x, w, params):
    """A tuple output, like lstm_step_forward: (h, c, cache)."""
    CALLS[0] += 1
    h = np.tanh(x @ w) * params["scale"]
    c = np.sin(x) ** 2
    return h, c, {"x": x, "w": w, "scale": params["scale"]}

def step_backward(dh, dc, cache):
    x, w = cache["x"], cache["w"]
    da = dh * cache["scale"] * (1 - np.tanh(x @ w) ** 2)
    return 2 * np.sin(x) * np.cos(x) * dc + da @ w.T, x.T @ da

def calls():
    return CALLS[0]

def loss(x):
    return float(np.sum(x ** 2))

def vandal(x, w, params):
    """Edits every input in place after using it: a careless student."""
    out = np.tanh(x @ w)
    x += 100.0
    w *= -3.0
    params["scale"] = 0.0
    return out

def clean(x, w, params):
    return np.tanh(x @ w)

def wrong_shape(x, w, params):
    return np.tanh(x @ w), np.sin(x).T

def not_a_tuple(x, w, params):
    return np.tanh(x @ w)

def nan_after_first(x, w, params):
    out = np.tanh(x @ w)
    if x[0, 1] > 0.5:
        out = out * np.nan
    return out

def slow(x, w, params):
    time.sleep(0.05)
    return np.tanh(x @ w)

def not_implemented(x, w, params):
    raise NotImplementedError

def pair(x):
    return np.sum(x), x * 2

Named = collections.namedtuple("Named", "out cache")

def named(x, w, params):
    return Named(np.tanh(x @ w), object())
'''

# A student module that replaces the runner's gradient routine (any student code can: it runs
# in the runner's process). What it sends back decides nothing by itself.
LIAR = '''
import numpy as np
from autograder.runner import serve

MODE = ["count"]

def mode(m):
    MODE[0] = m

def _lie(self, fn, request):
    x = request["args"][request["wrt"]]
    if MODE[0] == "count":
        return {"losses": np.zeros((x.size + 1, 2))}
    if MODE[0] == "dtype":
        return {"losses": np.zeros((x.size, 2), dtype=np.float32)}
    if MODE[0] == "list":
        return {"losses": [[0.0, 0.0]] * x.size}
    if MODE[0] == "unreduced":  # claims a fine output could not be reduced
        return {"unreduced": np.zeros(x.shape), "at": [0, 0]}
    return "nonsense"

serve.Runner._perturbed_losses = _lie

def f(x):
    return x * 3.0
'''


@pytest.fixture
def session(sandbox, tmp_path):
    write(tmp_path / "files" / "stu.py", STUDENT)
    write(tmp_path / "files" / "liar.py", LIAR)
    s = StudentSession(sandbox, tmp_path / "files", Limits(memory_mb=512, cpu_s=60),
                       ("stu", "liar"))
    s.deadline = time.monotonic() + 60
    yield s
    s.close()


@pytest.fixture
def local(tmp_path):
    import importlib.util

    path = write(tmp_path / "local" / "stu_local.py", STUDENT)
    spec = importlib.util.spec_from_file_location("stu_local", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _problem():
    rng = np.random.default_rng(7)
    return (rng.normal(size=(2, 3)), rng.normal(size=(3, 4)), {"scale": 1.5},
            rng.normal(size=(2, 4)), rng.normal(size=(2, 3)))


def test_one_request_gives_the_local_gradient_exactly(session, local):
    x, w, params, dh, dc = _problem()
    student = session.module("stu")
    student.calls()  # the import, out of the way
    before = session.replies
    remote = {k: numerical_gradient_of(student.step, (x, w, params), k, {0: dh, 1: dc})
              for k in (0, 1)}
    assert session.replies - before == 2  # one request per gradient, not 2 x size calls
    assert student.calls() == 2 * (x.size + w.size)  # the function still ran once per input
    for k in (0, 1):
        here = numerical_gradient_of(local.step, (x, w, params), k, {0: dh, 1: dc})
        np.testing.assert_array_equal(remote[k], here)  # the same numbers, bit for bit
    # ...and the right gradient: the analytic one of the same function.
    dx, dw = local.step_backward(dh, dc, {"x": x, "w": w, "scale": 1.5})
    np.testing.assert_allclose(remote[0], dx, rtol=1e-6)
    np.testing.assert_allclose(remote[1], dw, rtol=1e-6)
    # As the closure the tests used to write, one call per evaluation, gives.
    closure = numerical_gradient(
        lambda v: np.sum(local.step(v, w, params)[0] * dh) + np.sum(local.step(v, w, params)[1]
                                                                    * dc), x)
    np.testing.assert_array_equal(remote[0], closure)


def test_keyword_argument_and_scalar_output(session, local):
    x = np.array([[0.3, -1.2], [2.0, 0.5]])
    remote = numerical_gradient_of(session.module("stu").loss, (), "x", kwargs={"x": x})
    np.testing.assert_array_equal(remote, numerical_gradient_of(local.loss, (), "x",
                                                                kwargs={"x": x}))
    np.testing.assert_allclose(remote, 2 * x, rtol=1e-7)
    # {0: None}: element 0 of a tuple is the one number.
    np.testing.assert_allclose(numerical_gradient_of(session.module("stu").pair, (x,), 0,
                                                     {0: None}), np.ones_like(x), rtol=1e-7)


def test_a_namedtuple_output_is_reduced_as_locally(session, local):
    # It cannot cross the boundary (it would come back as a handle), but it needs not to:
    # the runner reduces it, as the grader's loop does for a local function.
    x, w, params, dh, _ = _problem()
    remote = numerical_gradient_of(session.module("stu").named, (x, w, params), 0, {0: dh})
    np.testing.assert_array_equal(
        remote, numerical_gradient_of(local.named, (x, w, params), 0, {0: dh}))


@pytest.mark.parametrize("fn, df, message", [
    ("wrong_shape", "tuple", r"wrong_shape\(\.\.\.\)\[1\]: expected shape \(2, 3\), got shape "
                             r"\(3, 2\)"),
    ("not_a_tuple", "tuple", r"not_a_tuple\(\.\.\.\): expected a tuple of outputs, got a value "
                             r"of type ndarray"),
    ("clean", "array3", r"output of clean\(\.\.\.\): expected shape \(2, 3\), got shape "
                        r"\(2, 4\)"),
    ("clean", None, r"output of clean\(\.\.\.\): expected one number, got an array of shape "
                    r"\(2, 4\)"),
])
def test_an_output_that_does_not_fit_fails_the_same_way_remote_and_local(session, local, fn,
                                                                          df, message):
    x, w, params, dh, dc = _problem()
    upstream = {"tuple": {0: dh, 1: dc}, "array3": dc, None: None}[df]
    for module in (session.module("stu"), local):
        with pytest.raises(AssertionError, match=message):
            numerical_gradient_of(getattr(module, fn), (x, w, params), 0, upstream)
    assert session.runner is not None  # the student's failure: the runner lives on


def test_nan_in_the_output_is_the_students_failure_saying_where(session, local):
    x, w, params, dh, _ = _problem()
    x[0, 1] = 0.5  # x[0, 1] + h crosses the student's threshold, x[0, 1] - h does not
    expected = (r"output of nan_after_first\(\.\.\.\): NaN or infinity when entry \(0, 1\) of "
                r"argument 1 is moved by \+h")
    for module in (session.module("stu"), local):
        with pytest.raises(AssertionError, match=expected):
            numerical_gradient_of(module.nan_after_first, (x, w, params), 0, dh)


def test_the_closure_form_fails_on_nan_too_instead_of_passing():
    # A NaN made the normwise error NaN, and NaN > tol is False: the check used to pass.
    with pytest.raises(AssertionError, match=r"function output: NaN or infinity when entry "
                                             r"\(1\) of x is moved by -h"):
        numerical_gradient(lambda v: v.sum() if v[1] >= 0 else np.nan, np.array([1.0, 0.0]))


def test_a_function_that_edits_its_inputs_cannot_disturb_the_check(session, local):
    x, w, params, dh, _ = _problem()
    kept = (x.copy(), w.copy(), dict(params))
    remote = numerical_gradient_of(session.module("stu").vandal, (x, w, params), 1, dh)
    here = numerical_gradient_of(local.vandal, (x, w, params), 1, dh)
    honest = numerical_gradient_of(local.clean, (x, w, params), 1, dh)
    np.testing.assert_array_equal(remote, honest)
    np.testing.assert_array_equal(here, honest)
    np.testing.assert_array_equal(x, kept[0])  # the test's own arrays are untouched
    np.testing.assert_array_equal(w, kept[1])
    assert params == kept[2]


@pytest.mark.parametrize("mode, what", [
    ("count", r"needs 6 x 2 float64 numbers back, the student process sent an array of shape "
              r"\(7, 2\)"),
    ("dtype", r"dtype float32"),
    ("list", r"sent list"),
    ("unreduced", r"stopped a numerical gradient on an output that was fine"),
    ("other", r"answered a numerical gradient request with something else"),
])
def test_a_runner_that_lies_about_the_batch_is_a_protocol_violation(session, mode, what):
    liar = session.module("liar")
    liar.mode(mode)
    x = np.ones((2, 3))
    with pytest.raises(ProtocolViolation, match=what) as e:
        numerical_gradient_of(liar.f, (x,), 0, np.ones((2, 3)))
    assert e.value.outcome == "protocol"  # never a pass, never the grader's fault


def test_the_calls_deadline_holds_in_the_middle_of_the_batch(session):
    x = np.zeros((10, 10))  # 200 calls of 50 ms: 10 s, far past the 1.5 s left
    w = np.ones((10, 2))
    student = session.module("stu")
    student.calls()
    session.deadline = time.monotonic() + 1.5
    began = time.monotonic()
    with pytest.raises(CallTimedOut):
        numerical_gradient_of(student.slow, (x, w, {}), 0, np.ones((10, 2)))
    assert time.monotonic() - began < 5
    assert session.runner is None  # killed; the next call starts a fresh one


def test_a_student_exception_in_the_batch_is_reported_as_from_a_call(session):
    x, w, params, dh, _ = _problem()
    with pytest.raises(StudentError) as e:
        numerical_gradient_of(session.module("stu").not_implemented, (x, w, params), 0, dh)
    assert e.value.outcome == "not_implemented"
    assert "stu.not_implemented raised NotImplementedError" in str(e.value)


def test_call_keeping_leaves_the_chosen_elements_in_the_student_process(session, local):
    x, w, params, dh, dc = _problem()
    student = session.module("stu")
    h, c, cache = call_keeping(student.step, x, w, params, keep=(2,))
    assert isinstance(cache, RemoteHandle) and "dict" in repr(cache)
    assert isinstance(h, np.ndarray) and isinstance(c, np.ndarray)
    dx, dw = student.step_backward(dh, dc, cache)  # the handle goes back as an argument
    ldx, ldw = local.step_backward(dh, dc, {"x": x, "w": w, "scale": 1.5})
    np.testing.assert_array_equal(dx, ldx)
    np.testing.assert_array_equal(dw, ldw)
    # A local function is simply called; a result that is not a long enough tuple comes back
    # whole, so the test fails on it as before.
    assert isinstance(call_keeping(local.step, x, w, params, keep=(2,))[2], dict)
    whole = call_keeping(student.not_a_tuple, x, w, params, keep=(2,))
    assert isinstance(whole, np.ndarray) and whole.shape == (2, 4)


@pytest.mark.parametrize("call", [
    lambda f: numerical_gradient_of(f, np.ones(2), 0),
    lambda f: numerical_gradient_of(f, (np.ones(2),), 1),
    lambda f: numerical_gradient_of(f, (np.ones(2),), "x"),
    lambda f: numerical_gradient_of(f, (np.ones(2),), 0, {"0": np.ones(2)}),
    lambda f: numerical_gradient_of(f, (np.ones(2),), 0, h=0.0),
    lambda f: call_keeping(f, np.ones(2), keep=(-1,)),
    lambda f: call_keeping(f, np.ones(2), keep=2),
])
def test_a_test_that_uses_the_request_wrongly_is_a_grader_error(call):
    from autograder.errors import GraderError

    with pytest.raises(GraderError):
        call(lambda v: v)


@pytest.mark.parametrize("source, imports", [
    ('"""Unlike PyTorch\'s torch.nn.LSTMCell, the gates are i, f, o, g."""\nimport numpy\n',
     False),
    ("# we could use torch here\nx = 'torch'\n", False),
    ("import torch\n", True),
    ("import numpy as np, torch\n", True),
    ("from torch import nn\n", True),
    ("def f():\n    import torch.nn.functional as F\n", True),
])
def test_a_docker_runner_preloads_torch_only_for_a_file_that_imports_it(tmp_path, source,
                                                                         imports):
    # The LSTM handout's docstring names torch: every container imported torch (1 to 3 s)
    # before its hello, which was most of lstm's cost per submission on docker.
    from autograder.runner.container_entry import imports_torch

    write(tmp_path / "lstm.py", source)
    assert imports_torch(str(tmp_path)) is imports
