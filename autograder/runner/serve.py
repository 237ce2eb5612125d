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
            reply = {"ok": result}
            if request.get("return_args"):
                reply["args"] = args
                reply["kwargs"] = kwargs
            return reply
        if op == "release":
            for hid in request.get("handles", []):
                self.handles.pop(hid, None)
            return {"ok": None}
        raise protocol.ProtocolError(f"unknown operation {op!r}")

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
