"""Hidden tests for mini-exam 1, variant A (leaky ReLU).

Expected values come from the definition, computed here on the trusted side; gradients are also
checked numerically in float64. Inputs for gradient checks stay 0.1 away from the kink at 0.
"""

import numpy as np
import pytest

from autograder.checks import assert_close, assert_grad_close, numerical_gradient

HINT_FORWARD = ("out is x where x > 0 and negative_slope * x where x <= 0; use the "
                "negative_slope argument, not a constant")
HINT_BACKWARD = ("dx is dout where x > 0 and negative_slope * dout where x <= 0; take "
                 "negative_slope from the cache, the one the forward pass was given")


def _leaky(x, slope):
    return np.where(x > 0, x, slope * x)


def _away_from_zero(rng, shape):
    return rng.uniform(0.1, 2.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)


@pytest.mark.points(1)
@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 4)])
def test_forward_any_shape(student, rng, shape):
    """1-D, 2-D and 3-D inputs, a random slope in [0.01, 0.5]."""
    x = rng.normal(size=shape)
    slope = float(rng.uniform(0.01, 0.5))
    out, _ = student.leaky_relu_forward(x, slope)
    assert_close(out, _leaky(x, slope), name="out", hint=HINT_FORWARD)


@pytest.mark.points(1)
def test_slope_zero_is_relu(student, rng):
    """negative_slope = 0 gives a plain ReLU, forward and backward."""
    x = _away_from_zero(rng, (4, 3))
    dout = rng.normal(size=(4, 3))
    out, cache = student.leaky_relu_forward(x, 0.0)
    assert_close(out, np.maximum(x, 0.0), name="out", hint=HINT_FORWARD)
    assert_close(student.leaky_relu_backward(dout, cache), dout * (x > 0), name="dx",
                 hint=HINT_BACKWARD)


@pytest.mark.points(2)
def test_backward_by_definition(student, rng):
    """dx against the definition, N=5, D=6, negative_slope = 0.1."""
    x = _away_from_zero(rng, (5, 6))
    dout = rng.normal(size=(5, 6))
    out, cache = student.leaky_relu_forward(x, 0.1)
    assert_close(out, _leaky(x, 0.1), name="out", hint=HINT_FORWARD)
    assert_close(student.leaky_relu_backward(dout, cache), np.where(x > 0, dout, 0.1 * dout),
                 name="dx", hint=HINT_BACKWARD)


@pytest.mark.points(2)
def test_backward_uses_the_forward_slope(student, rng):
    """The backward pass scales by the slope the forward pass got (0.3), not the default."""
    x = _away_from_zero(rng, (6,))
    dout = rng.normal(size=(6,))
    out, cache = student.leaky_relu_forward(x, 0.3)
    assert_close(out, _leaky(x, 0.3), name="out", hint=HINT_FORWARD)
    assert_close(student.leaky_relu_backward(dout, cache), np.where(x > 0, dout, 0.3 * dout),
                 name="dx", hint=HINT_BACKWARD)


@pytest.mark.points(1)
def test_backward_at_exact_zeros(student, rng):
    """Several exact zeros among random values: their gradient is negative_slope * dout."""
    x = _away_from_zero(rng, (3, 4))
    x[0, 1] = x[2, 3] = x[1, 0] = 0.0
    dout = rng.normal(size=(3, 4))
    _, cache = student.leaky_relu_forward(x, 0.25)
    assert_close(student.leaky_relu_backward(dout, cache), np.where(x > 0, dout, 0.25 * dout),
                 name="dx", hint="at x == 0 use the negative side (x > 0, not x >= 0)")


@pytest.mark.points(1)
@pytest.mark.parametrize("slope", [0.01, 0.2, 0.7])
def test_gradient_check(student, rng, slope):
    """Numerical gradient of the definition against your dx, for three slopes."""
    x = _away_from_zero(rng, (3, 4))
    dout = rng.normal(size=(3, 4))
    out, cache = student.leaky_relu_forward(x, slope)
    assert_close(out, _leaky(x, slope), name="out", hint=HINT_FORWARD)
    numeric = numerical_gradient(lambda v: _leaky(v, slope), x, dout)
    assert_grad_close(student.leaky_relu_backward(dout, cache), numeric, name="dx",
                      hint=HINT_BACKWARD)


@pytest.mark.points(1)
def test_backward_leaves_dout_alone(student, rng):
    """dout is the caller's array: the backward pass must not scale it in place."""
    x = _away_from_zero(rng, (4, 4))
    dout = rng.normal(size=(4, 4))
    _, cache = student.leaky_relu_forward(x, 0.1)
    dx, (dout_after, _), _ = student.leaky_relu_backward.call_returning_args(dout, cache)
    assert_close(dx, np.where(x > 0, dout, 0.1 * dout), name="dx", hint=HINT_BACKWARD)
    assert_close(dout_after, dout, rtol=0, atol=0, name="dout after the call",
                 hint="work on a copy: dx = np.where(...) or dout * mask build new arrays")
