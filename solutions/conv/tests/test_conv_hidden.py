"""Hidden tests for the convolution assignment.

Expected values come from PyTorch (``torch.nn.functional.conv2d`` / ``max_pool2d`` and their
autograd gradients, float64), computed here on the trusted side. Every function gets separate
tests per output and per gradient (out, dx, dw, db), so a correct forward pass keeps its points
when the backward pass is wrong. Inputs come from the per-test ``rng``.

Sizes: every convolution and pooling case has at most 3 examples, 4 channels and 11x11 pixels
(a naive loop implementation takes milliseconds); the speed tests use x (2, 3, 32, 32) and
w (16, 3, 5, 5), stride 1, pad 2, where the course's naive loops take about 0.1 s (forward)
and 0.2 s (backward); they are timed in alternation with the student's
fast functions. Time limits: 30 s per test, 60 s for the speed tests.
"""

import functools
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from autograder.checks import assert_close, assert_inputs_unchanged, call_keeping

pytestmark = pytest.mark.visibility("after_due_date")

RTOL, ATOL = 1e-7, 1e-9

HINT_OUT = ("out[n, f, i, j] = b[f] + sum of w[f] * x_pad[n, :, i*S : i*S + HH, j*S : j*S + WW] "
            "(a cross-correlation: the kernel is not flipped); pad P zeros on every side")
HINT_SHAPE = ("H_out = 1 + (H + 2P - HH) // S and W_out = 1 + (W + 2P - WW) // S, rounded down; "
              "HH is the kernel's height (w.shape[2]) and WW its width (w.shape[3])")
HINT_DX = ("dx_pad[n, :, window] += dout[n, f, i, j] * w[f] (+=, not =: windows overlap and all "
           "filters read the same input), same windows and stride as the forward, then crop P "
           "from each side: dx_pad[:, :, P:P + H, P:P + W] (careful with P = 0)")
HINT_DW = ("dw[f] += dout[n, f, i, j] * x_pad[n, :, window], with the padded input and the "
           "forward's windows")
HINT_DB = "db[f] = sum of dout[:, f, :, :]: sum over examples and positions, keep the filters"
HINT_POOL = ("out[n, c, i, j] = max of x[n, c, i*S : i*S + PH, j*S : j*S + PW], with "
             "H_out = 1 + (H - PH) // S; PH is the pool height, PW the pool width")
HINT_POOL_DX = ("each dout[n, c, i, j] goes to its window's maximum only, added with += (an "
                "entry can be the maximum of two overlapping windows); leave the other entries "
                "of the window as they are")
HINT_TIES = ("with ties the whole gradient goes to the first maximum of the window in row-major "
             "order (np.argmax of the flattened window), not to every entry equal to the max")


def _t(a):
    return torch.from_numpy(np.array(a, dtype=np.float64))


def _torch_conv(x, w, b, stride, pad, dout=None):
    """(out, dx, dw, db) from PyTorch, float64."""
    xt, wt, bt = (_t(a).requires_grad_(True) for a in (x, w, b))
    out = F.conv2d(xt, wt, bt, stride=stride, padding=pad)
    if dout is None:
        return out.detach().numpy(), None, None, None
    out.backward(_t(dout))
    return out.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()


def _torch_pool(x, ph, pw, stride, dout=None):
    xt = _t(x).requires_grad_(True)
    out = F.max_pool2d(xt, (ph, pw), stride)
    if dout is None:
        return out.detach().numpy(), None
    out.backward(_t(dout))
    return out.detach().numpy(), xt.grad.numpy()


def _out_size(size, kernel, pad, stride):
    return 1 + (size + 2 * pad - kernel) // stride


# --------------------------------------------------------------------------- convolution

CONV_CASES = [
    # x shape, w shape, stride, pad
    pytest.param((2, 3, 7, 7), (4, 3, 3, 3), 1, 1, id="basic_3x3_stride1_pad1"),
    pytest.param((3, 2, 8, 11), (3, 2, 3, 2), 2, 1, id="nonsquare_stride2_pad1"),
    pytest.param((1, 4, 5, 6), (2, 4, 1, 1), 1, 0, id="single_example_1x1_kernel_pad0"),
    pytest.param((2, 2, 7, 9), (3, 2, 3, 4), 3, 2, id="stride3_pad2_rounded_down"),
]


def _conv_problem(rng, x_shape, w_shape, stride, pad):
    x = rng.normal(size=x_shape)
    w = rng.normal(size=w_shape)
    b = rng.normal(size=w_shape[0])
    N, _, H, W = x_shape
    Fn, _, HH, WW = w_shape
    dout = rng.normal(size=(N, Fn, _out_size(H, HH, pad, stride), _out_size(W, WW, pad, stride)))
    return x, w, b, dout


def _student_conv_backward(student, x, w, b, dout, stride, pad):
    _, cache = call_keeping(student.conv_forward_naive,
                            x, w, b, {"stride": stride, "pad": pad}, keep=(1,))
    grads = student.conv_backward_naive(dout, cache)
    if not isinstance(grads, (tuple, list)) or len(grads) != 3:
        raise AssertionError("conv_backward_naive must return a tuple (dx, dw, db)")
    return grads


@pytest.mark.points(1)
@pytest.mark.parametrize("x_shape, w_shape, stride, pad", CONV_CASES)
def test_conv_forward_matches_torch(student, rng, x_shape, w_shape, stride, pad):
    x, w, b, _ = _conv_problem(rng, x_shape, w_shape, stride, pad)
    expected, _, _, _ = _torch_conv(x, w, b, stride, pad)
    out, _ = call_keeping(student.conv_forward_naive,
                          x, w, b, {"stride": stride, "pad": pad}, keep=(1,))
    name = f"out for x {x_shape}, w {w_shape}, stride {stride}, pad {pad}"
    if isinstance(out, np.ndarray) and out.shape != expected.shape:
        raise AssertionError(f"{name}: expected shape {expected.shape}, got {out.shape}. "
                             f"{HINT_SHAPE}")
    assert_close(out, expected, rtol=RTOL, atol=ATOL, name=name, hint=HINT_OUT)


@pytest.mark.points(1)
@pytest.mark.parametrize("x_shape, w_shape, stride, pad", CONV_CASES)
def test_conv_backward_dx_matches_torch(student, rng, x_shape, w_shape, stride, pad):
    x, w, b, dout = _conv_problem(rng, x_shape, w_shape, stride, pad)
    _, expected, _, _ = _torch_conv(x, w, b, stride, pad, dout)
    dx, _, _ = _student_conv_backward(student, x, w, b, dout, stride, pad)
    assert_close(dx, expected, rtol=RTOL, atol=ATOL,
                 name=f"dx for x {x_shape}, w {w_shape}, stride {stride}, pad {pad}",
                 hint=HINT_DX)


@pytest.mark.points(1)
@pytest.mark.parametrize("x_shape, w_shape, stride, pad", CONV_CASES)
def test_conv_backward_dw_matches_torch(student, rng, x_shape, w_shape, stride, pad):
    x, w, b, dout = _conv_problem(rng, x_shape, w_shape, stride, pad)
    _, _, expected, _ = _torch_conv(x, w, b, stride, pad, dout)
    _, dw, _ = _student_conv_backward(student, x, w, b, dout, stride, pad)
    assert_close(dw, expected, rtol=RTOL, atol=ATOL,
                 name=f"dw for x {x_shape}, w {w_shape}, stride {stride}, pad {pad}",
                 hint=HINT_DW)


@pytest.mark.points(1)
@pytest.mark.parametrize("x_shape, w_shape, stride, pad", CONV_CASES)
def test_conv_backward_db_matches_torch(student, rng, x_shape, w_shape, stride, pad):
    x, w, b, dout = _conv_problem(rng, x_shape, w_shape, stride, pad)
    _, _, _, expected = _torch_conv(x, w, b, stride, pad, dout)
    _, _, db = _student_conv_backward(student, x, w, b, dout, stride, pad)
    assert_close(db, expected, rtol=RTOL, atol=ATOL,
                 name=f"db for x {x_shape}, w {w_shape}, stride {stride}, pad {pad}",
                 hint=HINT_DB)


@pytest.mark.points(1)
def test_conv_forward_leaves_x_unchanged(student, rng):
    x, w, b, _ = _conv_problem(rng, (2, 2, 5, 6), (3, 2, 3, 3), 1, 2)
    out, _ = assert_inputs_unchanged(student.conv_forward_naive, x, w, b,
                                     {"stride": 1, "pad": 2})
    # Only a correct forward pass earns this point.
    assert_close(out, _torch_conv(x, w, b, 1, 2)[0], rtol=RTOL, atol=ATOL, name="out",
                 hint=HINT_OUT)


# ---------------------------------------------------------------------------- max pooling

POOL_CASES = [
    # x shape, pool height, pool width, stride
    pytest.param((2, 3, 8, 8), 2, 2, 2, id="2x2_stride2"),
    pytest.param((2, 2, 9, 11), 3, 3, 2, id="3x3_stride2_overlapping"),
    pytest.param((2, 2, 5, 7), 2, 3, 1, id="nonsquare_2x3_stride1"),
    pytest.param((1, 3, 8, 10), 3, 2, 3, id="single_example_3x2_stride3_rounded_down"),
]


def _pool_problem(rng, x_shape, ph, pw, stride, ties=False):
    if ties:  # few distinct values: most windows hold several maxima
        x = rng.integers(0, 3, size=x_shape).astype(np.float64)
    else:
        x = rng.normal(size=x_shape)
    N, C, H, W = x_shape
    dout = rng.normal(size=(N, C, _out_size(H, ph, 0, stride), _out_size(W, pw, 0, stride)))
    return x, dout


@pytest.mark.points(1)
@pytest.mark.parametrize("x_shape, ph, pw, stride", POOL_CASES)
def test_max_pool_forward_matches_torch(student, rng, x_shape, ph, pw, stride):
    x, _ = _pool_problem(rng, x_shape, ph, pw, stride)
    expected, _ = _torch_pool(x, ph, pw, stride)
    out, _ = call_keeping(student.max_pool_forward_naive,
                          x, {"pool_height": ph, "pool_width": pw, "stride": stride}, keep=(1,))
    assert_close(out, expected, rtol=RTOL, atol=ATOL,
                 name=f"out for x {x_shape}, pool {ph}x{pw}, stride {stride}", hint=HINT_POOL)


@pytest.mark.points(1)
@pytest.mark.parametrize("x_shape, ph, pw, stride", POOL_CASES)
def test_max_pool_backward_matches_torch(student, rng, x_shape, ph, pw, stride):
    x, dout = _pool_problem(rng, x_shape, ph, pw, stride)
    _, expected = _torch_pool(x, ph, pw, stride, dout)
    param = {"pool_height": ph, "pool_width": pw, "stride": stride}
    _, cache = call_keeping(student.max_pool_forward_naive, x, param, keep=(1,))
    dx = student.max_pool_backward_naive(dout, cache)
    assert_close(dx, expected, rtol=RTOL, atol=ATOL,
                 name=f"dx for x {x_shape}, pool {ph}x{pw}, stride {stride}", hint=HINT_POOL_DX)


TIE_CASES = [
    pytest.param((2, 2, 6, 6), 2, 2, 2, id="2x2_stride2"),
    pytest.param((1, 2, 7, 9), 3, 3, 2, id="3x3_stride2_overlapping"),
]


@pytest.mark.points(1)
@pytest.mark.parametrize("x_shape, ph, pw, stride", TIE_CASES)
def test_max_pool_backward_ties(student, rng, x_shape, ph, pw, stride):
    # Integer inputs in {0, 1, 2}: almost every window has tied maxima. PyTorch (CPU) sends the
    # gradient to the first maximum in row-major order, the convention the handout states.
    x, dout = _pool_problem(rng, x_shape, ph, pw, stride, ties=True)
    _, expected = _torch_pool(x, ph, pw, stride, dout)
    param = {"pool_height": ph, "pool_width": pw, "stride": stride}
    _, cache = call_keeping(student.max_pool_forward_naive, x, param, keep=(1,))
    dx = student.max_pool_backward_naive(dout, cache)
    assert_close(dx, expected, rtol=RTOL, atol=ATOL,
                 name=f"dx with tied maxima, pool {ph}x{pw}, stride {stride}", hint=HINT_TIES)


@pytest.mark.points(1)
def test_max_pool_forward_leaves_x_unchanged(student, rng):
    x, _ = _pool_problem(rng, (2, 2, 6, 6), 2, 2, 2)
    param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    out, _ = assert_inputs_unchanged(student.max_pool_forward_naive, x, param)
    assert_close(out, _torch_pool(x, 2, 2, 2)[0], rtol=RTOL, atol=ATOL, name="out",
                 hint=HINT_POOL)


# ------------------------------------------------------------------ bonus: fast convolution

FAST_CASES = [
    pytest.param((2, 3, 7, 7), (4, 3, 3, 3), 1, 1, id="basic_3x3_stride1_pad1"),
    pytest.param((2, 2, 7, 9), (3, 2, 3, 4), 3, 2, id="stride3_pad2_nonsquare"),
]
HINT_FAST = ("the fast functions must give the naive ones' results on every shape; check the "
             "order of the window entries in cols against w.reshape(F, -1), the strided slices "
             "(di : di + S * H_out : S), and the final reshape to (N, F, H_out, W_out)")


@pytest.mark.points(1, extra_credit=True)
@pytest.mark.parametrize("x_shape, w_shape, stride, pad", FAST_CASES)
def test_conv_forward_fast_matches_torch(student, rng, x_shape, w_shape, stride, pad):
    x, w, b, _ = _conv_problem(rng, x_shape, w_shape, stride, pad)
    out, _ = call_keeping(student.conv_forward_fast,
                          x, w, b, {"stride": stride, "pad": pad}, keep=(1,))
    assert_close(out, _torch_conv(x, w, b, stride, pad)[0], rtol=RTOL, atol=ATOL,
                 name=f"out of conv_forward_fast, stride {stride}, pad {pad}", hint=HINT_FAST)


def _fast_grads(student, x, w, b, dout, stride, pad):
    _, cache = call_keeping(student.conv_forward_fast,
                            x, w, b, {"stride": stride, "pad": pad}, keep=(1,))
    grads = student.conv_backward_fast(dout, cache)
    if not isinstance(grads, (tuple, list)) or len(grads) != 3:
        raise AssertionError("conv_backward_fast must return a tuple (dx, dw, db)")
    return grads


FAST_GRAD_CASE = ((2, 2, 7, 9), (3, 2, 3, 4), 2, 1)   # x, w, stride, pad: windows overlap


@pytest.mark.points(1, extra_credit=True)
@pytest.mark.parametrize("which", ["dx", "dw", "db"])
def test_conv_backward_fast_matches_torch(student, rng, which):
    x_shape, w_shape, stride, pad = FAST_GRAD_CASE
    x, w, b, dout = _conv_problem(rng, x_shape, w_shape, stride, pad)
    expected = dict(zip(("dx", "dw", "db"), _torch_conv(x, w, b, stride, pad, dout)[1:]))
    got = dict(zip(("dx", "dw", "db"), _fast_grads(student, x, w, b, dout, stride, pad)))
    assert_close(got[which], expected[which], rtol=RTOL, atol=ATOL,
                 name=f"{which} of conv_backward_fast, stride {stride}, pad {pad}",
                 hint=HINT_FAST)


SPEED_X, SPEED_W, SPEED_PARAM = (2, 3, 32, 32), (16, 3, 5, 5), {"stride": 1, "pad": 2}
SPEED_ROUNDS = 5
MIN_SPEEDUP = 10.0


def _speed_problem(k):
    """Input number k of the speed problem (every timed call gets new values, so a function
    that remembers its last answer gains nothing)."""
    rng = np.random.default_rng(20260918 + k)
    x = rng.normal(size=SPEED_X)
    w = rng.normal(size=SPEED_W)
    b = rng.normal(size=SPEED_W[0])
    dout = rng.normal(size=(SPEED_X[0], SPEED_W[0], SPEED_X[2], SPEED_X[3]))
    return x, w, b, dout


@functools.lru_cache(maxsize=None)
def _speed_expected():
    """PyTorch's (out, dx, dw, db) on input 0 of the speed problem: the fast functions must be
    right there, or a fast function that returns garbage would earn the speed points."""
    x, w, b, dout = _speed_problem(0)
    return _torch_conv(x, w, b, SPEED_PARAM["stride"], SPEED_PARAM["pad"], dout)


def _timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def _speedup(fast_call, naive_call, first_fast_time):
    """(best fast time, best naive time). ``fast_call(k)`` runs the student's fast function on
    input k (in the student process); ``naive_call()`` the reference's naive loops (here). They
    are timed in alternation so that both see the same load on the machine (a naive time
    measured earlier would make the test flaky on a busy grader); stops as soon as the
    required speed-up is shown."""
    fast_best, naive_best = first_fast_time, float("inf")
    for k in range(1, SPEED_ROUNDS + 1):
        naive_best = min(naive_best, _timed(naive_call)[0])
        if fast_best * MIN_SPEEDUP <= naive_best:
            break
        fast_best = min(fast_best, _timed(lambda: fast_call(k))[0])
        if fast_best * MIN_SPEEDUP <= naive_best:
            break
    return fast_best, naive_best


def _too_slow(fn_name, fast, naive, advice):
    return AssertionError(
        f"{fn_name} took {fast * 1e3:.2f} ms on x {SPEED_X}, w {SPEED_W}, stride 1, pad 2 "
        f"(best of several runs); the naive loops took {naive * 1e3:.0f} ms at the same time, "
        f"so it is {naive / fast:.1f} times faster, and at least {MIN_SPEEDUP:g} is required. "
        f"{advice}")


# The timed calls go through conv_speed.py, a public support module in the student's folder:
# it keeps the im2col cache in the student process, so copying the cache between processes
# is not timed as part of the student's function.

@pytest.mark.points(1, extra_credit=True)
@pytest.mark.time_limit(60)
def test_conv_forward_fast_speed(submission, reference):
    speed = submission.module("conv_speed")
    inputs = [_speed_problem(k)[:3] for k in range(SPEED_ROUNDS + 1)]

    def fast_call(k):
        x, w, b = inputs[k]
        return speed.forward_fast_output(x, w, b, SPEED_PARAM)

    first, out = _timed(lambda: fast_call(0))
    # Speed alone earns nothing: the result must be right.
    assert_close(out, _speed_expected()[0], rtol=RTOL, atol=ATOL,
                 name="out of conv_forward_fast on the speed problem", hint=HINT_FAST)
    x, w, b = inputs[0]
    fast, naive = _speedup(fast_call,
                           lambda: reference.conv_forward_naive(x, w, b, SPEED_PARAM), first)
    if fast * MIN_SPEEDUP > naive:
        raise _too_slow("conv_forward_fast", fast, naive,
                        "Loop over the HH * WW kernel offsets only (not over n, f, i, j) and "
                        "use one matrix product")


@functools.lru_cache(maxsize=None)
def _naive_cache(reference):
    x, w, b, _ = _speed_problem(0)
    return reference.conv_forward_naive(x, w, b, SPEED_PARAM)[1]


@pytest.mark.points(1, extra_credit=True)
@pytest.mark.time_limit(60)
def test_conv_backward_fast_speed(submission, reference):
    speed = submission.module("conv_speed")
    x, w, b, _ = _speed_problem(0)
    _, kept = speed.forward_fast_keep_cache(x, w, b, SPEED_PARAM)
    douts = [_speed_problem(k)[3] for k in range(SPEED_ROUNDS + 1)]

    def fast_call(k):
        return speed.backward_fast(douts[k], kept)

    first, grads = _timed(lambda: fast_call(0))
    if not isinstance(grads, (tuple, list)) or len(grads) != 3:
        raise AssertionError("conv_backward_fast must return a tuple (dx, dw, db)")
    for name, got, want in zip(("dx", "dw", "db"), grads, _speed_expected()[1:]):
        assert_close(got, want, rtol=RTOL, atol=ATOL,
                     name=f"{name} of conv_backward_fast on the speed problem", hint=HINT_FAST)
    naive_cache = _naive_cache(reference)
    fast, naive = _speedup(fast_call,
                           lambda: reference.conv_backward_naive(douts[0], naive_cache), first)
    if fast * MIN_SPEEDUP > naive:
        raise _too_slow("conv_backward_fast", fast, naive,
                        "Use matrix products for dw and dcols, and scatter dcols back with a "
                        "loop over the HH * WW kernel offsets only")
