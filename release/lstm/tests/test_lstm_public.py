"""Public checks for the LSTM assignment: run them with `autograder check` in the release folder.

They test your code against itself and against values you can work out by hand; the grader
also runs hidden tests (against PyTorch, on a single example, a single time step, very large
pre-activations, ...), so passing these is necessary but not sufficient.

Sizes: one step uses N=3, D=4, H=5; a sequence uses N=2, T=10, D=3, H=4 (H is never equal to
D, so mixing them up shows). Each numerical gradient below calls your forward function twice per
entry of the array it differentiates (at most 2 x 64 calls per test), which takes well under a
second.

Gradient tolerance. The gradient checks compare your analytic gradient ``a`` with a centred
difference ``n`` (float64, h = 1e-6) of your *own* forward pass by the normwise relative error
``||a - n|| / (||a|| + ||n||)`` (see ``autograder.checks``), and accept up to 1e-6:

* correct code gives 1e-10 to 1e-9 on these inputs (measured for every gradient here), so it
  passes with a margin of 1000x. An *elementwise* relative error would not: entries of a
  correct dWh that are nearly zero reach 1e-8 to 1e-6 elementwise, so a 1e-6 threshold there
  fails correct code;
* the mistakes these checks exist for (the dnext_h path into dc dropped, dprev_h or dprev_c not
  carried through time, weight gradients not summed over the steps, db averaged over the
  batch) give 1e-2 or more, 10,000x above the threshold.
"""

import numpy as np
import pytest

from autograder.checks import (assert_close, assert_grad_close, assert_inputs_unchanged,
                               assert_shape, call_keeping, numerical_gradient_of)

STEP = dict(N=3, D=4, H=5)
SEQ = dict(N=2, T=10, D=3, H=4)


def _weights(rng, D, H, scale=0.5):
    Wx = rng.normal(size=(D, 4 * H)) * scale
    Wh = rng.normal(size=(H, 4 * H)) * scale
    b = rng.normal(size=4 * H) * scale
    return Wx, Wh, b


def _step_problem(rng):
    N, D, H = STEP["N"], STEP["D"], STEP["H"]
    x = rng.normal(size=(N, D))
    prev_h = rng.normal(size=(N, H))
    prev_c = rng.normal(size=(N, H))
    return (x, prev_h, prev_c, *_weights(rng, D, H))


def _seq_problem(rng):
    N, T, D, H = SEQ["N"], SEQ["T"], SEQ["D"], SEQ["H"]
    x = rng.normal(size=(N, T, D))
    h0 = rng.normal(size=(N, H))
    return (x, h0, *_weights(rng, D, H))


# Constant gates: with Wx = Wh = 0 the pre-activation is the bias alone. These values give
# i = sigmoid(0) = 1/2, f = sigmoid(log 3) = 3/4, o = sigmoid(-log 3) = 1/4, g = tanh(atanh(1/2))
# = 1/2, all different, so a gate taken from the wrong block of columns shows.
GATE_I, GATE_F, GATE_O, GATE_G = 0.5, 0.75, 0.25, 0.5


def _constant_gate_bias(H):
    return np.concatenate([np.full(H, 0.0), np.full(H, np.log(3.0)),
                           np.full(H, -np.log(3.0)), np.full(H, np.arctanh(0.5))])


def _assert_output_gate_applied(next_h, next_c):
    """next_h = o * tanh(next_c) with o = sigmoid(...) strictly between 0 and 1, so every entry
    has |next_h| < |tanh(next_c)|: true of any correct step on random inputs, false of one that
    returns zeros or a constant."""
    next_h = np.asarray(next_h, dtype=np.float64)
    next_c = np.asarray(next_c, dtype=np.float64)
    bad = ~(np.abs(next_h) < np.abs(np.tanh(next_c)))
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise AssertionError(
            f"next_h = o * tanh(next_c) with an output gate o strictly between 0 and 1, so "
            f"|next_h| < |tanh(next_c)| in every entry; at {idx} next_h is {next_h[idx]:.6g} "
            f"and next_c is {next_c[idx]:.6g}")


def _own_numerical_gradient(fn, args, wrt, df, what="the input"):
    """The numerical gradient of your own function ``fn`` with respect to ``args[wrt]``, of the
    loss ``sum(output[j] * df[j])`` over the outputs ``j`` in ``df``. A gradient check of a
    function that does not depend on its input proves nothing (both gradients are zero), so
    that fails here with its own message."""
    numeric = numerical_gradient_of(fn, args, wrt, df)
    if not np.any(numeric):
        raise AssertionError(f"your forward pass does not change at all when {what} changes "
                             f"(its numerical derivative is zero everywhere), so your gradient "
                             f"cannot be checked: implement the forward pass first")
    return numeric


HINT_ORDER = ("the four blocks of H columns of the pre-activation are, in this order, i, f, o, g "
              "(not torch's i, f, g, o); sigmoid for i, f, o and tanh for g")


# ------------------------------------------------------------------------ lstm_step_forward


@pytest.mark.points(1)
def test_step_forward_shapes(student, rng):
    N, H = STEP["N"], STEP["H"]
    next_h, next_c, _ = call_keeping(student.lstm_step_forward, *_step_problem(rng), keep=(2,))
    assert_shape(next_h, (N, H), name="next_h")
    assert_shape(next_c, (N, H), name="next_c")
    _assert_output_gate_applied(next_h, next_c)


@pytest.mark.points(2)
def test_step_forward_constant_gates(student, rng):
    # Wx = Wh = 0: i = 1/2, f = 3/4, o = 1/4, g = 1/2 whatever x and prev_h are, so
    # next_c = 3/4 * prev_c + 1/4 and next_h = 1/4 * tanh(next_c).
    N, D, H = STEP["N"], STEP["D"], STEP["H"]
    x = rng.normal(size=(N, D))
    prev_h = rng.normal(size=(N, H))
    prev_c = rng.normal(size=(N, H))
    next_h, next_c, _ = call_keeping(
        student.lstm_step_forward, x, prev_h, prev_c, np.zeros((D, 4 * H)),
        np.zeros((H, 4 * H)), _constant_gate_bias(H), keep=(2,))
    expected_c = GATE_F * prev_c + GATE_I * GATE_G
    assert_close(next_c, expected_c, name="next_c",
                 hint="next_c = f * prev_c + i * g; " + HINT_ORDER)
    assert_close(next_h, GATE_O * np.tanh(expected_c), name="next_h",
                 hint="next_h = o * tanh(next_c); " + HINT_ORDER)


# ----------------------------------------------------------------------- lstm_step_backward


STEP_GRADS = ["dx", "dprev_h", "dprev_c", "dWx", "dWh", "db"]
STEP_ARGS = ["x", "prev_h", "prev_c", "Wx", "Wh", "b"]
STEP_GRAD_HINTS = {
    "dx": "dx is the pre-activation's gradient (N, 4H, blocks i, f, o, g) times Wx transposed",
    "dprev_h": "dprev_h is the pre-activation's gradient (N, 4H) times Wh transposed",
    "dprev_c": "dprev_c is dc times the forget gate f",
    "dWx": "dWx is x transposed times the pre-activation's gradient; the forget gate's gradient "
           "uses prev_c, the cell state before the step",
    "dWh": "dWh is prev_h transposed times the pre-activation's gradient; the forget gate's "
           "gradient uses prev_c, the cell state before the step",
    "db": "db sums the pre-activation's gradient over the batch axis (a sum, not a mean)",
}


def _constant_gate_step(rng):
    """A step with Wx = Wh = 0 (gates i = 1/2, f = 3/4, o = 1/4, g = 1/2), random upstream
    gradients, and the dprev_c worked out by hand from the docstring's formulas:
    next_c = f * prev_c + i * g, dc = dnext_c + dnext_h * o * (1 - tanh(next_c)**2),
    dprev_c = dc * f."""
    N, D, H = STEP["N"], STEP["D"], STEP["H"]
    args = (rng.normal(size=(N, D)), rng.normal(size=(N, H)), rng.normal(size=(N, H)),
            np.zeros((D, 4 * H)), np.zeros((H, 4 * H)), _constant_gate_bias(H))
    dnext_h, dnext_c = rng.normal(size=(N, H)), rng.normal(size=(N, H))
    next_c = GATE_F * args[2] + GATE_I * GATE_G
    dc = dnext_c + dnext_h * GATE_O * (1 - np.tanh(next_c) ** 2)
    return args, dnext_h, dnext_c, dc * GATE_F


HINT_DPREV_C = ("dprev_c = dc * f with dc = dnext_c + dnext_h * o * (1 - tanh(next_c)**2): "
                "next_c reaches the loss directly and through next_h; " + HINT_ORDER)


@pytest.mark.points(1)
def test_step_backward_shapes(student, rng):
    args, dnext_h, dnext_c, expected_dprev_c = _constant_gate_step(rng)
    _, _, cache = call_keeping(student.lstm_step_forward, *args, keep=(2,))
    grads = student.lstm_step_backward(dnext_h, dnext_c, cache)
    assert len(grads) == 6, f"lstm_step_backward should return 6 arrays, got {len(grads)}"
    for name, grad, arg in zip(STEP_GRADS, grads, args):
        assert_shape(grad, np.shape(arg), name=name)
    # With constant gates dprev_c can be worked out by hand, so the values are checked too.
    assert_close(grads[2], expected_dprev_c, name="dprev_c (Wx = Wh = 0)", hint=HINT_DPREV_C)


@pytest.mark.points(1)
def test_step_backward_does_not_modify_dnext_h_or_dnext_c(student, rng):
    # lstm_backward hands each step arrays it still uses, so the step must not change them.
    args, dnext_h, dnext_c, expected_dprev_c = _constant_gate_step(rng)
    _, _, cache = call_keeping(student.lstm_step_forward, *args, keep=(2,))
    try:
        grads = assert_inputs_unchanged(student.lstm_step_backward, dnext_h, dnext_c, cache)
    except AssertionError as e:
        named = ("dnext_h" if "argument 1" in str(e) else
                 "dnext_c" if "argument 2" in str(e) else "an argument")
        raise AssertionError(
            f"lstm_step_backward changed {named} in place: dnext_h and dnext_c belong to the "
            f"caller, so do not add into them (dnext_c += ...); compute "
            f"dc = dnext_c + dnext_h * o * (1 - tanh(next_c)**2) into a new variable") from None
    assert_close(grads[2], expected_dprev_c, name="dprev_c (Wx = Wh = 0)", hint=HINT_DPREV_C)


@pytest.mark.points(1)
@pytest.mark.parametrize("k", range(6), ids=STEP_GRADS)
def test_step_backward_gradient_check(student, rng, k):
    """One gradient of lstm_step_backward against a numerical derivative of your forward pass.

    The loss sum(next_h * dnext_h) + sum(next_c * dnext_c) reaches the inputs through both
    outputs, so the numerical gradient is summed over both. N=3, D=4, H=5: at most 2 x 100
    calls of lstm_step_forward. Normwise relative error <= 1e-6: correct code gives about
    1e-10 here, a dropped dnext_h path into dc or db averaged over the batch 1e-2 or more (see
    the module docstring for why the error is normwise).
    """
    args = list(_step_problem(rng))
    N, H = STEP["N"], STEP["H"]
    dnext_h = rng.normal(size=(N, H))
    dnext_c = rng.normal(size=(N, H))
    _, _, cache = call_keeping(student.lstm_step_forward, *args, keep=(2,))
    analytic = student.lstm_step_backward(dnext_h, dnext_c, cache)[k]
    numeric = _own_numerical_gradient(student.lstm_step_forward, args, k,
                                      {0: dnext_h, 1: dnext_c}, what=STEP_ARGS[k])
    assert_grad_close(analytic, numeric, name=STEP_GRADS[k],
                      hint="your gradient is not the derivative of your own forward pass. "
                           "Remember that next_c reaches the loss twice: "
                           "dc = dnext_c + dnext_h * o * (1 - tanh(next_c)**2); "
                           + STEP_GRAD_HINTS[STEP_GRADS[k]])


# ----------------------------------------------------------------------------- lstm_forward


@pytest.mark.points(1)
def test_forward_shapes(student, rng):
    N, T, H = SEQ["N"], SEQ["T"], SEQ["H"]
    h, _ = call_keeping(student.lstm_forward, *_seq_problem(rng), keep=(1,))
    h = assert_shape(h, (N, T, H), name="h")
    # Values too: hidden states o * tanh(c) lie strictly between -1 and 1, and those of random
    # inputs are not all the same number.
    if not np.all(np.abs(h) < 1):
        raise AssertionError("h holds values outside (-1, 1); h = o * tanh(c) with o between "
                             "0 and 1 cannot")
    if np.ptp(h) == 0:
        raise AssertionError(f"h holds the same value {float(h.flat[0])!r} in every entry; the "
                             f"hidden states of random inputs differ from step to step")


@pytest.mark.points(2)
def test_forward_constant_gates(student, rng):
    # Wx = Wh = 0 and c0 = 0: c_t = f * c_{t-1} + i * g, so c_t = i*g * (1 - f^(t+1)) / (1 - f)
    # after step t (t = 0, ..., T-1), and h_t = o * tanh(c_t). h0 plays no part here.
    N, T, D, H = SEQ["N"], SEQ["T"], SEQ["D"], SEQ["H"]
    x = rng.normal(size=(N, T, D))
    h0 = rng.normal(size=(N, H))
    h, _ = call_keeping(student.lstm_forward, x, h0, np.zeros((D, 4 * H)),
                        np.zeros((H, 4 * H)), _constant_gate_bias(H), keep=(1,))
    t = np.arange(1, T + 1)
    c = GATE_I * GATE_G * (1 - GATE_F ** t) / (1 - GATE_F)
    expected = np.broadcast_to((GATE_O * np.tanh(c))[None, :, None], (N, T, H))
    assert_close(h, expected, name="h",
                 hint="the cell state starts at zero (c0 = np.zeros_like(h0), not h0), h[:, t] "
                      "is the hidden state next_h of step t (not next_c); " + HINT_ORDER)


@pytest.mark.points(1)
def test_forward_first_step_is_a_step_from_zero_cell(student, rng):
    # h[:, 0] must be exactly your lstm_step_forward from (h0, c0 = 0).
    x, h0, Wx, Wh, b = _seq_problem(rng)
    h, _ = call_keeping(student.lstm_forward, x, h0, Wx, Wh, b, keep=(1,))
    h_first, c_first, _ = call_keeping(student.lstm_step_forward, x[:, 0, :], h0,
                                       np.zeros_like(h0), Wx, Wh, b, keep=(2,))
    _assert_output_gate_applied(h_first, c_first)
    h = assert_shape(h, (SEQ["N"], SEQ["T"], SEQ["H"]), name="h")
    assert_close(h[:, 0, :], h_first, name="h[:, 0, :]",
                 hint="the first step starts from prev_h = h0 and prev_c = zeros")


# ---------------------------------------------------------------------------- lstm_backward


SEQ_GRADS = ["dx", "dh0", "dWx", "dWh", "db"]
SEQ_ARGS = ["x", "h0", "Wx", "Wh", "b"]


@pytest.mark.points(1)
@pytest.mark.parametrize("k", range(5), ids=SEQ_GRADS)
def test_backward_gradient_check(student, rng, k):
    """One gradient of lstm_backward over T = 10 steps against a numerical derivative.

    The loss sum(h * dh) is differentiated numerically through your lstm_forward. N=2, T=10,
    D=3, H=4 keep it small: at most 2 x 64 calls of lstm_forward, well under a second.
    Normwise relative error <= 1e-6: correct code gives 1e-10 to 1e-9 here (the ten steps add a
    little rounding error), while dprev_h or dprev_c not carried through time, the steps walked
    in the wrong order, or dWx, dWh, db not summed over the steps give 1e-2 or more.
    """
    args = list(_seq_problem(rng))
    dh = rng.normal(size=(SEQ["N"], SEQ["T"], SEQ["H"]))
    _, cache = call_keeping(student.lstm_forward, *args, keep=(1,))
    grads = student.lstm_backward(dh, cache)
    assert len(grads) == 5, f"lstm_backward should return 5 arrays, got {len(grads)}"
    numeric = _own_numerical_gradient(student.lstm_forward, args, k, {0: dh}, what=SEQ_ARGS[k])
    assert_grad_close(grads[k], numeric, name=SEQ_GRADS[k],
                      hint="your gradient is not the derivative of your own lstm_forward. Go "
                           "through the steps in reverse; step t gets dh[:, t] + the dprev_h of "
                           "step t+1 and the dprev_c of step t+1; dWx, dWh and db are summed over "
                           "all steps")
