"""The sandbox interface: every backend starts a student runner and hands back the same thing.

A :class:`RunnerProcess` is the grader's view of one running student runner: the protocol
channel, the captured output (stdout and stderr together, capped), a way to wait for a reply
under a deadline while draining output, a kill that takes every process of the runner with it,
and how the runner ended.
"""

from __future__ import annotations

import os
import select
import signal
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from autograder.errors import PlatformError
from autograder.protocol import Channel

if TYPE_CHECKING:  # not at run time: `check` starts its fork server before pydantic loads
    from autograder.config import Resources


class SandboxError(PlatformError):
    """The sandbox itself failed (not the student's code): a grader-side problem."""


class CallTimeout(Exception):
    """The runner did not answer before the deadline."""


@dataclass(frozen=True)
class Limits:
    memory_mb: int = 2048
    cpu_s: int = 600
    max_processes: int = 64
    disk_mb: int = 64
    max_output_bytes: int = 64 * 1024
    max_message_bytes: int = 256 * 2**20
    # none | optional | required, from the assignment (either backend hands one device over);
    # None: not specified, the sandbox's own policy applies.
    gpu: str | None = None

    @classmethod
    def from_resources(cls, r: Resources) -> Limits:
        return cls(memory_mb=r.memory_mb, cpu_s=int(r.time_limit_s) + 5,
                   max_processes=r.max_processes, disk_mb=r.disk_mb,
                   max_output_bytes=r.max_output_kb * 1024,
                   max_message_bytes=r.max_message_mb * 2**20, gpu=r.gpu)


@dataclass(frozen=True)
class ExitInfo:
    """How a runner ended, as its sandbox observed it (never as the runner said).

    ``code``: the exit status, or 128 + the signal number when ``signaled``. ``ambiguous``: the
    backend saw only a status above 128 and cannot tell ``exit(137)`` from a SIGKILL (docker's
    init reports both alike). ``cpu_s`` and ``maxrss_kb`` are the runner's own (with the
    processes it started and waited for), 0 where the backend cannot measure them."""

    code: int
    signaled: bool = False
    cpu_s: float = 0.0
    maxrss_kb: int = 0
    ambiguous: bool = False

    @property
    def signal(self) -> int:
        """The signal that killed the runner, 0 if it exited (or the backend cannot tell)."""
        return self.code - 128 if self.signaled and self.code > 128 else 0

    def describe(self) -> str:
        if self.signaled or (self.ambiguous and self.code > 128):
            name = _signal_name(self.code - 128)
            meaning = {"SIGKILL": "killed", "SIGXCPU": "CPU time limit exceeded",
                       "SIGSEGV": "segmentation fault", "SIGABRT": "aborted"}.get(name, "")
            killed = f"killed by {name}" + (f" ({meaning})" if meaning else "")
            if not self.signaled:
                return f"exited with status {self.code} or was {killed}"
            return killed
        return f"exited with status {self.code}"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class OutputBuffer:
    """What the runner printed (stdout and stderr interleaved), kept up to a cap."""

    def __init__(self, cap: int):
        self.cap = cap
        self.data = bytearray()
        self.total = 0

    def feed(self, chunk: bytes) -> None:
        room = self.cap - len(self.data)
        if room > 0:
            self.data += chunk[:room]
        self.total += len(chunk)

    @property
    def truncated(self) -> bool:
        return self.total > len(self.data)

    def text(self, start: int = 0, end: int | None = None) -> str:
        return bytes(self.data[start:end]).decode("utf-8", "replace")


class RunnerProcess(ABC):
    """A running student runner, as the grader sees it. Backends supply :meth:`exit_info`."""

    def __init__(self, channel: Channel, output_fd: int, output: OutputBuffer,
                 kill_pids: tuple[int, ...], degraded: list[str]):
        self.channel = channel
        self.output_fd = output_fd
        self.output = output
        self.kill_pids = kill_pids
        self.degraded = degraded
        self.started = time.monotonic()
        self._output_open = True

    def drain_output(self, timeout: float = 0.0) -> None:
        """Read whatever output is waiting (the runner flushes before every reply)."""
        while self._output_open:
            ready, _, _ = select.select([self.output_fd], [], [], timeout)
            if not ready:
                return
            chunk = os.read(self.output_fd, 1 << 16)
            if not chunk:
                self._output_open = False
                return
            self.output.feed(chunk)
            timeout = 0.0

    def waiter(self, deadline: float):
        """A ``wait`` callback for :meth:`Channel.recv_bytes`: blocks until the channel is
        readable, draining output meanwhile, and raises :class:`CallTimeout` at ``deadline``."""
        def wait() -> None:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise CallTimeout()
                fds = [self.channel.read_fd] + ([self.output_fd] if self._output_open else [])
                ready, _, _ = select.select(fds, [], [], min(remaining, 3600.0))
                if self.output_fd in ready:
                    self.drain_output()
                if self.channel.read_fd in ready:
                    return
        return wait

    def end(self) -> bool:
        """Begin ending the runner without waiting for it, where the backend can; True if it
        did (then :meth:`exit_info` soon has how it ended, and :meth:`close` finishes). A
        backend whose runner takes a while to report its end starts it here, so the grader
        can go on with the next submission meanwhile."""
        return False

    def kill(self) -> None:
        for pid in self.kill_pids:
            for kill in (os.kill, os.killpg):
                try:
                    kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass

    def serving(self) -> None:
        """The runner has said hello: what it uses from now on is the student code's own."""

    @abstractmethod
    def exit_info(self, timeout: float = 2.0) -> ExitInfo | None:
        """How the runner ended (None if it is still running after ``timeout``)."""

    def close(self) -> None:
        self.kill()
        self.release_pipes()

    def release_pipes(self) -> None:
        """Close the protocol channel and the output pipe, keeping what was still in it."""
        self.channel.close()
        try:
            self.drain_output(0.05)
        except OSError:
            pass
        try:
            os.close(self.output_fd)
        except OSError:
            pass


class Sandbox(ABC):
    """A backend that starts student runners."""

    name: str

    @abstractmethod
    def start(self, files: Path, limits: Limits, slot: int = 0) -> RunnerProcess:
        """Start a runner over a copy of ``files`` (the student's files and public support
        files only). ``slot`` distinguishes concurrent runners (each gets its own uid)."""

    def expect_starts(self, slot: int, starts: int | None) -> None:
        """A hint from a batch: after the starts made so far, ``slot`` will see at most
        ``starts`` more (None: unknown, as for a service's worker). A backend that prepares
        runners ahead prepares no more than that. Nothing by default."""

    def warm_up(self) -> None:
        """Start what makes the first runner slow (the process backend's fork server) and
        return at once; :meth:`start` waits for what is left of it. Nothing by default."""

    def close(self) -> None:
        """Release what the backend holds (the fork server, containers)."""

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
