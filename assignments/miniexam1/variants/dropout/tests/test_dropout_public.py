"""Public checks for mini-exam 1, variant B (inverted dropout): run them with `autograder check`.

They check the mask convention on values you can reproduce (``np.random.default_rng(seed)``,
keep where ``u < p``, divide by ``p``), test mode, and your backward pass against the numerical
gradient of your own forward pass. The grader also runs hidden tests, so passing these is
necessary but not sufficient.
"""

import numpy as np
import pytest

from autograder.checks import (assert_close, assert_grad_close, assert_shape,
                               numerical_gradient_of)

HINT_MASK = ("use rng = np.random.default_rng(seed) and one draw u = rng.random(x.shape); keep "
             "where u < p (p is the probability of KEEPING a unit) and divide the kept values "
             "by p")


def _expected_mask(shape, p, seed):
    """The scaled mask the convention gives: kept entries are 1 / p, dropped ones 0."""
    return (np.random.default_rng(seed).random(shape) < p) / p


@pytest.mark.points(2)
def test_train_mask_convention(student):
    """x = ones (4, 5), p = 0.6, seed = 0: out is the scaled mask itself."""
    out, _ = student.dropout_forward(np.ones((4, 5)), 0.6, "train", 0)
    out = assert_shape(out, (4, 5), name="out")
    assert_close(out, _expected_mask((4, 5), 0.6, 0), name="out", hint=HINT_MASK)


@pytest.mark.points(1)
def test_test_mode_is_identity(student, rng):
    """In test mode the layer returns x unchanged: no mask and no scaling."""
    x = rng.normal(size=(3, 6))
    out, _ = student.dropout_forward(x, 0.5, "test", 1)
    assert_close(out, x, name="out (test mode)",
                 hint="in test mode do nothing: inverted dropout already scaled in training")


@pytest.mark.points(1)
def test_train_keeps_the_expected_value(student):
    """x = ones (200, 100), p = 0.3: the mean of out is 1 within 0.05 (kept units are 1/p)."""
    out, _ = student.dropout_forward(np.ones((200, 100)), 0.3, "train", 7)
    assert_close(float(np.mean(out)), 1.0, atol=0.05, rtol=0, name="mean of out",
                 hint="divide the kept values by p, so the expected value of out is x")


@pytest.mark.points(2)
def test_backward_matches_numerical_gradient(student, rng):
    """Train mode, N=4, D=5, p = 0.5, seed = 3, a random upstream gradient."""
    x = rng.normal(size=(4, 5))
    dout = rng.normal(size=(4, 5))
    out, cache = student.dropout_forward(x, 0.5, "train", 3)
    assert_close(out, x * _expected_mask((4, 5), 0.5, 3), name="out", hint=HINT_MASK)
    dx = student.dropout_backward(dout, cache)
    numeric = numerical_gradient_of(student.dropout_forward, (x, 0.5, "train", 3), 0, {0: dout})
    assert_grad_close(dx, numeric, name="dx",
                      hint="dx is dout times the same scaled mask the forward pass used")


@pytest.mark.points(1)
def test_unknown_mode_raises_value_error(student):
    """mode = "eval" raises ValueError (and train mode works, so a layer that always raises
    earns nothing here)."""
    out, _ = student.dropout_forward(np.ones(8), 0.5, "train", 2)
    assert_close(out, _expected_mask((8,), 0.5, 2), name="out (train mode)", hint=HINT_MASK)
    with pytest.raises(ValueError):
        student.dropout_forward(np.ones(8), 0.5, "eval", 2)
