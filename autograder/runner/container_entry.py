"""The entry point of the student runner inside a ``docker`` sandbox container.

The container holds Python, numpy, msgpack, torch and the runner's own files only. The grader
outside bind-mounts, read-only:

* ``/ag/chan``: FIFOs ``to_runner`` (requests) and ``from_runner`` (replies), the protocol
  channel, and ``output``, where stdout and stderr go (plain output, in step with the replies);
* ``/ag/files``: a copy of the student's files.

This module copies the files into the writable, size-bounded tmpfs ``/submission`` (regular
files and directories only: no symlinks, devices or FIFOs follow), opens the FIFOs, closes every
other descriptor and hands over to :func:`autograder.runner.serve.main`. It runs as the
container's unprivileged user; the container itself (no network, read-only root, dropped
capabilities, cgroup limits) is the confinement.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import sys
import time

CHANNEL_DIR = "/ag/chan"
FILES_DIR = "/ag/files"
WORKDIR = "/submission"
EXIT_SETUP_FAILED = 70


def copy_files(src: str, dst: str) -> None:
    """Copy regular files and directories from ``src`` into ``dst``; skip anything else."""
    for dirpath, dirnames, filenames in os.walk(src, followlinks=False):
        rel = os.path.relpath(dirpath, src)
        target = dst if rel == "." else os.path.join(dst, rel)
        os.makedirs(target, exist_ok=True)
        for name in filenames:
            path = os.path.join(dirpath, name)
            if stat.S_ISREG(os.lstat(path).st_mode):
                shutil.copyfile(path, os.path.join(target, name), follow_symlinks=False)
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]


class _RaiseLimitForTorch:
    """A meta-path hook: before torch is first imported, the soft address-space limit rises to
    the hard one, which leaves room for torch's own mappings (the process backend's warm runner
    has torch mapped before its limit applies). It finds nothing itself."""

    def __init__(self, hard: int):
        self.hard = hard

    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (self.hard, self.hard))
            sys.meta_path[:] = [f for f in sys.meta_path if f is not self]
        return None


def limit_address_space(extra_mb: int, torch_mb: int) -> None:
    """What is mapped now (the interpreter, numpy) plus ``extra_mb``: a runaway allocation
    raises MemoryError in the student's code before the container's OOM killer strikes. The
    cgroup's memory limit stays the real bound: raising the soft limit gains nothing."""
    import resource

    with open("/proc/self/status") as f:
        size = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    soft = size + extra_mb * 2**20
    hard = soft + torch_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    if torch_mb and "torch" not in sys.modules:
        sys.meta_path.insert(0, _RaiseLimitForTorch(hard))


#: A line that imports torch: ``import torch``, ``import numpy as np, torch``, ``from torch
#: import nn`` (indented too: an import inside a function is imported before the hello all the
#: same). The word alone is not enough: the LSTM handout's docstring names PyTorch's LSTMCell,
#: and importing torch for every such submission cost 1 to 3 s per container.
_TORCH_IMPORT = re.compile(rb"^[ \t]*(?:from[ \t]+torch\b|import[ \t]+[^\n#]*\btorch\b)",
                           re.MULTILINE)


def imports_torch(workdir: str, limit: int = 4 * 2**20) -> bool:
    """Whether any of the student's (or support) files imports torch: then torch is imported
    before the hello, as the process backend's warm runner has it, so its import (seconds)
    is start-up time rather than part of a test's time limit. A file that reaches torch some
    other way (``importlib``) still works: the import then happens in the test that needs it."""
    seen = 0
    for dirpath, _, filenames in os.walk(workdir):
        for name in filenames:
            path = os.path.join(dirpath, name)
            try:
                with open(path, "rb") as f:
                    data = f.read(limit - seen)
            except OSError:
                continue
            seen += len(data)
            if b"torch" in data and _TORCH_IMPORT.search(data):
                return True
            if seen >= limit:
                return False
    return False


def wait_until_ready(limit_s: float = 600.0) -> None:
    """The FIFO opens above return once the grader holds its ends; the mark, written last, is
    the guarantee that every file and both ends are in place (an open has been seen to return
    a few milliseconds early under load)."""
    mark = os.path.join(CHANNEL_DIR, "ready")
    pause, waited = 0.0005, 0.0
    while not os.path.exists(mark):
        if waited > limit_s:
            raise TimeoutError("the grader never handed this container its files")
        time.sleep(pause)
        waited += pause
        pause = min(pause * 2, 0.05)


def main(argv: list[str]) -> None:
    max_message = int(argv[1]) if len(argv) > 1 else 256 * 2**20
    address_space_mb = int(argv[2]) if len(argv) > 2 else 0
    torch_mb = int(argv[3]) if len(argv) > 3 else 0
    degraded: list[str] = []
    try:
        # Everything that needs no student file first: a warm container waits, ready, below.
        sys.path[:] = [p for p in sys.path if p and os.path.isdir(p)]
        from autograder.runner import serve
        # Blocks until the grader hands this container a submission: it writes the files,
        # opens its end of from_runner and a writer of to_runner, then the "ready" mark.
        write_fd = os.open(os.path.join(CHANNEL_DIR, "from_runner"), os.O_WRONLY)
        read_fd = os.open(os.path.join(CHANNEL_DIR, "to_runner"), os.O_RDONLY)
        wait_until_ready()
        # stdout and stderr: the output FIFO, in step with the replies.
        out_fd = os.open(os.path.join(CHANNEL_DIR, "output"), os.O_WRONLY)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        os.close(out_fd)
        copy_files(FILES_DIR, WORKDIR)
        for fd in range(3, 256):
            if fd not in (read_fd, write_fd):
                try:
                    os.close(fd)
                except OSError:
                    pass
        if imports_torch(WORKDIR):
            try:
                import torch  # noqa: F401
            except ImportError:
                pass
        if address_space_mb > 0:
            limit_address_space(address_space_mb, torch_mb)
    except BaseException:  # noqa: BLE001 - a setup failure is the sandbox's, reported as such
        import traceback
        sys.stderr.write("[sandbox] runner setup failed:\n" + traceback.format_exc())
        sys.stderr.flush()
        os._exit(EXIT_SETUP_FAILED)
    serve.main(read_fd, write_fd, WORKDIR, max_message, degraded)


if __name__ == "__main__":
    main(sys.argv)
