"""Hidden tests for mini-exam 1, variant B (inverted dropout).

Expected values follow the stated convention, computed here on the trusted side:
``rng = np.random.default_rng(seed)``, keep where ``rng.random(x.shape) < p``, divide by ``p``.
"""

import numpy as np
import pytest

from autograder.checks import assert_close, assert_grad_close, numerical_gradient

HINT_MASK = ("use rng = np.random.default_rng(seed) and one draw u = rng.random(x.shape); keep "
             "where u < p (p is the probability of KEEPING a unit) and divide the kept values "
             "by p")
HINT_TEST = "in test mode do nothing: no mask and no scaling"
HINT_BACKWARD = "dx is dout times the same scaled mask the forward pass used (train mode)"


def _mask(shape, p, seed):
    return (np.random.default_rng(seed).random(shape) < p) / p


@pytest.mark.points(1)
@pytest.mark.parametrize("shape", [(9,), (5, 7), (2, 3, 4)])
def test_train_any_shape(student, rng, shape):
    """Random x, p in [0.2, 0.9] and seed: out is x times the scaled mask."""
    x = rng.normal(size=shape)
    p = float(rng.uniform(0.2, 0.9))
    seed = int(rng.integers(0, 10_000))
    out, _ = student.dropout_forward(x, p, "train", seed)
    assert_close(out, x * _mask(shape, p, seed), name="out", hint=HINT_MASK)


@pytest.mark.points(1)
def test_p_one_keeps_everything(student, rng):
    """p = 1 keeps every unit unscaled: out equals x in train mode."""
    x = rng.normal(size=(4, 4))
    out, _ = student.dropout_forward(x, 1.0, "train", 5)
    assert_close(out, x, name="out (p = 1)", hint=HINT_MASK)


@pytest.mark.points(2)
def test_test_mode_backward_is_identity(student, rng):
    """Test mode, p = 0.4: out = x and dx = dout."""
    x = rng.normal(size=(3, 5))
    dout = rng.normal(size=(3, 5))
    out, cache = student.dropout_forward(x, 0.4, "test", 11)
    assert_close(out, x, name="out (test mode)", hint=HINT_TEST)
    assert_close(student.dropout_backward(dout, cache), dout, name="dx (test mode)",
                 hint="in test mode the layer is the identity, so dx = dout")


@pytest.mark.points(2)
def test_backward_train_by_definition(student, rng):
    """Train mode, p = 0.7, seed 21: dx = dout * mask."""
    x = rng.normal(size=(6, 4))
    dout = rng.normal(size=(6, 4))
    mask = _mask((6, 4), 0.7, 21)
    out, cache = student.dropout_forward(x, 0.7, "train", 21)
    assert_close(out, x * mask, name="out", hint=HINT_MASK)
    assert_close(student.dropout_backward(dout, cache), dout * mask, name="dx",
                 hint=HINT_BACKWARD)


@pytest.mark.points(2)
def test_gradient_check_train(student, rng):
    """Numerical gradient of the convention's forward pass against your dx, p = 0.35."""
    x = rng.normal(size=(3, 4))
    dout = rng.normal(size=(3, 4))
    out, cache = student.dropout_forward(x, 0.35, "train", 8)
    assert_close(out, x * _mask((3, 4), 0.35, 8), name="out", hint=HINT_MASK)
    numeric = numerical_gradient(lambda v: v * _mask((3, 4), 0.35, 8), x, dout)
    assert_grad_close(student.dropout_backward(dout, cache), numeric, name="dx",
                      hint=HINT_BACKWARD)


@pytest.mark.points(1)
def test_test_mode_does_not_scale(student):
    """Test mode with p = 0.5 on ones: every output is exactly 1 (not p, not 1/p)."""
    out, _ = student.dropout_forward(np.ones((5, 5)), 0.5, "test", 0)
    assert_close(out, np.ones((5, 5)), name="out (test mode)", hint=HINT_TEST)


@pytest.mark.points(1)
def test_forward_leaves_x_alone(student, rng):
    """x is the caller's array: the forward pass must not apply the mask in place."""
    x = rng.normal(size=(4, 6))
    (out, _), (x_after, *_), _ = student.dropout_forward.call_returning_args(x, 0.5, "train", 4)
    assert_close(out, x * _mask((4, 6), 0.5, 4), name="out", hint=HINT_MASK)
    assert_close(x_after, x, rtol=0, atol=0, name="x after the call",
                 hint="work on a copy: x * mask builds a new array, x *= mask does not")


@pytest.mark.points(1)
def test_backward_leaves_dout_alone(student, rng):
    """dout is the caller's array: the backward pass must not scale it in place."""
    x = rng.normal(size=(4, 6))
    dout = rng.normal(size=(4, 6))
    _, cache = student.dropout_forward(x, 0.5, "train", 9)
    dx, (dout_after, _), _ = student.dropout_backward.call_returning_args(dout, cache)
    assert_close(dx, dout * _mask((4, 6), 0.5, 9), name="dx", hint=HINT_BACKWARD)
    assert_close(dout_after, dout, rtol=0, atol=0, name="dout after the call",
                 hint="work on a copy: dout * mask builds a new array")
