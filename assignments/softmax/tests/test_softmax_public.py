"""Public checks for the softmax assignment: run them with `autograder check` in the release
folder. They only test your code against itself and against values you can work out by hand
(a numerical gradient of your own loss, the loss of uniform scores); the grader also runs hidden
tests, so passing these is necessary but not sufficient.
"""

import numpy as np
import pytest

from autograder.checks import (assert_close, assert_grad_close, assert_shape,
                               numerical_gradient_of)


def _labels(rng, n, c):
    """Labels that use several different classes (so that indexing mistakes show up)."""
    return rng.permutation(np.arange(n) % c)


def _own_numerical_gradient(loss_fn, args, wrt, what):
    """The numerical gradient of the loss (the first output) of your own function ``loss_fn``
    with respect to ``args[wrt]``. A gradient check of a loss that does not depend on its input
    proves nothing (both gradients are zero), so that fails here with its own message."""
    numeric = numerical_gradient_of(loss_fn, args, wrt, {0: None})
    if not np.any(numeric):
        raise AssertionError(f"your loss does not change at all when {what} changes (its "
                             f"numerical derivative is zero everywhere), so your gradient "
                             f"cannot be checked: compute the loss from the scores first")
    return numeric


# ---------------------------------------------------------------------------- softmax_loss


@pytest.mark.points(1)
def test_softmax_loss_shapes(student, rng):
    x = rng.normal(size=(5, 4))
    y = _labels(rng, 5, 4)
    loss, dx = student.softmax_loss(x, y)
    loss = assert_shape(loss, (), name="loss")
    dx = assert_shape(dx, (5, 4), name="dx")
    # Values any correct answer has, whatever the scores: a positive finite loss; each row of
    # dx = (softmax - onehot) / N sums to 0 and is negative only at the correct class.
    if not (np.isfinite(loss) and loss > 0):
        raise AssertionError(f"loss is {float(loss)!r}: a cross-entropy loss of random scores "
                             f"is a positive finite number")
    assert_close(dx.sum(axis=1), np.zeros(5), atol=1e-9, name="the row sums of dx",
                 hint="each row of dx = (softmax(x) - onehot(y)) / N sums to 0: the "
                      "probabilities sum to 1 and the one-hot row subtracts 1")
    if not np.all(dx[np.arange(5), y] < 0):
        raise AssertionError("dx[i, y[i]] should be negative (p - 1 < 0 at the correct class, "
                             "divided by N)")


@pytest.mark.points(1)
def test_softmax_loss_of_uniform_scores_is_log_c(student):
    # All scores equal: every class has probability 1/C, so every example loses log(C).
    n, c = 4, 10
    loss, _ = student.softmax_loss(np.zeros((n, c)), np.arange(n))
    assert_close(loss, np.log(c), name="loss",
                 hint="with equal scores softmax gives 1/C per class, so the loss is log(C); "
                      "check that you take the mean (not the sum) over examples")


@pytest.mark.points(1)
def test_softmax_loss_gradient_of_uniform_scores(student):
    # dx = (softmax - onehot) / N = (1/C - onehot) / N
    n, c = 4, 10
    y = np.array([3, 0, 9, 3])
    _, dx = student.softmax_loss(np.zeros((n, c)), y)
    expected = np.full((n, c), 1.0 / c)
    expected[np.arange(n), y] -= 1.0
    expected /= n
    assert_close(dx, expected, name="dx",
                 hint="dx[i, j] should be (1/C - [j == y[i]]) / N here: subtract 1 only at "
                      "(i, y[i]) and divide by N")


@pytest.mark.points(1)
def test_softmax_loss_correct_class_far_below_max(student):
    # Scores [0, 0, -1000] with correct class 2: p = e^-1000 / (2 + e^-1000) underflows to 0
    # in float64, but the loss is finite: -(-1000) + log(e^0 + e^0 + e^-1000) = 1000 + log 2.
    loss, _ = student.softmax_loss(np.array([[0.0, 0.0, -1000.0]]), np.array([2]))
    assert_close(loss, 1000.0 + np.log(2.0), rtol=1e-9, name="loss",
                 hint="the probability of the correct class underflows to 0 here, and "
                      "-log(0) is inf: compute the log-probabilities directly, "
                      "log p = (s - max) - log(sum(exp(s - max))) (log-sum-exp), instead of "
                      "taking the log of the probabilities")


@pytest.mark.points(2)
def test_softmax_loss_gradient_check(student, rng):
    # Compares your dx with a centred-difference derivative of your own loss.
    x = rng.normal(size=(5, 4))
    y = _labels(rng, 5, 4)
    _, dx = student.softmax_loss(x, y)
    numeric = _own_numerical_gradient(student.softmax_loss, (x, y), 0, "x")
    assert_grad_close(dx, numeric, name="dx",
                      hint="your dx is not the derivative of your own loss, so one of them is "
                           "wrong: the loss is the mean of -log softmax(x)[i, y[i]] and dx is "
                           "(softmax(x) - onehot(y)) / N")


# ------------------------------------------------------------------ softmax_loss_vectorized


@pytest.mark.points(1)
def test_vectorized_shapes(student, rng):
    W = rng.normal(size=(3, 4)) * 0.01
    X = rng.normal(size=(6, 3))
    y = _labels(rng, 6, 4)
    reg = 0.1
    loss, dW = student.softmax_loss_vectorized(W, X, y, reg)
    loss = assert_shape(loss, (), name="loss")
    dW = assert_shape(dW, (3, 4), name="dW")
    # Values any correct answer has: the loss is the penalty plus a positive data loss, and
    # since each row of dscores sums to 0, each row of dW - 2 * reg * W sums to 0 as well.
    penalty = reg * np.sum(W * W)
    if not (np.isfinite(loss) and loss > penalty):
        raise AssertionError(f"loss is {float(loss)!r}; it should be the penalty "
                             f"reg * np.sum(W * W) = {penalty:.4g} plus a positive "
                             f"cross-entropy")
    assert_close(dW.sum(axis=1), 2 * reg * W.sum(axis=1), atol=1e-9,
                 name="the row sums of dW",
                 hint="dW = X.T @ dscores + 2 * reg * W, and each row of dscores = "
                      "(softmax - onehot) / N sums to 0, so dW.sum(axis=1) equals "
                      "2 * reg * W.sum(axis=1)")


@pytest.mark.points(1)
def test_vectorized_small_weights_loss_near_log_c(student, rng):
    # With tiny random weights all scores are close to 0, so the loss is close to log(C).
    n, d, c = 20, 5, 10
    W = rng.normal(size=(d, c)) * 1e-4
    X = rng.normal(size=(n, d))
    y = _labels(rng, n, c)
    loss, _ = student.softmax_loss_vectorized(W, X, y, 0.0)
    assert_close(loss, np.log(c), rtol=1e-2, name="loss",
                 hint="with tiny weights the loss should be about log(C) = 2.303 for C = 10")


@pytest.mark.points(1)
def test_vectorized_zero_inputs_loss_is_log_c_plus_reg(student, rng):
    # X = 0 makes every score 0: the data loss is log(C), the rest is the penalty reg*sum(W*W).
    n, d, c, reg = 3, 4, 5, 0.5
    W = rng.normal(size=(d, c))
    y = _labels(rng, n, c)
    loss, _ = student.softmax_loss_vectorized(W, np.zeros((n, d)), y, reg)
    assert_close(loss, np.log(c) + reg * np.sum(W * W), name="loss",
                 hint="the loss is the mean cross-entropy plus reg * np.sum(W * W)")


@pytest.mark.points(1)
def test_vectorized_zero_inputs_gradient_is_2_reg_w(student, rng):
    # X = 0: the data term has zero gradient w.r.t. W, so dW is the penalty's gradient only.
    n, d, c, reg = 3, 4, 5, 0.5
    W = rng.normal(size=(d, c))
    y = _labels(rng, n, c)
    _, dW = student.softmax_loss_vectorized(W, np.zeros((n, d)), y, reg)
    assert_close(dW, 2 * reg * W, name="dW",
                 hint="the gradient of reg * np.sum(W * W) is 2 * reg * W")


@pytest.mark.points(2)
def test_vectorized_gradient_check(student, rng):
    # Compares your dW with a centred-difference derivative of your own loss (with reg > 0).
    n, d, c, reg = 5, 4, 3, 0.1
    W = rng.normal(size=(d, c)) * 0.5
    X = rng.normal(size=(n, d))
    y = _labels(rng, n, c)
    _, dW = student.softmax_loss_vectorized(W, X, y, reg)
    numeric = _own_numerical_gradient(student.softmax_loss_vectorized, (W, X, y, reg), 0, "W")
    assert_grad_close(dW, numeric, name="dW",
                      hint="your dW is not the derivative of your own loss, so one of them is "
                           "wrong: dW = X.T @ ((softmax(X @ W) - onehot(y)) / N) + 2 * reg * W "
                           "for the loss mean cross-entropy + reg * np.sum(W * W)")
