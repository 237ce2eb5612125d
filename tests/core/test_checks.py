"""The checks test authors use: they must pass correct values, fail wrong ones, and say where."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from autograder.checks import (accuracy, assert_accuracy, assert_close, assert_grad_close,
                               assert_inputs_unchanged, assert_shape, grad_check,
                               numerical_gradient, relative_error)


def test_assert_close_passes_within_tolerance_and_reports_the_worst_entry():
    expected = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert_close(expected * (1 + 1e-8), expected)
    wrong = expected.copy()
    wrong[1, 0] = 3.3
    with pytest.raises(AssertionError) as e:
        assert_close(wrong, expected, name="dx", hint="check the sign")
    msg = str(e.value)
    assert "dx: 1 of 4 entry" in msg or "dx: 1 of 4 entries" in msg
    assert "index (1, 0)" in msg and "got 3.3" in msg and "expected 3" in msg
    assert "check the sign" in msg


def test_assert_close_refuses_broadcastable_shapes_and_nan():
    with pytest.raises(AssertionError, match=r"expected shape \(3,\), got shape \(3, 1\)"):
        assert_close(np.zeros((3, 1)), np.zeros(3))
    with pytest.raises(AssertionError, match="NaN or infinite"):
        assert_close(np.array([np.nan, 1.0]), np.array([0.5, 1.0]))
    assert_close(np.array([np.inf]), np.array([np.inf]))  # equal infinities are fine


def test_assert_close_names_what_came_back_instead_of_a_number():
    with pytest.raises(AssertionError, match="forget a return"):
        assert_close(None, 1.0, name="loss")
    with pytest.raises(AssertionError, match="tuple of length 2"):
        assert_close((1.0, 2.0), 1.0, name="loss")
    assert_close(torch.tensor([1.0, 2.0]), np.array([1.0, 2.0]))


def test_assert_shape():
    assert assert_shape(np.zeros((2, 3)), (2, 3)).shape == (2, 3)
    with pytest.raises(AssertionError, match=r"out: expected shape \(2, 3\), got \(3, 2\)"):
        assert_shape(np.zeros((3, 2)), (2, 3), name="out")


def test_numerical_gradient_of_known_functions():
    x = np.array([[0.3, -1.2], [2.0, 0.5]])
    np.testing.assert_allclose(numerical_gradient(lambda v: np.sum(v ** 3), x), 3 * x ** 2,
                               rtol=1e-7)
    df = np.array([[1.0, -2.0], [0.5, 3.0]])
    np.testing.assert_allclose(numerical_gradient(np.sin, x, df), np.cos(x) * df, rtol=1e-7)
    with pytest.raises(AssertionError, match="pass df"):
        numerical_gradient(np.sin, x)


def test_numerical_gradient_is_not_fooled_by_a_function_that_mutates_its_input():
    def sneaky(v):
        out = float(np.sum(v ** 2))
        v[...] = 0  # would corrupt later evaluations if x were shared
        return out

    x = np.array([1.0, 2.0])
    np.testing.assert_allclose(numerical_gradient(sneaky, x), 2 * x, rtol=1e-7)
    np.testing.assert_array_equal(x, [1.0, 2.0])


def test_gradient_check_accepts_correct_gradients_with_tiny_entries():
    # A gradient with entries of 1e-9 next to entries of 1: elementwise relative error is
    # inflated there; the normwise error stays at roundoff level.
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 3))
    x = rng.normal(size=(5, 4)) * np.array([1, 1, 1, 1e-9])
    f = lambda w_: float(np.sum(np.tanh(x @ w_)))  # noqa: E731
    analytic = x.T @ (1 - np.tanh(x @ w) ** 2)
    err = grad_check(f, w, analytic)
    assert err < 1e-8


@pytest.mark.parametrize("mistake", [lambda g: 2 * g, lambda g: -g, lambda g: g / 5,
                                     lambda g: g + 1e-3 * np.ones_like(g)])
def test_gradient_check_rejects_common_mistakes(mistake):
    x = np.linspace(-1, 1, 6).reshape(2, 3)
    with pytest.raises(AssertionError, match="relative error"):
        grad_check(lambda v: float(np.sum(v ** 3)), x, mistake(3 * x ** 2))


def test_assert_grad_close_reports_shape_and_position():
    with pytest.raises(AssertionError, match="expected shape"):
        assert_grad_close(np.zeros(3), np.zeros((3, 1)))
    num = np.array([1.0, 2.0, 3.0])
    with pytest.raises(AssertionError, match=r"index \(2\)"):
        assert_grad_close(np.array([1.0, 2.0, 9.0]), num, name="dw")
    assert relative_error(num, num) == 0.0


def test_accuracy_from_labels_or_scores():
    labels = np.array([0, 1, 2, 1])
    assert accuracy(np.array([0, 1, 2, 0]), labels) == 0.75
    scores = np.eye(3)[[0, 1, 2, 2]]
    assert accuracy(scores, labels) == 0.75
    assert assert_accuracy(labels, labels, 0.95) == 1.0
    with pytest.raises(AssertionError, match="0.7500 on the held-out set, below the required"):
        assert_accuracy(scores, labels, 0.9)
    with pytest.raises(AssertionError, match="expected 4 predictions"):
        accuracy(np.zeros(3), labels)


def test_assert_inputs_unchanged_with_local_functions():
    def clean(x, y):
        return x.sum() + y

    def dirty(x, y):
        x -= 1
        return x.sum()

    assert assert_inputs_unchanged(clean, np.ones(3), 2.0) == 5.0
    with pytest.raises(AssertionError, match="modified its argument 1 in place"):
        assert_inputs_unchanged(dirty, np.ones(3), 2.0)
