"""Public checks for mini-exam 1, variant A (leaky ReLU): run them with `autograder check`.

They check your layer on values you can work out by hand and against the numerical gradient of
your own forward pass. The grader also runs hidden tests (other shapes and slopes, the gradient
against the definition), so passing these is necessary but not sufficient.
"""

import numpy as np
import pytest

from autograder.checks import (assert_close, assert_grad_close, assert_inputs_unchanged,
                               assert_shape, numerical_gradient_of)

HINT_FORWARD = ("out is x where x > 0 and negative_slope * x where x <= 0; use the "
                "negative_slope argument, not a constant")
HINT_BACKWARD = ("dx is dout where x > 0 and negative_slope * dout where x <= 0: the derivative "
                 "of the layer times the upstream gradient, not the output times it")


def _away_from_zero(rng, shape):
    """Inputs at least 0.1 away from the kink at 0, where a numerical gradient is exact."""
    return rng.uniform(0.1, 2.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)


@pytest.mark.points(2)
def test_forward_by_hand(student):
    """negative_slope = 0.1: negative entries are scaled by 0.1, positive ones kept."""
    x = np.array([[-2.0, -0.5, 0.5], [1.0, -1.0, 3.0]])
    out, _ = student.leaky_relu_forward(x, 0.1)
    out = assert_shape(out, (2, 3), name="out")
    assert_close(out, np.array([[-0.2, -0.05, 0.5], [1.0, -0.1, 3.0]]), name="out",
                 hint=HINT_FORWARD)


@pytest.mark.points(1)
def test_forward_uses_the_slope_argument(student):
    """The same input with negative_slope = 0.3 and with the default 0.01."""
    x = np.array([-4.0, -1.0, 2.0])
    out, _ = student.leaky_relu_forward(x, 0.3)
    assert_close(out, np.array([-1.2, -0.3, 2.0]), name="out (negative_slope=0.3)",
                 hint=HINT_FORWARD)
    out, _ = student.leaky_relu_forward(x)
    assert_close(out, np.array([-0.04, -0.01, 2.0]), name="out (default negative_slope)",
                 hint="the default negative_slope is 0.01")


@pytest.mark.points(1)
def test_zero_is_on_the_negative_side(student):
    """At x == 0 the output is 0 and the gradient is negative_slope * dout."""
    x = np.array([0.0, 1.0, -1.0])
    out, cache = student.leaky_relu_forward(x, 0.2)
    assert_close(out, np.array([0.0, 1.0, -0.2]), name="out", hint=HINT_FORWARD)
    dx = student.leaky_relu_backward(np.array([5.0, 5.0, 5.0]), cache)
    assert_close(dx, np.array([1.0, 5.0, 1.0]), name="dx",
                 hint="at x == 0 use the negative side: the test is x > 0, not x >= 0")


@pytest.mark.points(2)
def test_backward_matches_numerical_gradient(student, rng):
    """N=4, D=5, negative_slope = 0.05, a random upstream gradient."""
    x = _away_from_zero(rng, (4, 5))
    dout = rng.normal(size=(4, 5))
    out, cache = student.leaky_relu_forward(x, 0.05)
    assert_close(out, np.where(x > 0, x, 0.05 * x), name="out", hint=HINT_FORWARD)
    dx = student.leaky_relu_backward(dout, cache)
    numeric = numerical_gradient_of(student.leaky_relu_forward, (x, 0.05), 0, {0: dout})
    assert_grad_close(dx, numeric, name="dx", hint=HINT_BACKWARD)


@pytest.mark.points(1)
def test_inputs_are_not_modified(student, rng):
    """Neither x (forward) nor dout (backward) is changed in place."""
    x = _away_from_zero(rng, (3, 4))
    out, cache = assert_inputs_unchanged(student.leaky_relu_forward, x, 0.1)
    assert_close(out, np.where(x > 0, x, 0.1 * x), name="out", hint=HINT_FORWARD)
    dout = rng.normal(size=(3, 4))
    dx = assert_inputs_unchanged(student.leaky_relu_backward, dout, cache)
    assert_close(dx, np.where(x > 0, dout, 0.1 * dout), name="dx", hint=HINT_BACKWARD)
