"""Hidden tests for the softmax assignment.

Loss values are compared with cross-entropy computed here, on the trusted side, in float64 with
log-sum-exp (what ``torch.nn.functional.cross_entropy`` computes, without importing torch into
the grader: 1.3 s of every cold grading run); gradients with the closed form softmax - one-hot
over N, or with the reference solution.
Each function gets separate tests for its loss value and for its gradient, so a correct loss
with a wrong gradient keeps the loss points. Inputs are drawn from the per-test ``rng``.
"""

import numpy as np
import pytest

from autograder.checks import assert_close, assert_inputs_unchanged, assert_shape

pytestmark = pytest.mark.visibility("after_due_date")

HINT_MEAN = "the loss is the mean over the N examples, not the sum"
HINT_LABELS = ("take the log-probability of the correct class of each row, "
               "log_probs[np.arange(N), y], not a whole column log_probs[:, y]")
HINT_DX = ("dx should be (softmax(x) - onehot(y)) / N: subtract 1 only at the correct class of "
           "each row (dx[np.arange(N), y] -= 1, not dx[:, y] -= 1) and divide by N")
HINT_SHIFT = ("subtract each row's maximum before np.exp (np.max(x, axis=1, keepdims=True), "
              "not the maximum of the whole array): exp(1000) overflows to inf, exp(-1000) "
              "underflows to 0, and the result becomes NaN")
HINT_GAP = ("here the correct class's score is hundreds of units below its row's maximum, so "
            "its probability exp(s_y - max) / sum(exp(s - max)) underflows to 0 and -log(0) is "
            "inf. Never take the log of a probability: compute the log-probabilities directly, "
            "log p = (s - max) - log(sum(exp(s - max))) (log-sum-exp), and take -log p[y] from "
            "them; the probabilities for the gradient are exp(log p)")
HINT_LARGE = ("the values are finite, so overflow is handled; this is most likely the same "
              "mistake that the tests on ordinary scores report")
HINT_EDGE = ("if only this case fails, look for code that drops an axis when N = 1 or C = 2 "
             "(np.squeeze, x[0], a number of classes taken from the labels instead of x.shape[1])")
HINT_REG_LOSS = "the loss includes the penalty reg * np.sum(W * W) (no factor 1/2)"
HINT_REG_GRAD = "the penalty reg * np.sum(W * W) adds 2 * reg * W to dW (not reg * W)"
HINT_DW = ("dW = X.T @ dscores with dscores = (softmax(X @ W) - onehot(y)) / N; check the "
           "correct-class indexing and the division by N")


def _labels(rng, n, c):
    """Labels using min(n, c) different classes, in random order."""
    return rng.permutation(np.arange(n) % c)


def _log_probs(scores):
    """log softmax of each row, shifted by its maximum so nothing overflows."""
    s = np.asarray(scores, dtype=np.float64)
    shifted = s - s.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _reference_loss(scores, y):
    y = np.asarray(y, dtype=np.int64)
    return float(-_log_probs(scores)[np.arange(len(y)), y].mean())


def _reference_grad(scores, y):
    y = np.asarray(y, dtype=np.int64)
    g = np.exp(_log_probs(scores))
    g[np.arange(len(y)), y] -= 1
    return g / len(y)


def _assert_finite(value, name, hint=HINT_SHIFT, inputs="for scores around +-1000"):
    """Fail with ``hint`` if ``value`` holds NaN or infinity."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return  # not numeric: assert_close reports what came back
    if not np.all(np.isfinite(arr)):
        raise AssertionError(f"{name} contains NaN or infinity {inputs}. {hint}")


GAP_INPUTS = "when the correct class is far below the row maximum"


def _gapped_scores(rng, n, c):
    """Ordinary scores, except that in every other row the correct class lies 300 to 900 units
    below the row's maximum: its probability underflows to exactly 0 in float64 (exp(-746) is
    already 0), while the log-probability is a perfectly ordinary -300 to -900."""
    x = rng.normal(size=(n, c)) * 3.0
    y = _labels(rng, n, c)
    rows = np.arange(0, n, 2)
    x[rows, y[rows]] = x[rows].max(axis=1) - rng.uniform(300.0, 900.0, size=rows.size)
    return x, y


def _large_scores(rng, n, c):
    """Scores around +1000 and -1000 (alternating rows), spread a few units within a row."""
    x = rng.normal(size=(n, c)) * 3.0
    x[0::2] += 1000.0
    x[1::2] -= 1000.0
    return x


EDGE_SHAPES = [pytest.param(1, 5, id="single_example"),
               pytest.param(7, 2, id="two_classes")]


# ---------------------------------------------------------------------------- softmax_loss


@pytest.mark.points(2)
def test_softmax_loss_value_matches_cross_entropy(student, rng):
    x = rng.normal(size=(8, 5)) * 2.0
    y = _labels(rng, 8, 5)
    loss, _ = student.softmax_loss(x, y)
    assert_close(loss, _reference_loss(x, y), rtol=1e-7, name="loss",
                 hint=f"{HINT_MEAN}; {HINT_LABELS}")


@pytest.mark.points(2)
def test_softmax_loss_gradient_matches_reference(student, reference, rng):
    x = rng.normal(size=(8, 5)) * 2.0
    y = _labels(rng, 8, 5)
    _, expected = reference.softmax_loss(x.copy(), y.copy())
    _, dx = student.softmax_loss(x, y)
    assert_close(dx, expected, rtol=1e-6, atol=1e-10, name="dx", hint=HINT_DX)


@pytest.mark.points(1)
def test_softmax_loss_value_large_scores(student, rng):
    x = _large_scores(rng, 6, 5)
    y = _labels(rng, 6, 5)
    loss, _ = student.softmax_loss(x, y)
    _assert_finite(loss, "loss")
    assert_close(loss, _reference_loss(x, y), rtol=1e-7, name="loss", hint=HINT_LARGE)


@pytest.mark.points(1)
def test_softmax_loss_gradient_large_scores(student, rng):
    x = _large_scores(rng, 6, 5)
    y = _labels(rng, 6, 5)
    _, dx = student.softmax_loss(x, y)
    _assert_finite(dx, "dx")
    assert_close(dx, _reference_grad(x, y), rtol=1e-6, atol=1e-10, name="dx", hint=HINT_LARGE)


@pytest.mark.points(1)
def test_softmax_loss_value_correct_class_far_below_max(student, rng):
    x, y = _gapped_scores(rng, 6, 5)
    loss, _ = student.softmax_loss(x, y)
    _assert_finite(loss, "loss", HINT_GAP, GAP_INPUTS)
    assert_close(loss, _reference_loss(x, y), rtol=1e-7, name="loss", hint=HINT_GAP)


@pytest.mark.points(1)
def test_softmax_loss_gradient_correct_class_far_below_max(student, rng):
    x, y = _gapped_scores(rng, 6, 5)
    _, dx = student.softmax_loss(x, y)
    _assert_finite(dx, "dx", HINT_GAP, GAP_INPUTS)
    assert_close(dx, _reference_grad(x, y), rtol=1e-6, atol=1e-10, name="dx", hint=HINT_GAP)


@pytest.mark.points(1)
@pytest.mark.parametrize("n, c", EDGE_SHAPES)
def test_softmax_loss_value_edge_shapes(student, rng, n, c):
    x = rng.normal(size=(n, c))
    y = _labels(rng, n, c)
    loss, _ = student.softmax_loss(x, y)
    assert_close(loss, _reference_loss(x, y), rtol=1e-7, name=f"loss for N={n}, C={c}",
                 hint=HINT_EDGE)


@pytest.mark.points(1)
@pytest.mark.parametrize("n, c", EDGE_SHAPES)
def test_softmax_loss_gradient_edge_shapes(student, reference, rng, n, c):
    x = rng.normal(size=(n, c))
    y = _labels(rng, n, c)
    _, expected = reference.softmax_loss(x.copy(), y.copy())
    _, dx = student.softmax_loss(x, y)
    assert_close(dx, expected, rtol=1e-6, atol=1e-10, name=f"dx for N={n}, C={c}",
                 hint=HINT_EDGE)


@pytest.mark.points(1)
def test_softmax_loss_does_not_modify_inputs(student, reference, rng):
    x = rng.normal(size=(4, 3))
    y = _labels(rng, 4, 3)
    loss, _ = assert_inputs_unchanged(student.softmax_loss, x, y)
    # The point is for working code that leaves its inputs alone, not for any function that
    # does nothing: the loss must be right too (the gradient is graded elsewhere).
    assert_close(loss, reference.softmax_loss(x, y)[0], name="loss")


# ------------------------------------------------------------------ softmax_loss_vectorized


def _linear_problem(rng, n=10, d=6, c=4, scale=0.5):
    W = rng.normal(size=(d, c)) * scale
    X = rng.normal(size=(n, d))
    y = _labels(rng, n, c)
    return W, X, y


@pytest.mark.points(2)
def test_vectorized_data_loss_matches_cross_entropy(student, rng):
    W, X, y = _linear_problem(rng)
    loss, _ = student.softmax_loss_vectorized(W, X, y, 0.0)
    assert_close(loss, _reference_loss(X @ W, y), rtol=1e-7, name="loss (reg = 0)",
                 hint=f"{HINT_MEAN}; {HINT_LABELS}")


@pytest.mark.points(1)
def test_vectorized_regularisation_loss_term(student, rng):
    # The same data with reg = 0 and reg = 0.3: the losses must differ by reg * sum(W * W),
    # whatever the data term is (that one is graded by the test above).
    W, X, y = _linear_problem(rng)
    reg = 0.3
    loss0 = assert_shape(student.softmax_loss_vectorized(W, X, y, 0.0)[0], (), name="loss")
    loss = assert_shape(student.softmax_loss_vectorized(W, X, y, reg)[0], (), name="loss")
    assert_close(loss - loss0, reg * np.sum(W * W), rtol=1e-7,
                 name=f"loss(reg = {reg}) - loss(reg = 0)", hint=HINT_REG_LOSS)


@pytest.mark.points(2)
def test_vectorized_data_gradient_matches_reference(student, reference, rng):
    W, X, y = _linear_problem(rng)
    _, expected = reference.softmax_loss_vectorized(W.copy(), X.copy(), y.copy(), 0.0)
    _, dW = student.softmax_loss_vectorized(W, X, y, 0.0)
    assert_close(dW, expected, rtol=1e-6, atol=1e-10, name="dW (reg = 0)", hint=HINT_DW)


@pytest.mark.points(2)
def test_vectorized_regularisation_gradient_term(student, rng):
    # dW(reg) - dW(0) is the gradient of the penalty alone: 2 * reg * W.
    W, X, y = _linear_problem(rng)
    reg = 0.3
    dW0 = assert_shape(student.softmax_loss_vectorized(W, X, y, 0.0)[1], W.shape, name="dW")
    dW = assert_shape(student.softmax_loss_vectorized(W, X, y, reg)[1], W.shape, name="dW")
    assert_close(dW - dW0, 2 * reg * W, rtol=1e-6, atol=1e-10,
                 name=f"dW(reg = {reg}) - dW(reg = 0)", hint=HINT_REG_GRAD)


@pytest.mark.points(1)
def test_vectorized_value_large_scores(student, rng):
    # One-hot features: X @ W picks a row of W, so the scores are exactly around +-1000.
    n, c = 6, 5
    W = _large_scores(rng, n, c)
    X = np.eye(n)
    y = _labels(rng, n, c)
    loss, _ = student.softmax_loss_vectorized(W, X, y, 0.0)
    _assert_finite(loss, "loss")
    assert_close(loss, _reference_loss(X @ W, y), rtol=1e-7, name="loss", hint=HINT_LARGE)


@pytest.mark.points(1)
def test_vectorized_gradient_large_scores(student, rng):
    n, c = 6, 5
    W = _large_scores(rng, n, c)
    X = np.eye(n)
    y = _labels(rng, n, c)
    _, dW = student.softmax_loss_vectorized(W, X, y, 0.0)
    _assert_finite(dW, "dW")
    assert_close(dW, X.T @ _reference_grad(X @ W, y), rtol=1e-6, atol=1e-10, name="dW",
                 hint=HINT_LARGE)


@pytest.mark.points(1)
def test_vectorized_value_correct_class_far_below_max(student, rng):
    # One-hot features: X @ W is exactly W, so the scores are the gapped rows.
    W, y = _gapped_scores(rng, 6, 5)
    X = np.eye(6)
    loss, _ = student.softmax_loss_vectorized(W, X, y, 0.0)
    _assert_finite(loss, "loss", HINT_GAP, GAP_INPUTS)
    assert_close(loss, _reference_loss(X @ W, y), rtol=1e-7, name="loss", hint=HINT_GAP)


@pytest.mark.points(1)
def test_vectorized_gradient_correct_class_far_below_max(student, rng):
    W, y = _gapped_scores(rng, 6, 5)
    X = np.eye(6)
    _, dW = student.softmax_loss_vectorized(W, X, y, 0.0)
    _assert_finite(dW, "dW", HINT_GAP, GAP_INPUTS)
    # X is the identity, so dW = X.T @ dscores is the gradient with respect to the scores.
    assert_close(dW, _reference_grad(X @ W, y), rtol=1e-6, atol=1e-10, name="dW", hint=HINT_GAP)


@pytest.mark.points(1)
@pytest.mark.parametrize("n, c", EDGE_SHAPES)
def test_vectorized_value_edge_shapes(student, rng, n, c):
    W, X, y = _linear_problem(rng, n=n, d=3, c=c)
    loss, _ = student.softmax_loss_vectorized(W, X, y, 0.0)
    assert_close(loss, _reference_loss(X @ W, y), rtol=1e-7, name=f"loss for N={n}, C={c}",
                 hint=HINT_EDGE)


@pytest.mark.points(1)
@pytest.mark.parametrize("n, c", EDGE_SHAPES)
def test_vectorized_gradient_edge_shapes(student, reference, rng, n, c):
    W, X, y = _linear_problem(rng, n=n, d=3, c=c)
    _, expected = reference.softmax_loss_vectorized(W.copy(), X.copy(), y.copy(), 0.0)
    _, dW = student.softmax_loss_vectorized(W, X, y, 0.0)
    assert_close(dW, expected, rtol=1e-6, atol=1e-10, name=f"dW for N={n}, C={c}",
                 hint=HINT_EDGE)


@pytest.mark.points(1)
def test_vectorized_does_not_modify_inputs(student, reference, rng):
    W, X, y = _linear_problem(rng, n=4, d=3, c=3)
    loss, _ = assert_inputs_unchanged(student.softmax_loss_vectorized, W, X, y, 0.1)
    assert_close(loss, reference.softmax_loss_vectorized(W, X, y, 0.1)[0], name="loss")
