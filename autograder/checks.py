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
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

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


def _as_array(value: Any, name: str) -> np.ndarray:
    """Turn a returned value into a numeric array, or fail with a message saying what came back."""
    if isinstance(value, np.ndarray):
        arr = value
    elif isinstance(value, (bool, int, float, np.generic)):
        arr = np.asarray(value)
    elif _is_torch_tensor(value):
        arr = value.detach().cpu().numpy()
    else:
        raise AssertionError(
            f"{name}: expected a number or a numpy array, got {_describe(value)}")
    if arr.dtype.kind not in "biufc":
        raise AssertionError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
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


def assert_shape(actual: Any, shape: Sequence[int], name: str = "value") -> np.ndarray:
    """Check that ``actual`` is an array of exactly ``shape``; returns it as an array."""
    arr = _as_array(actual, name)
    if tuple(arr.shape) != tuple(shape):
        raise AssertionError(f"{name}: expected shape {tuple(shape)}, got {tuple(arr.shape)}")
    return arr


def assert_close(actual: Any, expected: Any, *, rtol: float = 1e-6, atol: float = 1e-9,
                 name: str = "value", hint: str = "") -> None:
    """Elementwise closeness with a report of the worst entry.

    Fails on a shape mismatch (no broadcasting: a (N,) result where (N, 1) was expected is wrong),
    on NaN or infinity where the expected value is finite, and on entries outside
    ``atol + rtol * |expected|``. ``hint`` is appended to the message (say what usually causes it).
    """
    exp = np.asarray(expected)
    act = _as_array(actual, name)
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


def numerical_gradient(f: Callable[[np.ndarray], Any], x: np.ndarray, df: Any = None,
                       h: float = 1e-6) -> np.ndarray:
    """Centred-difference gradient of ``sum(f(x) * df)`` with respect to ``x``, in float64.

    ``f`` may be any callable, including a student function (each evaluation is then one call
    into the student process). ``x`` is not modified; ``f`` receives a fresh float64 copy per
    evaluation, so a function that mutates its input cannot disturb the check.
    """
    x = np.array(x, dtype=np.float64, copy=True)
    upstream = None if df is None else np.asarray(df, dtype=np.float64)
    grad = np.zeros_like(x)

    def scalar(value: Any) -> float:
        out = _as_array(value, "function output").astype(np.float64)
        if upstream is None:
            if out.size != 1:
                raise AssertionError("numerical_gradient: f returned an array; pass df, the "
                                     "upstream gradient, to check a vector-valued function")
            return float(out.reshape(()))
        return float(np.sum(out * upstream))

    for idx in np.ndindex(*x.shape):
        xp = x.copy()
        xp[idx] += h
        xm = x.copy()
        xm[idx] -= h
        grad[idx] = (scalar(f(xp)) - scalar(f(xm))) / (2 * h)
    return grad


def assert_grad_close(analytic: Any, numeric: Any, *, tol: float = 1e-6,
                      name: str = "gradient", hint: str = "") -> float:
    """Compare an analytic gradient with a numerical one by normwise relative error.

    Returns the error. The message names the entry with the largest absolute difference, which
    is usually where the derivation went wrong.
    """
    num = np.asarray(numeric, dtype=np.float64)
    ana_raw = _as_array(analytic, name)
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


def grad_check(f: Callable[[np.ndarray], Any], x: np.ndarray, analytic: Any, df: Any = None, *,
               h: float = 1e-6, tol: float = 1e-6, name: str = "gradient") -> float:
    """Numerically differentiate ``f`` at ``x`` and compare with ``analytic``; returns the error."""
    return assert_grad_close(analytic, numerical_gradient(f, x, df, h), tol=tol, name=name)


def accuracy(predictions: Any, labels: Any) -> float:
    """Fraction of ``predictions`` equal to ``labels``. ``predictions`` may be class indices
    (N,) or scores (N, C), whose argmax is taken."""
    pred = _as_array(predictions, "predictions")
    lab = np.asarray(labels)
    if pred.ndim == 2:
        pred = pred.argmax(axis=1)
    if pred.shape != lab.shape:
        raise AssertionError(f"predictions: expected {lab.shape[0]} predictions of shape "
                             f"{lab.shape}, got shape {pred.shape}")
    return float(np.mean(pred == lab))


def assert_accuracy(predictions: Any, labels: Any, threshold: float,
                    name: str = "accuracy") -> float:
    """Held-out accuracy at least ``threshold``; the labels never leave the trusted process."""
    acc = accuracy(predictions, labels)
    if not acc >= threshold:
        raise AssertionError(f"{name}: {acc:.4f} on the held-out set, below the required "
                             f"{threshold:.4f}")
    return acc


def assert_inputs_unchanged(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call ``fn`` and fail if it modified any array argument in place; returns the result.

    With a student function the arguments are inspected in the student process right after the
    call returns, so in-place edits are seen even though the student got a copy of our arrays.
    """
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
                raise AssertionError(
                    f"{fname} modified its {label} in place; work on a copy "
                    f"(e.g. x = x.copy(), or np.pad / x - m which return new arrays)")
    return result
