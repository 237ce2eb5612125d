"""The student runner: the untrusted side of the boundary.

It runs inside the sandbox with only the student's files (and the assignment's public support
files) in its working directory. It imports the student's modules, calls what the grader asks
for, and sends back plain data. It never sees a test, a reference or an expected value, and it
decides nothing: whatever it sends is just data to the grader.

It imports only the standard library, numpy and :mod:`autograder.protocol`.
"""

from __future__ import annotations

import builtins
import importlib
import os
import sys
import traceback
from typing import Any

import numpy as np

from autograder import protocol

# Exceptions whose type the grader may re-raise as the built-in (so ``pytest.raises(ValueError)``
# works in a test), and whose outcome it may read ("memory" for a MemoryError). Taken before any
# student code runs, and compared by identity: a student class named MemoryError is not one.
_BUILTIN_EXCEPTIONS: dict[str, type] = {
    name: obj for name, obj in vars(builtins).items()
    if isinstance(obj, type) and issubclass(obj, BaseException)
}
_MAX_TRACEBACK = 8000


class Runner:
    def __init__(self, channel: protocol.Channel, workdir: str):
        self.channel = channel
        self.workdir = workdir
        self.handles: dict[int, Any] = {}
        self._next_handle = 1

    # -- handles: anything that is not plain data stays here ---------------------------------
    def _to_handle(self, value: Any) -> protocol.Handle:
        hid = self._next_handle
        self._next_handle += 1
        self.handles[hid] = value
        return protocol.Handle(hid, protocol.unsendable_type_name(value))

    def _resolve(self, hid: int) -> Any:
        try:
            return self.handles[hid]
        except KeyError:
            raise protocol.ProtocolError(f"unknown handle {hid}") from None

    def _encode(self, value: Any) -> bytes:
        return protocol.encode(value, on_unsupported=self._to_handle)

    # -- requests -------------------------------------------------------------------------------
    def _target(self, target: Any) -> Any:
        if type(target) is not dict:
            raise protocol.ProtocolError("malformed target")
        if "module" in target:
            obj = sys.modules.get(target["module"]) or importlib.import_module(target["module"])
        else:
            obj = self._resolve(target["handle"])
        name = target.get("name")
        if name is None:
            return obj
        if type(name) is not str:
            raise protocol.ProtocolError("malformed target name")
        return getattr(obj, name)

    def handle(self, request: dict) -> dict:
        op = request.get("op")
        if op == "import":
            importlib.import_module(request["module"])
            return {"ok": None}
        if op == "getattr":
            return {"ok": self._target(request["target"])}
        if op == "call":
            fn = self._target(request["target"])
            args, kwargs = request.get("args", []), request.get("kwargs", {})
            if type(args) is not list or type(kwargs) is not dict:
                raise protocol.ProtocolError("malformed call")
            result = fn(*args, **kwargs)
            if request.get("keep_result"):  # the test wants a handle, not the data
                result = self._to_handle(result)
            elif "keep_items" in request:  # some elements of a tuple stay here (a cache)
                result = self._keep_items(result, request["keep_items"])
            reply = {"ok": result}
            if request.get("return_args"):
                reply["args"] = args
                reply["kwargs"] = kwargs
            return reply
        if op == "numgrad":
            fn = self._target(request["target"])
            return {"ok": self._perturbed_losses(fn, request)}
        if op == "release":
            for hid in request.get("handles", []):
                self.handles.pop(hid, None)
            return {"ok": None}
        raise protocol.ProtocolError(f"unknown operation {op!r}")

    def _keep_items(self, result: Any, indices: Any) -> Any:
        """``result`` with the elements at ``indices`` replaced by handles. A result that is
        not a tuple or list that long goes back whole: the test then fails on it as it would
        on any wrong return value."""
        if type(indices) is not list or not all(type(i) is int and i >= 0 for i in indices):
            raise protocol.ProtocolError("malformed keep_items")
        if type(result) not in (tuple, list) or any(i >= len(result) for i in indices):
            return result
        items = [self._to_handle(v) if i in indices else v for i, v in enumerate(result)]
        return tuple(items) if type(result) is tuple else items

    def _perturbed_losses(self, fn: Any, request: dict) -> dict:
        """A numerical-gradient request: call ``fn`` twice per entry of one argument ``x``
        (``x[i] + h`` and ``x[i] - h``, every argument a fresh copy per call, as separate
        ``call`` requests would give) and reduce each output to one number,
        ``sum_j sum(output_j * df_j)``. Only those ``2 x x.size`` numbers go back, as an
        array ``(x.size, 2)``; the grader computes the difference quotients and judges them.

        An output that cannot be reduced (not numeric, wrong shape, too few elements) stops
        the loop and goes back itself, with where it came from; the grader's own checks then
        say what is wrong with it, in the same words as for a function called in the test.

        Nothing here is trusted: a submission that replaces this method can report any
        numbers, which is no more than a student function that keeps state between calls
        could do anyway. The grader never sends the analytic gradient, a tolerance or a
        reference, so no reported number can be tailored to pass, and the forward pass the
        numbers should come from is checked against the reference by other tests.
        """
        args, kwargs = request.get("args"), request.get("kwargs")
        wrt, h, df = request.get("wrt"), request.get("h"), request.get("df")
        if type(args) is not list or type(kwargs) is not dict or type(h) is not float:
            raise protocol.ProtocolError("malformed numgrad request")
        if type(wrt) is int and 0 <= wrt < len(args):
            holder: Any = args
        elif type(wrt) is str and wrt in kwargs:
            holder = kwargs
        else:
            raise protocol.ProtocolError("malformed numgrad argument index")
        x = holder[wrt]
        if type(x) is not np.ndarray or x.dtype != np.float64:
            raise protocol.ProtocolError("numgrad: the argument to vary is not a float64 array")
        if not (df is None or type(df) is np.ndarray or (type(df) is dict and all(
                type(k) is int and k >= 0 and (v is None or type(v) is np.ndarray)
                for k, v in df.items()))):
            raise protocol.ProtocolError("malformed numgrad weights")
        losses = np.empty((x.size, 2), dtype=np.float64)
        for flat, idx in enumerate(np.ndindex(*x.shape)):
            for column, step in enumerate((h, -h)):
                moved = x.copy()
                moved[idx] += step
                call_args, call_kwargs = _fresh(args), _fresh(kwargs)
                (call_args if holder is args else call_kwargs)[wrt] = moved
                output = fn(*call_args, **call_kwargs)
                loss = _reduce(output, df)
                if loss is None:
                    return {"unreduced": output, "at": [flat, column]}
                losses[flat, column] = loss
        return {"losses": losses}

    def serve(self, degraded: list[str]) -> None:
        self.channel.send_bytes(self._encode({"op": "hello", "pid": os.getpid(),
                                              "degraded": degraded}))
        while True:
            try:
                raw = self.channel.recv_bytes()
            except protocol.ChannelClosed:
                return
            request = protocol.decode(raw, resolve_handle=self._resolve)
            rid = request.get("id") if type(request) is dict else None
            try:
                reply = self.handle(request)
            except BaseException as e:  # noqa: BLE001 - every failure is reported, even SystemExit
                if isinstance(e, KeyboardInterrupt):
                    raise
                reply = {"error": _describe_exception(e, self.workdir)}
            reply["id"] = rid
            _flush_output()  # before the reply, so the grader sees the output with it
            try:
                body = self._encode(reply)
                self.channel.send_bytes(body)
            except protocol.ChannelClosed:
                return
            except Exception as e:  # noqa: BLE001 - e.g. a str subclass whose __str__ raises
                # Too large or unencodable: say so instead of breaking the stream.
                message = _safe_text(lambda: str(e), "the value could not be encoded")
                self.channel.send_bytes(self._encode({"id": rid, "error": {
                    "type": "ProtocolError", "message": message, "traceback": "",
                    "builtin": False, "protocol": True}}))


def _fresh(value: Any) -> Any:
    """A copy of the grader's plain data (arrays, tensors, lists, tuples, dicts), as decoding
    a new request would give: a function that edits its inputs cannot change the next call's.
    Objects that live here (handles) are passed as they are, as a ``call`` passes them."""
    t = type(value)
    if t is np.ndarray:
        return value.copy()
    if t is list:
        return [_fresh(v) for v in value]
    if t is tuple:
        return tuple(_fresh(v) for v in value)
    if t is dict:
        return {k: _fresh(v) for k, v in value.items()}
    if protocol._is_tensor(value):
        return value.clone()
    return value


def _as_float64(value: Any) -> np.ndarray | None:
    """``value`` as a float64 array, if it is a number, a numeric array or a tensor (what the
    grader's checks accept); else None."""
    if isinstance(value, np.ndarray):
        arr = value
    elif isinstance(value, (bool, int, float, np.generic)):
        arr = np.asarray(value)
    elif protocol._is_tensor(value):
        arr = value.detach().cpu().numpy()
    else:
        return None
    if arr.dtype.kind not in "biufc":
        return None
    return arr.astype(np.float64)


def _reduce(output: Any, df: Any) -> float | None:
    """``sum_j sum(output[j] * df[j])`` (``df`` a dict), ``sum(output * df)`` (an array) or
    the output itself (None: one number), in the order and precision of the grader's own loop
    for a local function; None if the output does not fit."""
    if type(df) is not dict:
        arr = _as_float64(output)
        if arr is None:
            return None
        if df is None:
            return float(arr.reshape(())) if arr.size == 1 else None
        return float(np.sum(arr * df)) if arr.shape == df.shape else None
    if not isinstance(output, (tuple, list)):  # as the grader's reduction: a namedtuple too
        return None
    total = 0.0
    for j, weights in df.items():
        if j >= len(output):
            return None
        part = _reduce(output[j], weights)
        if part is None:
            return None
        total += part
    return total


def _flush_output() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - the student may have replaced or closed it
            pass


def _describe_exception(e: BaseException, workdir: str) -> dict:
    """The error reply for an exception of the student's code. It never raises: everything of
    the exception (its ``__str__``, a ``SystemExit`` code's ``__repr__``, even its class's
    name) is the student's code, and the serve loop must outlive it."""
    try:
        return _exception_fields(e, workdir)
    except BaseException:  # noqa: BLE001 - even KeyboardInterrupt from a __repr__
        return {"type": "Exception", "message": "<the exception could not be described>",
                "traceback": "", "builtin": False}


def _safe_text(describe: Any, fallback: str) -> str:
    try:
        text = describe()
        return text if type(text) is str else fallback
    except BaseException:  # noqa: BLE001 - a __str__ or __repr__ of the student's that raises
        return fallback


def _exception_fields(e: BaseException, workdir: str) -> dict:
    cls = type(e)
    name = _safe_text(lambda: cls.__name__, "Exception")
    if isinstance(e, SystemExit):
        message = "the code called sys.exit(" + _safe_text(
            lambda: repr(e.code), "<a value whose repr failed>") + ")"
    else:
        message = _safe_text(lambda: str(e), "<exception message could not be printed>")
    # Keep only the frames in the student's files: the runner's own frames are noise to them.
    prefix = workdir.rstrip("/") + "/"
    frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename.startswith(prefix)]
    lines = traceback.format_list(frames)
    if not isinstance(e, SystemExit):
        lines.append(_safe_text(lambda: "".join(traceback.format_exception_only(cls, e)), ""))
    text = "".join(lines)
    if len(text) > _MAX_TRACEBACK:
        text = text[:_MAX_TRACEBACK] + "\n[traceback truncated]"
    return {"type": name, "message": message[:_MAX_TRACEBACK], "traceback": text,
            "builtin": _BUILTIN_EXCEPTIONS.get(name) is cls}


def main(read_fd: int, write_fd: int, workdir: str, max_message: int,
         degraded: list[str]) -> None:
    """Serve requests until the grader closes the pipe. Called in the sandboxed child."""
    os.chdir(workdir)
    # Line-buffered, so what the student printed before a hang or a crash is still shown.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(line_buffering=True)  # type: ignore[union-attr]
        except (AttributeError, ValueError):
            pass
    sys.path[:0] = [workdir]
    sys.argv = ["student"]
    channel = protocol.Channel(read_fd, write_fd, max_message)
    Runner(channel, workdir).serve(degraded)
