"""Checks for assignment tests. Every one runs in the trusted grader, never in the student process.

The messages are written for the student: they say which value is wrong, by how much, where,
and (where it helps) what usually causes it.

Error conventions (documented here because students compare against them):

* :func:`assert_close` is elementwise, like ``numpy.testing.assert_allclose``: an entry passes
  when ``|actual - expected| <= atol + rtol * |expected|``. The report gives the worst entry and
  its *relative error* ``|actual - expected| / max(|expected|, atol)``.
* Gradient checks (:func:`assert_grad_close`, :func:`grad_check`) use one number for the whole
  array, the *normwise relative error* ``||a - n||_2 / max(||a||_2 + ||n||_2, 1e-300)``, where
  ``a`` is the analytic and ``n`` the numerical gradient. The cs231n-style elementwise error
  ``|a - n| / max(|a|, |n|)`` blows up on entries that are almost zero (a correct ``dWh`` of an
  LSTM reaches 1e-6 there), so it fails correct code; the normwise error does not, and a wrong
  gradient (a missing term, a wrong sign, a factor of N) still gives an error of 1e-2 or more.
  Centred differences in float64 with ``h = 1e-6`` leave an error around 1e-9 to 1e-8 on smooth
  functions, so the default threshold of 1e-6 leaves a margin of 100x either way.

One signature for the checks that judge (``assert_*`` and :func:`grad_check`): the value under
test first, then the test's own values, then keyword-only ``name=`` (how the message calls the
value) and ``hint=`` (appended to the message: what usually causes this failure).

Who is blamed: a wrong value from the student's code fails the test (``AssertionError``, a
message for the student). A mistake in the test's *own* use of a check (an unknown keyword, an
expected value or tolerance that is not a number, a shape that is not a tuple of ints) raises
:class:`~autograder.errors.GraderError`: the test ends as a grader error, never charged to the
student, and ``autograder verify`` fails on it.
"""

from __future__ import annotations

import functools
import inspect
import numbers
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from autograder.errors import GraderError

__all__ = [
    "accuracy",
    "assert_accuracy",
    "assert_close",
    "assert_grad_close",
    "assert_inputs_unchanged",
    "assert_shape",
    "grad_check",
    "numerical_gradient",
    "relative_error",
]


_F = TypeVar("_F", bound=Callable[..., Any])


def _check(function: _F) -> _F:
    """Make a call that does not fit the check's signature (a missing or unknown argument) a
    grader error: it is a mistake in the test, whatever the student's code did."""
    signature = inspect.signature(function)

    @functools.wraps(function)
    def checked(*args: Any, **kwargs: Any) -> Any:
        try:
            signature.bind(*args, **kwargs)
        except TypeError as e:
            raise GraderError(f"{function.__name__}() was called wrongly by the test: {e}; its "
                              f"signature is {function.__name__}{signature}") from None
        return function(*args, **kwargs)

    return checked  # type: ignore[return-value]


def _misuse(check: str, what: str) -> GraderError:
    return GraderError(f"{check}(): {what} (a mistake in the test, not in the submission)")


def _test_array(value: Any, check: str, argument: str) -> np.ndarray:
    """A value the test itself passed (an expected value, an input, labels) as a numeric
    array; anything else is the test's mistake."""
    try:
        arr = np.asarray(value)
    except Exception as e:  # noqa: BLE001 - ragged lists and the like
        raise _misuse(check, f"{argument} is not an array of numbers ({e})") from None
    if arr.dtype.kind not in "biufc":
        raise _misuse(check, f"{argument} must be numbers, got dtype {arr.dtype}")
    return arr


def _tolerance(value: Any, check: str, argument: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
        raise _misuse(check, f"{argument} must be a non-negative number, got {value!r}")
    return float(value)


def _labels(check: str, name: Any, hint: Any) -> None:
    if not isinstance(name, str):
        raise _misuse(check, f"name must be a str, got {type(name).__name__}")
    if not isinstance(hint, str):
        raise _misuse(check, f"hint must be a str, got {type(hint).__name__}")


def _with_hint(message: str, hint: str) -> str:
    return message + (f". {hint}" if hint else "")


def _as_array(value: Any, name: str, hint: str = "") -> np.ndarray:
    """Turn a returned value into a numeric array, or fail with a message saying what came back."""
    if isinstance(value, np.ndarray):
        arr = value
    elif isinstance(value, (bool, int, float, np.generic)):
        arr = np.asarray(value)
    elif _is_torch_tensor(value):
        arr = value.detach().cpu().numpy()
    else:
        raise AssertionError(_with_hint(
            f"{name}: expected a number or a numpy array, got {_describe(value)}", hint))
    if arr.dtype.kind not in "biufc":
        raise AssertionError(_with_hint(f"{name}: expected a numeric array, got dtype "
                                        f"{arr.dtype}", hint))
    return arr


def _is_torch_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def _describe(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of length {len(value)}"
    if value is None:
        return "None (did you forget a return statement?)"
    remote_type = getattr(value, "_type_name", None)
    if isinstance(remote_type, str) and remote_type:
        return f"an object of type {remote_type} (return numbers or numpy arrays)"
    return f"a value of type {type(value).__name__}"


def _fmt_index(idx: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(int(i)) for i in idx) + ")" if idx else "()"


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """Normwise relative error ``||a - b|| / max(||a|| + ||b||, 1e-300)`` (see module docs)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    num = float(np.linalg.norm((a - b).ravel()))
    den = float(np.linalg.norm(a.ravel()) + np.linalg.norm(b.ravel()))
    return num / max(den, 1e-300)


@_check
def assert_shape(actual: Any, shape: Sequence[int], name: str = "value", *,
                 hint: str = "") -> np.ndarray:
    """Check that ``actual`` is an array of exactly ``shape``; returns it as an array."""
    _labels("assert_shape", name, hint)
    if (isinstance(shape, (str, bytes)) or not isinstance(shape, Sequence)
            or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 0
                       for n in shape)):
        raise _misuse("assert_shape", f"shape must be a tuple of non-negative ints, got "
                                      f"{shape!r}")
    arr = _as_array(actual, name, hint)
    if tuple(arr.shape) != tuple(shape):
        raise AssertionError(_with_hint(f"{name}: expected shape {tuple(shape)}, got "
                                        f"{tuple(arr.shape)}", hint))
    return arr


@_check
def assert_close(actual: Any, expected: Any, *, rtol: float = 1e-6, atol: float = 1e-9,
                 name: str = "value", hint: str = "") -> None:
    """Elementwise closeness with a report of the worst entry.

    Fails on a shape mismatch (no broadcasting: a (N,) result where (N, 1) was expected is wrong),
    on NaN or infinity where the expected value is finite, and on entries outside
    ``atol + rtol * |expected|``. ``hint`` is appended to the message (say what usually causes it).
    """
    _labels("assert_close", name, hint)
    rtol = _tolerance(rtol, "assert_close", "rtol")
    atol = _tolerance(atol, "assert_close", "atol")
    exp = _test_array(expected, "assert_close", "the expected value")
    act = _as_array(actual, name, hint)
    if act.shape != exp.shape:
        raise AssertionError(f"{name}: expected shape {exp.shape}, got shape {act.shape}"
                             + (f". {hint}" if hint else ""))
    act64 = act.astype(np.complex128 if act.dtype.kind == "c" else np.float64)
    exp64 = exp.astype(np.complex128 if exp.dtype.kind == "c" else np.float64)
    bad_finite = ~np.isfinite(act64) & np.isfinite(exp64)
    if bad_finite.any():
        idx = tuple(np.argwhere(bad_finite)[0])
        count = int(bad_finite.sum())
        raise AssertionError(
            f"{name}: {count} entr{'y is' if count == 1 else 'ies are'} NaN or infinite, "
            f"first at index {_fmt_index(idx)} (got {act64[idx]}, expected {exp64[idx]})"
            + (f". {hint}" if hint else ""))
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: handled just below
        diff = np.abs(act64 - exp64)
        diff = np.where(np.isfinite(exp64), diff, np.where(act64 == exp64, 0.0, np.inf))
        allowed = atol + rtol * np.abs(exp64)
        failing = diff > allowed
        rel = diff / np.maximum(np.abs(exp64), max(atol, 1e-300))
    if failing.any():
        masked = np.where(failing, rel, -1.0)
        idx = tuple(np.unravel_index(int(np.argmax(masked)), masked.shape)) if masked.ndim else ()
        worst = float(np.max(rel[failing]))
        count = int(failing.sum())
        where = f" at index {_fmt_index(idx)}" if act.ndim else ""
        raise AssertionError(
            f"{name}: {count} of {act.size} entr{'y' if act.size == 1 else 'ies'} differ; "
            f"max relative error {worst:.3g}{where} "
            f"(got {act64[idx]:.8g}, expected {exp64[idx]:.8g}; "
            f"tolerance rtol={rtol:g}, atol={atol:g})"
            + (f". {hint}" if hint else ""))


@_check
def numerical_gradient(f: Callable[[np.ndarray], Any], x: np.ndarray, df: Any = None,
                       h: float = 1e-6) -> np.ndarray:
    """Centred-difference gradient of ``sum(f(x) * df)`` with respect to ``x``, in float64.

    ``f`` may be any callable, including a student function (each evaluation is then one call
    into the student process). ``x`` is not modified; ``f`` receives a fresh float64 copy per
    evaluation, so a function that mutates its input cannot disturb the check.
    """
    if not callable(f):
        raise _misuse("numerical_gradient", f"f must be a function, got {type(f).__name__}")
    x = _test_array(x, "numerical_gradient", "x").astype(np.float64, copy=True)
    upstream = None if df is None else _test_array(df, "numerical_gradient",
                                                   "df").astype(np.float64)
    h = _tolerance(h, "numerical_gradient", "h")
    if h == 0:
        raise _misuse("numerical_gradient", "h must be positive")
    grad = np.zeros_like(x)

    def scalar(value: Any) -> float:
        # The output is the student's value: a wrong shape is their failure.
        out = _as_array(value, "function output").astype(np.float64)
        if upstream is None:
            if out.size != 1:
                raise AssertionError(f"function output: expected one number, got an array of "
                                     f"shape {out.shape}")
            return float(out.reshape(()))
        if out.shape != upstream.shape:
            raise AssertionError(f"function output: expected shape {upstream.shape}, got "
                                 f"shape {out.shape}")
        return float(np.sum(out * upstream))

    for idx in np.ndindex(*x.shape):
        xp = x.copy()
        xp[idx] += h
        xm = x.copy()
        xm[idx] -= h
        grad[idx] = (scalar(f(xp)) - scalar(f(xm))) / (2 * h)
    return grad


@_check
def assert_grad_close(analytic: Any, numeric: Any, *, tol: float = 1e-6,
                      name: str = "gradient", hint: str = "") -> float:
    """Compare an analytic gradient with a numerical one by normwise relative error.

    Returns the error. The message names the entry with the largest absolute difference, which
    is usually where the derivation went wrong.
    """
    _labels("assert_grad_close", name, hint)
    tol = _tolerance(tol, "assert_grad_close", "tol")
    num = _test_array(numeric, "assert_grad_close", "the numerical gradient").astype(np.float64)
    ana_raw = _as_array(analytic, name, hint)
    if ana_raw.shape != num.shape:
        raise AssertionError(f"{name}: expected shape {num.shape}, got shape {ana_raw.shape}"
                             + (f". {hint}" if hint else ""))
    ana = ana_raw.astype(np.float64)
    if not np.all(np.isfinite(ana)):
        raise AssertionError(f"{name}: contains NaN or infinity" + (f". {hint}" if hint else ""))
    err = relative_error(ana, num)
    if err > tol:
        diff = np.abs(ana - num)
        idx = tuple(np.unravel_index(int(np.argmax(diff)), diff.shape)) if diff.ndim else ()
        raise AssertionError(
            f"{name}: relative error {err:.3g} exceeds {tol:g} (normwise, "
            f"||analytic - numerical|| / (||analytic|| + ||numerical||)); largest difference "
            f"at index {_fmt_index(idx)}: analytic {ana[idx]:.8g}, numerical {num[idx]:.8g}"
            + (f". {hint}" if hint else ""))
    return err


@_check
def grad_check(f: Callable[[np.ndarray], Any], x: np.ndarray, analytic: Any, df: Any = None, *,
               h: float = 1e-6, tol: float = 1e-6, name: str = "gradient",
               hint: str = "") -> float:
    """Numerically differentiate ``f`` at ``x`` and compare with ``analytic``; returns the error.
    ``hint`` is appended to the message, as in :func:`assert_close`."""
    _labels("grad_check", name, hint)
    return assert_grad_close(analytic, numerical_gradient(f, x, df, h), tol=tol, name=name,
                             hint=hint)


@_check
def accuracy(predictions: Any, labels: Any) -> float:
    """Fraction of ``predictions`` equal to ``labels``. ``predictions`` may be class indices
    (N,) or scores (N, C), whose argmax is taken."""
    lab = _test_array(labels, "accuracy", "labels")
    pred = _as_array(predictions, "predictions")
    if pred.ndim == 2:
        pred = pred.argmax(axis=1)
    if pred.shape != lab.shape:
        raise AssertionError(f"predictions: expected {lab.shape[0]} predictions of shape "
                             f"{lab.shape}, got shape {pred.shape}")
    return float(np.mean(pred == lab))


@_check
def assert_accuracy(predictions: Any, labels: Any, threshold: float,
                    name: str = "accuracy", *, hint: str = "") -> float:
    """Held-out accuracy at least ``threshold``; the labels never leave the trusted process."""
    _labels("assert_accuracy", name, hint)
    threshold = _tolerance(threshold, "assert_accuracy", "threshold")
    if threshold > 1:
        raise _misuse("assert_accuracy", f"threshold is a fraction in [0, 1], got {threshold}")
    acc = accuracy(predictions, labels)
    if not acc >= threshold:
        raise AssertionError(_with_hint(f"{name}: {acc:.4f} on the held-out set, below the "
                                        f"required {threshold:.4f}", hint))
    return acc


def assert_inputs_unchanged(fn: Any, *args: Any, hint: str = "", **kwargs: Any) -> Any:
    """Call ``fn`` and fail if it modified any array argument in place; returns the result.

    With a student function the arguments are inspected in the student process right after the
    call returns, so in-place edits are seen even though the student got a copy of our arrays.
    ``hint`` is the check's own (appended to the message), never passed to ``fn``.
    """
    _labels("assert_inputs_unchanged", "", hint)
    if not callable(fn):
        raise _misuse("assert_inputs_unchanged", f"the first argument must be the function to "
                                                 f"call, got {type(fn).__name__}")
    if hasattr(fn, "call_returning_args"):
        result, args_after, kwargs_after = fn.call_returning_args(*args, **kwargs)
    else:  # a local function: give it copies and look at them afterwards
        args_after = tuple(np.copy(a) if isinstance(a, np.ndarray) else a for a in args)
        kwargs_after = {k: np.copy(v) if isinstance(v, np.ndarray) else v
                        for k, v in kwargs.items()}
        result = fn(*args_after, **kwargs_after)
    fname = getattr(fn, "__name__", "the function")
    named = [(f"argument {i + 1}", a, b) for i, (a, b) in enumerate(zip(args, args_after))]
    named += [(f"argument {k!r}", v, kwargs_after.get(k)) for k, v in kwargs.items()]
    for label, before, after in named:
        if isinstance(before, np.ndarray):
            if not (isinstance(after, np.ndarray) and after.shape == before.shape
                    and np.array_equal(after, before, equal_nan=before.dtype.kind in "fc")):
                raise AssertionError(_with_hint(
                    f"{fname} modified its {label} in place; work on a copy "
                    f"(e.g. x = x.copy(), or np.pad / x - m which return new arrays)", hint))
    return result
