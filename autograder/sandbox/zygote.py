"""The warm fork server of the process sandbox.

The grader starts it as a fresh interpreter (``python -I -m autograder.sandbox.zygote FD``) with
a clean environment, never by forking itself: the grader's memory holds hidden tests and the
reference solution, and a fork would copy them into the student's process. The zygote imports
numpy and torch once, then forks one runner per request, so a submission costs a fork instead
of a 2-second interpreter start.

Process tree per runner::

    zygote ─ supervisor (host PID namespace: reports the init's pid, then its exit and rusage)
               └─ init (PID 1 of a new PID namespace: builds the private root, reaps orphans,
                  │     reports the runner's own wait status and rusage)
                    └─ runner (PID 2: drops to the slot's uid, serves the protocol)

When the runner exits, init exits, and the kernel kills everything left in the namespace.
The grader ends a runner with SIGTERM to its init (which kills the runner and reports how it
ended), then SIGKILL to the init and its process group for whatever is left.

Requests arrive on a SOCK_SEQPACKET socket as a JSON plan plus four file descriptors: the
protocol's read and write ends, the output pipe (stdout and stderr together) and the status pipe;
a GPU runner's request adds a fifth, its device lease's lock, held by the supervisor.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import traceback

if __name__ == "__main__":
    # Before anything imports numpy: the sandbox binds the libraries at their real paths, and a
    # virtualenv reached through a symlink would leave every package's __path__ naming a path
    # the runner cannot see, so a submodule imported on use (numpy.ma) would fail in the
    # student's process as if their code were wrong.
    sys.path[:] = [os.path.realpath(p) if p and os.path.isdir(p) else p for p in sys.path]

from autograder.sandbox import confine, seccomp  # noqa: E402 - after the path fix above


def _write_json(fd: int, obj: dict) -> None:
    os.write(fd, (json.dumps(obj) + "\n").encode())


def _exit_code(status: int) -> int:
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    return 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else 255


def _runner(plan: confine.Plan, proto_r: int, proto_w: int, workdir: str, is_root: bool,
            degraded: list[str], max_message: int) -> None:
    """Runs in the runner process; never returns."""
    code = 0
    try:
        confine.close_fds_except({proto_r, proto_w})
        confine.apply_limits(plan, is_root=is_root)
        if is_root:
            confine.drop_privileges(plan.uid)
        if not confine.no_new_privs():
            degraded.append("no_new_privs could not be set")
        problem = seccomp.install()
        if problem:
            degraded.append(problem)
        confine.clean_environment(workdir, plan.environment)
        sys.path[:] = [p for p in sys.path if p and os.path.isdir(p)]  # what exists in the root
        from autograder.runner import serve
        serve.main(proto_r, proto_w, workdir, max_message, degraded)
    except BaseException:  # noqa: BLE001 - anything here is a sandbox failure, reported as such
        try:
            sys.stderr.write("[sandbox] runner setup failed:\n" + traceback.format_exc())
            sys.stderr.flush()
        except BaseException:  # noqa: BLE001
            pass
        code = 70
    os._exit(code)


def _init(plan: confine.Plan, fds: list[int], is_root: bool, namespaced: bool,
          degraded: list[str], max_message: int) -> None:
    """PID 1 of the runner's namespace (or, without one, a reaper); never returns.

    It reports the runner's own wait status and resource use (``wait4`` of the runner: its CPU
    time and peak memory, with what it waited for) on the status pipe before it exits. The
    grader ends a runner with SIGTERM to this process (the runner's uid cannot signal it; as
    PID 1 it gets no signal it has no handler for): it kills the runner, and in a namespace
    everything else in it, then reaps and reports as usual. A SIGKILL from the grader would
    lose the report: the kernel reaps the namespace's processes without accounting for them."""
    proto_r, proto_w, out_w, status_w = fds
    runner = 0

    def end_runner(*_: object) -> None:
        if runner == 0:  # still building the sandbox: nothing of the student's runs yet
            os._exit(143)
        try:
            # In its own PID namespace, kill(-1) reaches every process of the sandbox but this.
            os.kill(-1 if namespaced else runner, signal.SIGKILL)
        except OSError:
            pass

    signal.signal(signal.SIGTERM, end_runner)
    try:
        os.setpgid(0, 0)
        os.dup2(out_w, 1)
        os.dup2(out_w, 2)
        os.close(out_w)
        if namespaced:
            workdir = confine.build_root(plan)
        else:
            workdir = confine.copy_workdir(plan, owner=plan.uid if is_root else None)
    except BaseException:  # noqa: BLE001
        os.write(2, ("[sandbox] could not prepare the sandbox:\n" + traceback.format_exc()).encode())
        os._exit(71)
    runner = os.fork()
    if runner == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _runner(plan, proto_r, proto_w, workdir, is_root, degraded, max_message)
    os.close(proto_r)
    os.close(proto_w)
    code = 255
    while True:  # reap everything; leave when the runner itself is gone
        try:
            pid, status, usage = os.wait4(-1, 0)
        except ChildProcessError:
            break
        if pid == runner:
            code = _exit_code(status)
            try:
                _write_json(status_w, {"runner": {
                    "exit": code, "signaled": os.WIFSIGNALED(status),
                    "cpu_s": usage.ru_utime + usage.ru_stime, "maxrss_kb": usage.ru_maxrss}})
            except OSError:
                pass
            break
    os._exit(code)


def _supervise(plan: confine.Plan, fds: list[int], max_message: int) -> None:
    """The forked child of the zygote; never returns."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    # A fifth descriptor is a GPU lease's lock (autograder.sandbox.gpu): kept here until the
    # init, and with it every process of the runner, has ended, so the device stays held while
    # anything of the runner's may use it, even if the grader is gone.
    fds, held = fds[:4], fds[4:]
    proto_r, proto_w, out_w, status_w = fds
    os.setsid()
    is_root = os.geteuid() == 0
    degraded = confine.unshare_namespaces(is_root)
    namespaced = is_root and not degraded
    init = os.fork()
    if init == 0:
        for fd in held:
            os.close(fd)
        _init(plan, fds, is_root, namespaced, degraded, max_message)
    for fd in (proto_r, proto_w, out_w):
        os.close(fd)
    _write_json(status_w, {"pid": init})
    _, status, usage = os.wait4(init, 0)
    for fd in held:  # the runner is gone: its GPU is free before the grader hears it ended
        os.close(fd)
    _write_json(status_w, {"exit": _exit_code(status), "signaled": os.WIFSIGNALED(status),
                           "cpu_s": usage.ru_utime + usage.ru_stime,
                           "maxrss_kb": usage.ru_maxrss})
    os._exit(0)


def _reap(*_: object) -> None:
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def serve(sock: socket.socket) -> None:
    signal.signal(signal.SIGCHLD, _reap)
    while True:
        try:
            msg, fds, _flags, _addr = socket.recv_fds(sock, 1 << 16, 5)
        except (ConnectionResetError, OSError):
            return
        if not msg:
            return
        request = json.loads(msg)
        plan = confine.Plan.from_json(request["plan"])
        pid = os.fork()
        if pid == 0:
            sock.close()
            _supervise(plan, fds, int(request["max_message"]))
        for fd in fds:
            os.close(fd)


def main() -> None:
    fd = int(sys.argv[1])
    preload = [m for m in sys.argv[2].split(",") if m] if len(sys.argv) > 2 else []
    for name in preload:
        try:
            __import__(name)
        except ImportError:
            pass
    if "torch" in sys.modules:
        # A forked child hangs if the parent already used a thread pool; keep it at one thread.
        sys.modules["torch"].set_num_threads(1)
        sys.modules["torch"].set_num_interop_threads(1)
    import numpy  # noqa: F401 - the runner always needs it; import it once, here
    from autograder.runner import serve as _serve  # noqa: F401 - warm the runner's imports
    sock = socket.socket(fileno=fd)
    sock.send(b'{"ready": true}')
    serve(sock)


if __name__ == "__main__":
    main()
