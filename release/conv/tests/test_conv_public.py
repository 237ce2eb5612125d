"""Public checks for the convolution assignment: run them with `autograder check` in the release
folder.

They test your code against values worked out by hand, against output shapes from the formula
``H_out = 1 + (H + 2P - HH) // S``, and against centred-difference derivatives of your *own*
forward passes (float64). The grader also runs hidden tests (comparisons with PyTorch on other
shapes, strides and paddings, ties in max pooling, inputs left unchanged, the speed of the
bonus functions), so passing these is necessary but not sufficient.

Sizes, so that you know what to expect from plain loops: the largest input here is
x of shape (2, 2, 5, 6) for the convolution gradient checks (about 250 calls of your forward
pass each) and (1, 2, 7, 7) for the pooling gradient check. Every test has 30 seconds.
"""

import numpy as np
import pytest

from autograder.checks import (assert_close, assert_grad_close, assert_inputs_unchanged,
                               assert_shape, call_keeping, numerical_gradient_of)


def _out_size(size, kernel, pad, stride):
    """The output size formula of the handout (rounded down)."""
    return 1 + (size + 2 * pad - kernel) // stride


def _own_numerical_gradient(forward, args, wrt, dout):
    """The numerical gradient of the loss ``sum(out * dout)`` of your own forward pass (``out``
    its first output) with respect to ``args[wrt]``. A gradient check of a function that does
    not depend on its input proves nothing (both gradients are zero), so that fails here with
    its own message."""
    numeric = numerical_gradient_of(forward, args, wrt, {0: dout})
    if not np.any(numeric):
        raise AssertionError("your forward pass does not change at all when this input changes "
                             "(its numerical derivative is zero everywhere), so your gradient "
                             "cannot be checked: implement the forward pass first")
    return numeric


def _first_window(x, w, b, pad):
    """out[:, :, 0, 0] by the definition: each filter times the top-left window of the padded
    input, summed, plus the bias."""
    HH, WW = w.shape[2:]
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    return np.einsum("nchw,fchw->nf", x_pad[:, :, :HH, :WW], w) + b


HINT_SHAPE = ("the output has shape (N, F, H_out, W_out) with H_out = 1 + (H + 2P - HH) // S "
              "and W_out = 1 + (W + 2P - WW) // S (rounded down); use HH for the height and WW "
              "for the width, and the stride in both")


def _assert_shape_with_hint(value, shape, name, hint):
    try:
        assert_shape(value, shape, name=name)
    except AssertionError as e:
        raise AssertionError(f"{e}. {hint}") from None


# ------------------------------------------------------------------------- conv forward

SHAPE_CASES = [
    pytest.param((2, 3, 7, 7), (4, 3, 3, 3), 1, 1, id="stride1_pad1"),
    pytest.param((2, 3, 8, 11), (3, 3, 3, 2), 2, 1, id="stride2_pad1_nonsquare"),
    pytest.param((1, 2, 7, 9), (3, 2, 3, 4), 3, 2, id="stride3_pad2_rounded_down"),
]


@pytest.mark.points(1)
@pytest.mark.parametrize("x_shape, w_shape, stride, pad", SHAPE_CASES)
def test_conv_forward_output_shape(student, rng, x_shape, w_shape, stride, pad):
    x = rng.normal(size=x_shape)
    w = rng.normal(size=w_shape)
    b = rng.normal(size=w_shape[0])
    out, _ = call_keeping(student.conv_forward_naive,
                          x, w, b, {"stride": stride, "pad": pad}, keep=(1,))
    N, _, H, W = x_shape
    F, _, HH, WW = w_shape
    _assert_shape_with_hint(
        out, (N, F, _out_size(H, HH, pad, stride), _out_size(W, WW, pad, stride)),
        f"out (x {x_shape}, w {w_shape}, stride {stride}, pad {pad})", HINT_SHAPE)
    # One value too, by the definition: the top-left output of every example and filter.
    assert_close(np.asarray(out)[:, :, 0, 0], _first_window(x, w, b, pad),
                 name="out[:, :, 0, 0]",
                 hint="out[n, f, 0, 0] = sum(w[f] * x_pad[n, :, 0:HH, 0:WW]) + b[f], with x_pad "
                      "the input padded with P zeros on every side")


@pytest.mark.points(1)
def test_conv_forward_known_values_1x2_kernel(student):
    # x = [[0 1 2 3], [4 5 6 7], [8 9 10 11]], kernel [[1, 2]], bias 1, stride 1, no padding:
    # out[i, j] = x[i, j] + 2 * x[i, j + 1] + 1. Worked out by hand.
    x = np.arange(12, dtype=np.float64).reshape(1, 1, 3, 4)
    w = np.array([[[[1.0, 2.0]]]])
    b = np.array([1.0])
    out, _ = call_keeping(student.conv_forward_naive, x, w, b, {"stride": 1, "pad": 0}, keep=(1,))
    expected = np.array([[[[3.0, 6.0, 9.0], [15.0, 18.0, 21.0], [27.0, 30.0, 33.0]]]])
    assert_close(out, expected, name="out",
                 hint="out[i, j] = sum of w * (the window starting at row i, column j) + b; "
                      "do not flip the kernel (this is a cross-correlation), and use the "
                      "kernel's height HH = 1 and width WW = 2 in the right places")


@pytest.mark.points(1)
def test_conv_forward_known_values_stride2_pad1(student):
    # x: a 4x4 image of ones; a 3x3 kernel of ones, bias 0, stride 2, pad 1.
    # Output size 1 + (4 + 2 - 3) // 2 = 2 (3 / 2 rounded down). Each output counts the ones
    # its window covers in the padded image: the corner windows see 2x2, 2x3, 3x2, 3x3 ones.
    x = np.ones((1, 1, 4, 4))
    w = np.ones((1, 1, 3, 3))
    b = np.zeros(1)
    out, _ = call_keeping(student.conv_forward_naive, x, w, b, {"stride": 2, "pad": 1}, keep=(1,))
    expected = np.array([[[[4.0, 6.0], [6.0, 9.0]]]])
    assert_close(out, expected, name="out",
                 hint="pad symmetrically (P zeros above, below, left and right), move the "
                      "window by S positions, and round the output size down")


def _one_by_one_expected(x, w, b):
    """A 1x1 convolution with stride 1 and pad 1: inside, every output pixel mixes the channels
    of the input pixel under it (out = w @ x + b); on the 1-pixel border the window only sees
    padding, so the output is the bias."""
    N, C, H, W = x.shape
    F = w.shape[0]
    expected = np.empty((N, F, H + 2, W + 2))
    expected[:] = b[None, :, None, None]
    expected[:, :, 1:-1, 1:-1] += np.einsum("fc,nchw->nfhw", w[:, :, 0, 0], x)
    return expected


@pytest.mark.points(1)
def test_conv_forward_1x1_kernel_mixes_channels(student, rng):
    x = rng.normal(size=(2, 3, 4, 5))
    w = rng.normal(size=(2, 3, 1, 1))
    b = rng.normal(size=2)
    out, _ = call_keeping(student.conv_forward_naive, x, w, b, {"stride": 1, "pad": 1}, keep=(1,))
    assert_close(out, _one_by_one_expected(x, w, b), name="out (1x1 kernel, pad 1)",
                 hint="every filter sums over all C input channels and adds its own bias b[f]; "
                      "the padded border sees only zeros, so there out equals the bias")


@pytest.mark.points(1)
def test_conv_forward_does_not_modify_x(student, rng):
    x = rng.normal(size=(2, 3, 4, 5))
    w = rng.normal(size=(2, 3, 1, 1))
    b = rng.normal(size=2)
    out, _ = assert_inputs_unchanged(student.conv_forward_naive, x, w, b,
                                     {"stride": 1, "pad": 1})
    # The point is for a working forward pass that leaves x alone, so the result must be right.
    assert_close(out, _one_by_one_expected(x, w, b), name="out (1x1 kernel, pad 1)")


# ------------------------------------------------------------------------ conv backward

GRAD_PARAM = {"stride": 2, "pad": 1}


def _grad_problem(rng):
    """x (2, 2, 5, 6), w (3, 2, 3, 2), stride 2, pad 1: output (2, 3, 3, 4). The 3-row kernel
    with stride 2 makes windows overlap along the height."""
    x = rng.normal(size=(2, 2, 5, 6))
    w = rng.normal(size=(3, 2, 3, 2))
    b = rng.normal(size=3)
    dout = rng.normal(size=(2, 3, 3, 4))
    return x, w, b, dout


@pytest.mark.points(1)
def test_conv_backward_shapes(student, rng):
    x, w, b, dout = _grad_problem(rng)
    _, cache = call_keeping(student.conv_forward_naive, x, w, b, GRAD_PARAM, keep=(1,))
    dx, dw, db = student.conv_backward_naive(dout, cache)
    assert_shape(dx, x.shape, name="dx")
    assert_shape(dw, w.shape, name="dw")
    assert_shape(db, b.shape, name="db")
    # One value worked out by hand: b[f] is added to every output of filter f, so db[f] is the
    # sum of dout[:, f].
    assert_close(db, dout.sum(axis=(0, 2, 3)), name="db",
                 hint="db[f] is the sum of dout[:, f, :, :] (over examples and positions)")


@pytest.mark.points(2)
def test_conv_backward_dx_gradient_check(student, rng):
    x, w, b, dout = _grad_problem(rng)
    _, cache = call_keeping(student.conv_forward_naive, x, w, b, GRAD_PARAM, keep=(1,))
    dx, _, _ = student.conv_backward_naive(dout, cache)
    numeric = _own_numerical_gradient(student.conv_forward_naive, (x, w, b, GRAD_PARAM), 0, dout)
    assert_grad_close(dx, numeric, name="dx",
                      hint="dx_pad[n, :, window] += dout[n, f, i, j] * w[f] for every output "
                           "(accumulate with +=: windows overlap and all filters read the same "
                           "input), then crop P rows/columns from each side of dx_pad")


@pytest.mark.points(2)
def test_conv_backward_dw_gradient_check(student, rng):
    x, w, b, dout = _grad_problem(rng)
    _, cache = call_keeping(student.conv_forward_naive, x, w, b, GRAD_PARAM, keep=(1,))
    _, dw, _ = student.conv_backward_naive(dout, cache)
    numeric = _own_numerical_gradient(student.conv_forward_naive, (x, w, b, GRAD_PARAM), 1, dout)
    assert_grad_close(dw, numeric, name="dw",
                      hint="dw[f] += dout[n, f, i, j] * x_pad[n, :, window] for every (n, i, j); "
                           "use the padded input and the same windows (stride) as the forward")


@pytest.mark.points(1)
def test_conv_backward_db_gradient_check(student, rng):
    x, w, b, dout = _grad_problem(rng)
    _, cache = call_keeping(student.conv_forward_naive, x, w, b, GRAD_PARAM, keep=(1,))
    _, _, db = student.conv_backward_naive(dout, cache)
    numeric = _own_numerical_gradient(student.conv_forward_naive, (x, w, b, GRAD_PARAM), 2, dout)
    assert_grad_close(db, numeric, name="db",
                      hint="db[f] is the sum of dout[:, f, :, :] (over examples and positions)")


# ---------------------------------------------------------------------------- max pool

POOL_SHAPE_CASES = [
    pytest.param((2, 3, 8, 8), 2, 2, 2, id="2x2_stride2"),
    pytest.param((1, 2, 7, 10), 3, 3, 2, id="3x3_stride2_overlapping"),
]


@pytest.mark.points(1)
@pytest.mark.parametrize("x_shape, ph, pw, stride", POOL_SHAPE_CASES)
def test_max_pool_forward_output_shape(student, rng, x_shape, ph, pw, stride):
    x = rng.normal(size=x_shape)
    out, _ = call_keeping(student.max_pool_forward_naive,
                          x, {"pool_height": ph, "pool_width": pw, "stride": stride}, keep=(1,))
    N, C, H, W = x_shape
    _assert_shape_with_hint(
        out, (N, C, _out_size(H, ph, 0, stride), _out_size(W, pw, 0, stride)),
        f"out (x {x_shape}, pool {ph}x{pw}, stride {stride})",
        "pooling keeps N and C; H_out = 1 + (H - PH) // S and W_out = 1 + (W - PW) // S "
        "(no padding, rounded down)")
    # One value too: the top-left output is the maximum of the top-left window.
    assert_close(np.asarray(out)[:, :, 0, 0], x[:, :, :ph, :pw].max(axis=(2, 3)),
                 name="out[:, :, 0, 0]",
                 hint="out[n, c, 0, 0] is the maximum of x[n, c, 0:PH, 0:PW]")


@pytest.mark.points(1)
def test_max_pool_forward_known_values(student):
    # 2x2 windows, stride 2, on [[0 1 2 3], [4 5 6 7], [8 9 10 11], [12 13 14 15]]:
    # the maxima are the bottom-right entries of the four windows.
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    out, _ = call_keeping(student.max_pool_forward_naive,
                          x, {"pool_height": 2, "pool_width": 2, "stride": 2}, keep=(1,))
    assert_close(out, np.array([[[[5.0, 7.0], [13.0, 15.0]]]]), name="out",
                 hint="out[n, c, i, j] is the maximum of x[n, c, i*S : i*S + PH, j*S : j*S + PW]")


@pytest.mark.points(2)
def test_max_pool_backward_gradient_check(student, rng):
    # 3x3 windows with stride 2 overlap: an entry on a shared row or column can be the maximum
    # of two windows and then receives both upstream gradients. Distinct values 0.1 apart, so
    # no window has a tie and the centred difference is exact.
    param = {"pool_height": 3, "pool_width": 3, "stride": 2}
    x = rng.permutation(98).reshape(1, 2, 7, 7) * 0.1
    dout = rng.normal(size=(1, 2, 3, 3))
    _, cache = call_keeping(student.max_pool_forward_naive, x, param, keep=(1,))
    dx = student.max_pool_backward_naive(dout, cache)
    numeric = _own_numerical_gradient(student.max_pool_forward_naive, (x, param), 0, dout)
    assert_grad_close(dx, numeric, name="dx",
                      hint="each dout[n, c, i, j] goes to the position of its window's maximum; "
                           "add it there with += (overlapping windows can share a maximum) and "
                           "do not overwrite the rest of the window")


@pytest.mark.points(1)
def test_max_pool_backward_tie_convention(student):
    # Window 1 = [[1, 3], [3, 0]]: the maximum 3 appears twice; the first in row-major order is
    # at (0, 1). Window 2 = [[2, 2], [2, 2]]: all tied; the first is its top-left (0, 2).
    x = np.array([[[[1.0, 3.0, 2.0, 2.0],
                    [3.0, 0.0, 2.0, 2.0]]]])
    dout = np.array([[[[10.0, 20.0]]]])
    _, cache = call_keeping(student.max_pool_forward_naive,
                            x, {"pool_height": 2, "pool_width": 2, "stride": 2}, keep=(1,))
    dx = student.max_pool_backward_naive(dout, cache)
    expected = np.array([[[[0.0, 10.0, 20.0, 0.0],
                           [0.0, 0.0, 0.0, 0.0]]]])
    assert_close(dx, expected, name="dx",
                 hint="when several entries tie for the maximum, the whole upstream gradient "
                      "goes to the first of them in row-major order (np.argmax of the "
                      "flattened window), not to all of them")


# ------------------------------------------------------------------ bonus: fast convolution


@pytest.mark.points(1, extra_credit=True)
def test_conv_forward_fast_matches_naive(student, rng):
    x = rng.normal(size=(2, 3, 8, 11))
    w = rng.normal(size=(4, 3, 3, 2))
    b = rng.normal(size=4)
    param = {"stride": 2, "pad": 1}
    naive, _ = call_keeping(student.conv_forward_naive, x, w, b, param, keep=(1,))
    fast, _ = call_keeping(student.conv_forward_fast, x, w, b, param, keep=(1,))
    assert_close(fast, naive, rtol=1e-8, atol=1e-10, name="out of conv_forward_fast",
                 hint="your fast and naive forward passes disagree, so one of them is wrong "
                      "(if the other forward tests pass, it is the fast one): check the order "
                      "of the window entries in cols against w.reshape(F, -1) and the final "
                      "reshape to (N, F, H_out, W_out)")
    # Agreeing is not enough when both are wrong the same way (both return zeros, say).
    assert_close(np.asarray(fast)[:, :, 0, 0], _first_window(x, w, b, 1),
                 name="out[:, :, 0, 0] of conv_forward_fast",
                 hint="out[n, f, 0, 0] = sum(w[f] * x_pad[n, :, 0:HH, 0:WW]) + b[f]")


@pytest.mark.points(1, extra_credit=True)
def test_conv_backward_fast_matches_naive(student, rng):
    x = rng.normal(size=(2, 3, 8, 11))
    w = rng.normal(size=(4, 3, 3, 2))
    b = rng.normal(size=4)
    param = {"stride": 2, "pad": 1}
    dout = rng.normal(size=(2, 4, 4, 6))
    _, cache = call_keeping(student.conv_forward_naive, x, w, b, param, keep=(1,))
    naive = student.conv_backward_naive(dout, cache)
    _, cache_fast = call_keeping(student.conv_forward_fast, x, w, b, param, keep=(1,))
    fast = student.conv_backward_fast(dout, cache_fast)
    for name, got, want in zip(("dx", "dw", "db"), fast, naive):
        assert_close(got, want, rtol=1e-8, atol=1e-10, name=f"{name} of conv_backward_fast",
                     hint="your fast and naive backward passes disagree, so one of them is "
                          "wrong (if the gradient checks above pass, it is the fast one): "
                          "dcols must be added back into dx_pad with +=, slice by slice")
    assert_close(fast[2], dout.sum(axis=(0, 2, 3)), name="db of conv_backward_fast",
                 hint="db[f] is the sum of dout[:, f, :, :] (over examples and positions)")
