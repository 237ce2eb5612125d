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
    "call_keeping",
    "grad_check",
    "numerical_gradient",
    "numerical_gradient_of",
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
            return function(*args, **kwargs)
        except TypeError:
            # Binding only after a TypeError (binding every call cost ~30 us, thousands of
            # calls a batch): a call that does not fit fails before the check's body runs,
            # so a TypeError from within the body binds and goes on as it was.
            try:
                signature.bind(*args, **kwargs)
            except TypeError as e:
                raise GraderError(f"{function.__name__}() was called wrongly by the test: {e}; "
                                  f"its signature is {function.__name__}{signature}") from None
            raise

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


def _reducer(upstream: Any, name: str) -> Callable[[Any], float]:
    """The one number a numerical gradient differentiates, from one output of the function:
    the output itself (``upstream`` None: it must be one number), ``sum(output * upstream)``
    (an array: the output must have its shape) or, for a tuple output, the sum of that over
    ``{index: upstream}``. The output is the student's value: one that does not fit is their
    failure, and the message names it. The student runner reduces in the same order
    (``autograder/runner/serve.py``), so both give the same numbers."""

    def one(value: Any, weights: np.ndarray | None, label: str) -> float:
        out = _as_array(value, label).astype(np.float64)
        if weights is None:
            if out.size != 1:
                raise AssertionError(f"{label}: expected one number, got an array of shape "
                                     f"{out.shape}")
            return float(out.reshape(()))
        if out.shape != weights.shape:
            raise AssertionError(f"{label}: expected shape {weights.shape}, got shape "
                                 f"{out.shape}")
        return float(np.sum(out * weights))

    if type(upstream) is not dict:
        return lambda value: one(value, upstream, name)

    def several(value: Any) -> float:
        if not isinstance(value, (tuple, list)):
            raise AssertionError(f"{name}: expected a tuple of outputs, got {_describe(value)}")
        total = 0.0
        for j, weights in upstream.items():
            if j >= len(value):
                raise AssertionError(f"{name}: expected at least {j + 1} outputs, got "
                                     f"{_describe(value)}")
            total += one(value[j], weights, f"{name}[{j}]")
        return total

    return several


def _upstream(df: Any, check: str) -> np.ndarray | dict[int, np.ndarray | None] | None:
    """The test's upstream weights as float64: None, an array, or ``{output index: None or
    array}`` for a function that returns a tuple."""
    if df is None:
        return None
    if isinstance(df, dict):
        if not df or not all(isinstance(j, int) and not isinstance(j, bool) and j >= 0
                             for j in df):
            raise _misuse(check, f"df as a dict maps output indices (ints >= 0) to upstream "
                                 f"gradients, got keys {list(df)!r}")
        return {j: None if w is None else _test_array(w, check, f"df[{j}]").astype(np.float64)
                for j, w in df.items()}
    return _test_array(df, check, "df").astype(np.float64)


def _check_losses(losses: np.ndarray, name: str, what: str, shape: tuple[int, ...]) -> None:
    """A NaN or an infinity among the losses is the student's output, never a gradient: say
    where it appeared (otherwise it would make the comparison meaningless, not fail it)."""
    bad = ~np.isfinite(losses)
    if bad.any():
        flat, column = (int(i) for i in np.argwhere(bad)[0])
        idx = tuple(int(i) for i in np.unravel_index(flat, shape)) if shape else ()
        raise AssertionError(f"{name}: NaN or infinity when entry {_fmt_index(idx)} of "
                             f"{what} is moved by {'+' if column == 0 else '-'}h; the function's "
                             f"output must stay finite near its input")


def _local_losses(f: Callable[[np.ndarray], Any], x: np.ndarray, h: float,
                  reduce: Callable[[Any], float]) -> np.ndarray:
    """The ``(x.size, 2)`` losses at ``x[i] + h`` and ``x[i] - h``, one call of ``f`` each,
    each with a fresh copy of ``x``."""
    losses = np.empty((x.size, 2), dtype=np.float64)
    for flat, idx in enumerate(np.ndindex(*x.shape)):
        for column, step in enumerate((h, -h)):
            moved = x.copy()
            moved[idx] += step
            losses[flat, column] = reduce(f(moved))
    return losses


def _fresh(value: Any) -> Any:
    """A copy of a test's plain data (arrays, tensors, lists, tuples, dicts), as the student
    runner makes per call (``autograder/runner/serve.py``); other objects are passed as they
    are."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if type(value) is list:
        return [_fresh(v) for v in value]
    if type(value) is tuple:
        return tuple(_fresh(v) for v in value)
    if type(value) is dict:
        return {k: _fresh(v) for k, v in value.items()}
    if _is_torch_tensor(value):
        return value.clone()
    return value


def _gradient(losses: np.ndarray, x: np.ndarray, h: float) -> np.ndarray:
    return ((losses[:, 0] - losses[:, 1]) / (2 * h)).reshape(x.shape)


def _step(h: Any, check: str) -> float:
    h = _tolerance(h, check, "h")
    if h == 0:
        raise _misuse(check, "h must be positive")
    return h


@_check
def numerical_gradient(f: Callable[[np.ndarray], Any], x: np.ndarray, df: Any = None,
                       h: float = 1e-6) -> np.ndarray:
    """Centred-difference gradient of ``sum(f(x) * df)`` with respect to ``x``, in float64.

    ``f`` may be any callable; a closure over a student function makes one call into the
    student process per evaluation, so prefer :func:`numerical_gradient_of` there (one request
    for the whole gradient). ``x`` is not modified; ``f`` receives a fresh float64 copy per
    evaluation, so a function that mutates its input cannot disturb the check.
    """
    if not callable(f):
        raise _misuse("numerical_gradient", f"f must be a function, got {type(f).__name__}")
    x = _test_array(x, "numerical_gradient", "x").astype(np.float64, copy=True)
    upstream = _upstream(df, "numerical_gradient")
    if isinstance(upstream, dict):
        raise _misuse("numerical_gradient", "df must be an array here (a dict of upstream "
                                            "gradients per output is for numerical_gradient_of)")
    h = _step(h, "numerical_gradient")
    losses = _local_losses(f, x, h, _reducer(upstream, "function output"))
    _check_losses(losses, "function output", "x", x.shape)
    return _gradient(losses, x, h)


@_check
def numerical_gradient_of(fn: Callable[..., Any], args: Sequence[Any], wrt: int | str,
                          df: Any = None, *, kwargs: dict[str, Any] | None = None,
                          h: float = 1e-6) -> np.ndarray:
    """Centred-difference gradient of ``fn(*args, **kwargs)`` with respect to one argument,
    in float64: ``args[wrt]`` (``wrt`` an int) or ``kwargs[wrt]`` (a str).

    ``df`` says which number is differentiated: None when ``fn`` returns one number; an array
    when it returns an array of that shape (the number is ``sum(output * df)``); a dict
    ``{index: upstream}`` when it returns a tuple, e.g. ``{0: dnext_h, 1: dnext_c}`` for
    ``sum(next_h * dnext_h) + sum(next_c * dnext_c)`` (``{0: None}``: element 0 is one number).

    With a student function the whole gradient is one request: the student process calls
    ``fn`` twice per entry (each call with fresh copies of every argument) and sends back only
    those ``2 x size`` numbers; the difference quotients, and every judgement, are made here.
    With a local function (the reference, or a module imported in-process) the same calls are
    made one by one. Either way an output that does not fit ``df`` fails with the same message,
    naming the output (``lstm_step_forward(...)[1]: expected shape (3, 5), got shape (3, 4)``),
    and a NaN or infinite output fails saying which entry was moved.
    """
    check = "numerical_gradient_of"
    if not callable(fn):
        raise _misuse(check, f"fn must be a function, got {type(fn).__name__}")
    if isinstance(args, (str, bytes)) or not isinstance(args, Sequence):
        raise _misuse(check, f"args must be a tuple or list of arguments, got "
                             f"{type(args).__name__}")
    kwargs = {} if kwargs is None else kwargs
    if not isinstance(kwargs, dict):
        raise _misuse(check, f"kwargs must be a dict, got {type(kwargs).__name__}")
    args = list(args)
    if isinstance(wrt, int) and not isinstance(wrt, bool) and 0 <= wrt < len(args):
        what = f"argument {wrt + 1}"
        x = _test_array(args[wrt], check, what).astype(np.float64, copy=True)
        args[wrt] = x
    elif isinstance(wrt, str) and wrt in kwargs:
        what = f"argument {wrt!r}"
        x = _test_array(kwargs[wrt], check, what).astype(np.float64, copy=True)
        kwargs = {**kwargs, wrt: x}
    else:
        raise _misuse(check, f"wrt must be the index of an argument (0 to {len(args) - 1}) or "
                             f"the name of a keyword argument, got {wrt!r}")
    upstream = _upstream(df, check)
    h = _step(h, check)
    # A student function's name is qualified by its module ("lstm.lstm_step_forward"); the
    # message is the same for the function called locally.
    name = f"{str(getattr(fn, '__name__', 'the function')).rsplit('.', 1)[-1]}(...)"
    if type(upstream) is not dict:
        name = f"output of {name}"
    reduce = _reducer(upstream, name)
    if hasattr(fn, "perturbed_losses"):  # a student function: one request for all the calls
        losses = fn.perturbed_losses(args, kwargs, wrt, h, upstream, reduce)
    else:
        def at(moved: np.ndarray) -> Any:
            # Fresh copies of every argument per call, as a call into the student process gets.
            call_args = [_fresh(a) for a in args]
            call_kwargs = {k: _fresh(v) for k, v in kwargs.items()}
            if isinstance(wrt, int):
                call_args[wrt] = moved
            else:
                call_kwargs[wrt] = moved
            return fn(*call_args, **call_kwargs)

        losses = _local_losses(at, x, h, reduce)
    _check_losses(losses, name, what, x.shape)
    return _gradient(losses, x, h)


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


def call_keeping(fn: Any, *args: Any, keep: Sequence[int], **kwargs: Any) -> Any:
    """Call ``fn``; of its tuple result, the elements at the indices ``keep`` stay where they
    were made. For a student function they stay in the student process and come back as
    handles, which can be passed back as arguments but not read: for what a test only hands
    back (``next_h, next_c, cache = call_keeping(student.lstm_step_forward, *args, keep=(2,))``
    then ``student.lstm_step_backward(dnext_h, dnext_c, cache)``), so the cache never crosses
    the boundary. For a local function it is a plain call. A result that is not a tuple that
    long comes back whole, and the test fails on it as it would on any wrong return value.
    """
    if not callable(fn):
        raise _misuse("call_keeping", f"the first argument must be the function to call, got "
                                      f"{type(fn).__name__}")
    if (isinstance(keep, (str, bytes)) or not isinstance(keep, Sequence)
            or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in keep)):
        raise _misuse("call_keeping", f"keep must be a tuple of output indices (ints >= 0), got "
                                      f"{keep!r}")
    if hasattr(fn, "call_keeping_items"):
        return fn.call_keeping_items(tuple(keep), *args, **kwargs)
    return fn(*args, **kwargs)
