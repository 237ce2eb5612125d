"""The trusted side's view of a submission: proxies that turn attribute calls into protocol
requests, and the exceptions a test sees when the student side fails.

``student.softmax_loss(x, y)`` encodes ``x`` and ``y``, sends a ``call`` request to the runner,
waits for the reply under the current test's deadline (draining the runner's output meanwhile),
and decodes the result. Values that cannot cross come back as :class:`RemoteHandle` objects.
A runner that dies, hangs or breaks the protocol is killed; the next call starts a fresh one.
"""

from __future__ import annotations

import builtins
import itertools
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from autograder import protocol
from autograder.errors import PlatformError
from autograder.text import neutralise, neutralise_name
from autograder.sandbox.base import CallTimeout, ExitInfo, Limits, RunnerProcess, Sandbox


# --- what a test sees when the student side fails --------------------------------------------
class StudentSideFailure(Exception):
    """Base of every failure caused by the student's code or process."""

    outcome = "error"


class StudentError(StudentSideFailure):
    """The student's code raised an exception. For built-in exception types the raised object is
    also an instance of that type, so ``pytest.raises(ValueError)`` works in a test."""

    def __init__(self, type_name: str, message: str, traceback_text: str, where: str,
                 builtin: bool = False):
        self.type_name = type_name
        self.student_message = message
        self.traceback_text = traceback_text
        self.where = where
        # The runner checked the raised type against the real built-in by identity: a student
        # class that is merely *named* MemoryError is not one.
        self.builtin = builtin
        super().__init__(f"{where} raised {type_name}: {message}")

    @property
    def outcome(self) -> str:  # type: ignore[override]
        if self.builtin and self.type_name == "NotImplementedError":
            return "not_implemented"
        if self.builtin and self.type_name == "MemoryError":
            return "memory"
        return "error"


class ImportFailed(StudentError):
    """The student's module could not be imported."""


class CallTimedOut(StudentSideFailure):
    outcome = "timeout"


class RunnerDied(StudentSideFailure):
    outcome = "crash"


class RunnerOutOfMemory(RunnerDied):
    """Killed for memory (the docker backend's cgroup OOM killer)."""

    outcome = "memory"


class ProtocolViolation(StudentSideFailure):
    outcome = "protocol"


class StaleHandle(StudentSideFailure):
    outcome = "error"


class SandboxFailure(PlatformError):
    """The sandbox failed before any student code ran: a grader-side problem."""


_error_classes: dict[str, type[StudentError]] = {}

#: Seconds a runner may take to start (fork, namespaces, private root) before it is abandoned.
STARTUP_S = 30.0


def _student_error_class(type_name: str, builtin: bool, base: type[StudentError]) -> type:
    """``StudentError`` (or ``ImportFailed``) mixed with the built-in exception of that name."""
    key = f"{base.__name__}:{type_name}:{builtin}"
    if key in _error_classes:
        return _error_classes[key]
    cls: type = base
    exc = getattr(builtins, type_name, None) if builtin else None
    if isinstance(exc, type) and issubclass(exc, Exception) and exc.__name__ == type_name:
        try:
            cls = type(f"Student{type_name}", (base, exc), {})
        except TypeError:  # layout conflict (e.g. OSError subclasses): keep the plain class
            cls = base
    _error_classes[key] = cls
    return cls


def _raise_student_error(err: Any, where: str, base: type[StudentError] = StudentError) -> None:
    if type(err) is not dict:
        raise ProtocolViolation("the student process sent a malformed error")
    if err.get("protocol") is True:  # the runner could not send the result back
        raise ProtocolViolation(f"what {where} returned could not be sent back: "
                                f"{neutralise(str(err.get('message', ''))[:500])}")
    # Every string here is the student's: neutralised where it enters the trusted side.
    type_name = neutralise_name(str(err.get("type", "Exception"))[:100])
    builtin = err.get("builtin") is True
    cls = _student_error_class(type_name, builtin, base)
    args = (type_name, neutralise(str(err.get("message", ""))[:8000]),
            neutralise(str(err.get("traceback", ""))[:8000]), where)
    try:
        exc = cls(*args, builtin=builtin)
    except TypeError:  # a built-in whose constructor wants other arguments (UnicodeDecodeError)
        exc = base(*args, builtin=builtin)
    raise exc


# --- proxies ------------------------------------------------------------------------------------
class RemoteHandle:
    """A value that stayed in the student process. Pass it back as an argument, or call its
    methods: ``model.forward(x)`` runs in the student process."""

    def __init__(self, session: StudentSession, generation: int, hid: int, type_name: str = ""):
        self._session = session
        self._generation = generation
        self._hid = hid
        self._type_name = type_name

    def __getattr__(self, name: str) -> RemoteFunction:
        if name.startswith("__"):
            raise AttributeError(name)
        return RemoteFunction(self._session, {"handle": self._hid, "name": name}, name,
                              handle=self)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return RemoteFunction(self._session, {"handle": self._hid, "name": None},
                              "the returned callable", handle=self)(*args, **kwargs)

    def __getitem__(self, key: Any) -> Any:
        """``handle[key]``, evaluated in the student process (e.g. one element of a kept tuple)."""
        return RemoteFunction(self._session, {"handle": self._hid, "name": "__getitem__"},
                              f"{self._type_name or 'value'}[...]", handle=self)(key)

    def __repr__(self) -> str:
        return f"<{self._type_name or 'value'} object in the student process>"

    def __bool__(self) -> bool:
        return True

    def __eq__(self, other: object) -> bool:  # identity only: nothing is decided remotely
        return self is other

    __hash__ = object.__hash__


class RemoteFunction:
    """A function (or method) of the student's code, callable from a test."""

    def __init__(self, session: StudentSession, target: dict, name: str,
                 handle: RemoteHandle | None = None):
        self._session = session
        self._target = target
        self.__name__ = name
        self._handle = handle

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        reply = self._session.call(self._target, args, kwargs, self.__name__, self._handle)
        return reply["ok"]

    def call_returning_args(self, *args: Any, **kwargs: Any) -> tuple[Any, tuple, dict]:
        """Call and return ``(result, args_after, kwargs_after)``: the arguments as the student's
        code left them, for checking in-place modification or state written into a dict."""
        reply = self._session.call(self._target, args, kwargs, self.__name__, self._handle,
                                   return_args=True)
        return reply["ok"], tuple(reply.get("args", ())), dict(reply.get("kwargs", {}))

    def call_keeping_result(self, *args: Any, **kwargs: Any) -> RemoteHandle:
        """Call, and leave the result in the student process: returns a handle to it. Times a
        call without timing the transfer of what it returns (a large cache, say)."""
        reply = self._session.call(self._target, args, kwargs, self.__name__, self._handle,
                                   keep_result=True)
        return reply["ok"]

    def call_keeping_items(self, keep: Sequence[int], *args: Any, **kwargs: Any) -> Any:
        """Call; of a tuple (or list) result, the elements at the indices ``keep`` stay in the
        student process and come back as handles, the rest as data. For what a test passes
        back but never reads (``_, _, cache = step_forward(...)``): the cache is neither
        encoded nor decoded. A result that is not a tuple that long comes back whole."""
        reply = self._session.call(self._target, args, kwargs, self.__name__, self._handle,
                                   keep_items=list(keep))
        return reply["ok"]

    def perturbed_losses(self, args: Sequence[Any], kwargs: dict[str, Any], wrt: int | str,
                         h: float, df: Any, reduce: Callable[[Any], float]) -> np.ndarray:
        """The ``(x.size, 2)`` losses of a numerical gradient, ``x = args[wrt]`` (or
        ``kwargs[wrt]``) moved by ``+h`` and ``-h`` entry by entry, computed by one request:
        the student process calls this function ``2 x x.size`` times and sends back only the
        numbers. ``df`` is the upstream weights (None, a float64 array, or a dict of them by
        output index); ``reduce`` is the grader's own reduction of one output, used to say
        what is wrong with an output the runner could not reduce. See
        :func:`autograder.checks.numerical_gradient_of`, which validates what comes back."""
        return self._session.perturbed_losses(self._target, args, kwargs, wrt, h, df, reduce,
                                              self.__name__, self._handle)

    def get(self) -> Any:
        """The attribute's value rather than a call (e.g. a module-level constant)."""
        return self._session.getattr(self._target, self.__name__)

    def __repr__(self) -> str:
        return f"<student function {self.__name__}>"


class ModuleProxy:
    """A student module: attribute access gives a :class:`RemoteFunction`."""

    def __init__(self, session: StudentSession, module: str):
        self._session = session
        self._module = module

    def __getattr__(self, name: str) -> RemoteFunction:
        if name.startswith("__"):
            raise AttributeError(name)
        return RemoteFunction(self._session, {"module": self._module, "name": name},
                              f"{self._module}.{name}")

    def __repr__(self) -> str:
        return f"<student module {self._module}>"


# --- one submission's student side ---------------------------------------------------------------
class StudentSession:
    """Starts the runner on first use, imports modules on demand, restarts after a death.

    ``deadline`` (a ``time.monotonic()`` value) bounds every call; the harness sets it per test.
    """

    def __init__(self, sandbox: Sandbox, files: Path, limits: Limits, modules: tuple[str, ...],
                 slot: int = 0, prestarted: RunnerProcess | None = None):
        self.sandbox = sandbox
        self._prestarted = prestarted  # started ahead of time for this submission's files
        self.files = files
        self.limits = limits
        self.modules = modules
        self.slot = slot
        self.deadline = float("inf")
        self.runner: RunnerProcess | None = None
        self.generation = 0
        self.degraded: list[str] = []
        self.exits: list[ExitInfo] = []
        self.runner_starts = 0
        # Replies from the student's code so far: a test whose own code fails before any
        # student value reached it has a bug of its own (a grader error), see harness/verdict.py.
        self.replies = 0
        self.output_log: list[str] = []  # output of finished runners, one per generation
        self.output_truncated = False
        self._imported: set[str] = set()
        self._import_failures: dict[str, BaseException] = {}
        self._ids = itertools.count(1)

    # -- lifecycle ---------------------------------------------------------------------------
    def module(self, name: str) -> ModuleProxy:
        return ModuleProxy(self, name)

    def _start(self) -> RunnerProcess:
        self.runner_starts += 1
        self.generation += 1
        began = time.monotonic()
        runner, self._prestarted = self._prestarted, None
        if runner is None:
            runner = self.sandbox.start(self.files, self.limits, self.slot)
        self.runner = runner
        self._imported = set()
        try:
            # Starting the runner is the platform's cost, not the student's: it has its own
            # allowance instead of eating into the test's time limit.
            hello = self._receive(runner, expect_id=None,
                                  deadline=max(self.deadline, time.monotonic() + STARTUP_S))
        except RunnerDied as e:
            # Nothing of the student's has run yet: the sandbox itself failed to start.
            output = self.output_log[-1] if self.output_log else ""
            raise SandboxFailure(f"the sandbox could not start the student process ({e}); "
                                 f"{output.strip()[-2000:]}") from None
        except StudentSideFailure:
            self.stop()
            raise
        if type(hello) is not dict or hello.get("op") != "hello":
            self.stop()
            raise ProtocolViolation("the student process did not start the protocol correctly")
        runner.serving()
        # The start (a container, a fork, a private root) is the platform's time, not the
        # student's: the test's deadline moves by what it took.
        self.deadline += time.monotonic() - began
        degraded = hello.get("degraded") or []
        self.degraded = [neutralise(str(d)) for d in degraded][:20] \
            if type(degraded) is list else []
        return runner

    def stop(self, wait_for_exit: float = 0.0) -> ExitInfo | None:
        """Kill the runner (if any) and record how it ended. ``wait_for_exit``: a runner that
        closed its pipe is about to exit; give it that long so its own exit status is seen."""
        runner, self.runner = self.runner, None
        if runner is None:
            return None
        if wait_for_exit:
            runner.exit_info(timeout=wait_for_exit)
        runner.close()
        text = neutralise(runner.output.text())
        if runner.output.truncated:
            self.output_truncated = True
            text += (f"\n[output truncated: {runner.output.total} bytes printed, "
                     f"{len(runner.output.data)} kept]\n")
        self.output_log.append(text)
        info = runner.exit_info(timeout=2.0)
        if info is not None:
            self.exits.append(info)
        return info

    @property
    def output_position(self) -> tuple[int, int]:
        """(runner generation, bytes of output so far): a bookmark for per-test output."""
        if self.runner is not None:
            self.runner.drain_output()
            return (self.generation, len(neutralise(self.runner.output.text())))
        return (self.generation, len(self.output_log[-1]) if self.output_log else 0)

    def output_since(self, mark: tuple[int, int]) -> str:
        """Everything printed since ``mark``, across runner restarts."""
        gen, pos = mark
        if self.runner is not None:
            self.runner.drain_output()
        texts = dict(enumerate(self.output_log, start=1))  # finished runners, by generation
        if self.runner is not None:
            texts[self.generation] = neutralise(self.runner.output.text())
        return "".join(text[pos:] if g == gen else text
                       for g, text in sorted(texts.items()) if g >= gen)

    # -- requests ----------------------------------------------------------------------------
    def _encode_arg(self, value: Any) -> Any:
        if isinstance(value, RemoteHandle):
            if value._session is not self or value._generation != self.generation:
                raise StaleHandle(
                    "a value from an earlier student process was passed back, but that process "
                    "has ended (it crashed or timed out), so the value is gone")
            return protocol.Handle(value._hid)
        raise TypeError(f"a test passed a {type(value).__name__} to the student's code; only "
                        f"plain data, numeric arrays, tensors and handles can be sent")

    def _receive(self, runner: RunnerProcess, expect_id: int | None,
                 deadline: float | None = None) -> Any:
        generation = self.generation
        deadline = self.deadline if deadline is None else deadline
        try:
            raw = runner.channel.recv_bytes(wait=runner.waiter(deadline))
            # Decoding a hostile reply is bounded too: in memory (a small multiple of the frame)
            # and in time (the call's own deadline, which the submission's budget contains).
            message = protocol.decode(
                raw, make_handle=lambda hid, name: RemoteHandle(self, generation, hid,
                                                                neutralise_name(name)),
                budget=protocol.DecodeBudget(len(raw), deadline=deadline))
        except CallTimeout:
            self.stop()
            raise CallTimedOut("the student's code did not finish within the time limit") \
                from None
        except protocol.ChannelClosed:
            info = self.stop(wait_for_exit=2.0)
            how = info.describe() if info else "ended"
            # Only a signal the sandbox saw (not an exit status of 137 the code chose) says
            # anything of the limits; a kill by the grader would have come through stop().
            outcome_hint = {9: " (usually the memory or CPU limit)",
                            24: " (its CPU time limit)"}.get(info.signal if info else 0, "")
            if getattr(info, "oom_killed", False):
                raise RunnerOutOfMemory(f"the student process was killed for using more than "
                                        f"its memory limit ({how})") from None
            raise RunnerDied(f"the student process {how}{outcome_hint}") from None
        except protocol.ProtocolError as e:
            self.stop()
            raise ProtocolViolation(f"the student process sent an invalid message: {e}") \
                from None
        if expect_id is not None and (type(message) is not dict or message.get("id") != expect_id):
            self.stop()
            raise ProtocolViolation("the student process sent a reply out of turn")
        return message

    def _request(self, message: dict, where: str) -> dict:
        if self.runner is None:
            self._start()
        runner = self.runner
        assert runner is not None
        message["id"] = rid = next(self._ids)
        body = protocol.encode(message, on_unsupported=self._encode_arg)
        try:
            runner.channel.send_bytes(body)
        except protocol.ChannelClosed:
            info = self.stop(wait_for_exit=2.0)
            raise RunnerDied(f"the student process {info.describe() if info else 'ended'} "
                             f"before {where} was called") from None
        # Output is drained while waiting and at the end of each test, not after every call.
        reply = self._receive(runner, expect_id=rid)
        self.replies += 1
        return reply

    def _ensure_imported(self, module: str) -> None:
        if module in self._import_failures:
            raise self._import_failures[module]
        if module in self._imported:
            return
        where = f"importing {module}.py"
        try:
            reply = self._request({"op": "import", "module": module}, where)
            if "error" in reply:
                _raise_student_error(reply["error"], where, ImportFailed)
        except (ImportFailed, RunnerDied, ProtocolViolation, CallTimedOut) as e:
            # Importing again gives the same result: fail every later test the same way.
            self._import_failures[module] = e
            raise
        self._imported.add(module)

    def call(self, target: dict, args: tuple, kwargs: dict, where: str,
             handle: RemoteHandle | None = None, return_args: bool = False,
             keep_result: bool = False, keep_items: list[int] | None = None) -> dict:
        request = {"op": "call", "target": target, "args": list(args), "kwargs": dict(kwargs),
                   "return_args": return_args, "keep_result": keep_result}
        if keep_items is not None:
            request["keep_items"] = keep_items
        return self._call(request, where, handle)

    def _call(self, request: dict, where: str, handle: RemoteHandle | None) -> dict:
        if handle is not None and handle._generation != self.generation:
            raise StaleHandle("this value came from an earlier student process that has ended")
        if "module" in request["target"]:
            self._ensure_imported(request["target"]["module"])
        reply = self._request(request, where)
        if "error" in reply:
            _raise_student_error(reply["error"], where)
        if "ok" not in reply:
            raise ProtocolViolation("the student process sent a reply without a result")
        return reply

    def perturbed_losses(self, target: dict, args: Sequence[Any], kwargs: dict[str, Any],
                         wrt: int | str, h: float, df: Any, reduce: Callable[[Any], float],
                         where: str, handle: RemoteHandle | None = None) -> np.ndarray:
        """One ``numgrad`` request (see :meth:`RemoteFunction.perturbed_losses`). The reply is
        the student side's word only: its shape and type are checked here (anything else is a
        protocol violation); whether the numbers are finite, and what they mean, is for the
        check to judge."""
        x = args[wrt] if isinstance(wrt, int) else kwargs[wrt]
        request = {"op": "numgrad", "target": target, "args": list(args), "kwargs": dict(kwargs),
                   "wrt": wrt, "h": float(h), "df": df}
        ok = self._call(request, where, handle)["ok"]
        if type(ok) is not dict:
            raise ProtocolViolation(f"{where}: the student process answered a numerical "
                                    f"gradient request with something else")
        if "unreduced" in ok:
            # The runner says this output could not be reduced: the grader's own reduction
            # says why, in the words it uses for a local function. If it can reduce it after
            # all, the runner lied about it.
            reduce(ok["unreduced"])
            raise ProtocolViolation(f"{where}: the student process stopped a numerical gradient "
                                    f"on an output that was fine")
        losses = ok.get("losses")
        if (type(losses) is not np.ndarray or losses.dtype != np.float64
                or losses.shape != (np.size(x), 2)):
            got = (f"an array of shape {losses.shape} and dtype {losses.dtype}"
                   if type(losses) is np.ndarray else type(losses).__name__)
            raise ProtocolViolation(f"{where}: a numerical gradient request needs "
                                    f"{np.size(x)} x 2 float64 numbers back, the student process "
                                    f"sent {got}")
        return losses

    def getattr(self, target: dict, where: str) -> Any:
        if "module" in target:
            self._ensure_imported(target["module"])
        reply = self._request({"op": "getattr", "target": target}, where)
        if "error" in reply:
            _raise_student_error(reply["error"], where)
        return reply.get("ok")

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def end(self) -> bool:
        """Begin ending the runner (the submission is done); True if the backend does that
        in the background, and :meth:`close` then waits for how it ended."""
        return self.runner is not None and self.runner.end()

    def ended(self) -> bool:
        """Whether the runner has ended (or none runs): :meth:`close` would not wait."""
        return self.runner is None or self.runner.exit_info(timeout=0) is not None

    def close(self) -> None:
        self.stop()
        if self._prestarted is not None:
            self._prestarted.close()
            self._prestarted = None
