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
    # f returned an array where one number was expected: the student's value is wrong.
    with pytest.raises(AssertionError, match=r"function output: expected one number, got an "
                                             r"array of shape \(2, 2\)"):
        numerical_gradient(np.sin, x)
    with pytest.raises(AssertionError, match=r"function output: expected shape \(2, 2\), got "
                                             r"shape \(4,\)"):
        numerical_gradient(lambda v: np.sin(v).ravel(), x, df)


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


# -- one signature: every check takes name= and hint=, and says the hint ---------------------

def test_every_check_that_judges_takes_hint_and_appends_it():
    x = np.array([0.5, -1.0, 2.0])
    with pytest.raises(AssertionError, match=r"dx: relative error .*\. divide by N$"):
        grad_check(lambda v: np.sum(v ** 2), x, 3 * x, name="dx", hint="divide by N")
    with pytest.raises(AssertionError, match=r"expected shape \(2,\), got \(3,\)\. reshape it$"):
        assert_shape(x, (2,), hint="reshape it")
    with pytest.raises(AssertionError, match=r"below the required 0\.9000\. train longer$"):
        assert_accuracy(np.array([0, 1]), np.array([1, 1]), 0.9, hint="train longer")
    with pytest.raises(AssertionError, match=r"in place; .*\. copy first$"):
        assert_inputs_unchanged(lambda a: a.__imul__(2), np.ones(3), hint="copy first")
    with pytest.raises(AssertionError, match=r"NaN or infinity\. shift by the max$"):
        assert_grad_close(np.array([np.nan]), np.array([1.0]), hint="shift by the max")
    # The hint is the check's own: never passed on to the function under test.
    assert assert_inputs_unchanged(lambda a, **kw: (a.sum(), kw), np.ones(2), hint="h",
                                   k=1) == (2.0, {"k": 1})


# -- a mistake in the test's own use of a check is a grader error, never the student's ------

@pytest.mark.parametrize("misuse", [
    lambda: grad_check(np.sin, np.ones(2), np.ones(2), rtol=1e-6),        # unknown keyword
    lambda: assert_close(np.ones(2)),                                       # missing expected
    lambda: assert_close(np.ones(2), ["a", "b"]),                           # expected not numbers
    lambda: assert_close(np.ones(2), np.ones(2), rtol="1e-6"),              # tolerance a string
    lambda: assert_close(np.ones(2), np.ones(2), atol=-1.0),                # negative tolerance
    lambda: assert_close(np.ones(2), np.ones(2), hint=3),                   # hint not text
    lambda: assert_shape(np.ones(2), 2),                                    # shape not a tuple
    lambda: assert_grad_close(np.ones(2), [object(), 1], tol=1e-6),          # numeric not numbers
    lambda: numerical_gradient("not a function", np.ones(2)),
    lambda: numerical_gradient(np.sin, np.ones(2), h=0.0),
    lambda: assert_accuracy(np.array([0, 1]), np.array([0, 1]), 95),       # a percentage
    lambda: accuracy(np.array([0, 1]), ["x", "y"]),
    lambda: assert_inputs_unchanged("softmax_loss", np.ones(2)),
])
def test_a_check_misused_by_the_test_raises_a_grader_error(misuse):
    from autograder.errors import GraderError
    with pytest.raises(GraderError, match=r"mistake in the test|called wrongly by the test"):
        misuse()


def test_a_grader_error_from_a_check_ends_as_grader_error_not_failed():
    """The verdict (the one place that decides outcomes) never charges it to the student."""
    from autograder.errors import GraderError
    from autograder.harness.verdict import verdict
    from autograder.results import Outcome
    try:
        grad_check(np.sin, np.ones(2), np.ones(2), hnit="typo")
    except GraderError as e:
        result = verdict(e, time_limit=10, student_values_seen=True)
    assert result.outcome is Outcome.GRADER_ERROR
    assert not result.outcome.charged_to_student
    assert "grad_check() was called wrongly by the test" in result.message


def test_a_wrong_value_from_the_student_is_still_their_failure():
    # The same checks, given a student's wrong value (not the test's mistake): AssertionError.
    with pytest.raises(AssertionError, match="expected a number or a numpy array, got None"):
        assert_close(None, np.ones(2))
    with pytest.raises(AssertionError, match="predictions: expected 2 predictions"):
        accuracy(np.array([0, 1, 1]), np.array([0, 1]))
    with pytest.raises(AssertionError, match=r"dx: expected shape \(2,\), got shape \(3,\)"):
        grad_check(lambda v: np.sum(v), np.ones(2), np.ones(3), name="dx")
