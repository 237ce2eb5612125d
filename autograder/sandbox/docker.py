"""The ``docker`` sandbox backend: one container per runner start.

What enters the container: the grading image (Python, numpy, msgpack, torch and the runner's own
files: see :mod:`autograder.image.build`) and, bind-mounted read-only, a per-runner host folder
holding

* ``chan/``: three FIFOs: the protocol channel (``to_runner``, ``from_runner``) and the
  runner's stdout and stderr (``output``), and a ``ready`` mark the grader writes once
  everything is in place;
* ``files/``: a copy of the student's files (and public support files), which the entry point
  (:mod:`autograder.runner.container_entry`) copies into the container's own tmpfs
  ``/submission``. A read-only bind mount rather than ``docker cp``: ``docker cp`` cannot write
  into a tmpfs or a read-only root and costs another round trip to the daemon; the copy keeps
  the student's writes in the size-bounded tmpfs, never on the host; and the mount can be
  filled after the container started, which lets a container start ahead (below).

The trusted grader stays on the host: hidden tests, the reference and expected values never
enter the container. The protocol never touches stdout. The runner's stdout and stderr go to the
``output`` FIFO rather than through docker's attach stream: a FIFO keeps them in step with the
replies (the runner flushes before each reply, so a test's output is there when its reply is);
docker's stream arrives later, through the daemon. The ``docker run`` client's own output (its
errors) is added to the runner's output when it ends.

Every container: ``--network none``, a read-only root, size-bounded tmpfs for ``/tmp``,
``/dev/shm`` and ``/submission``, memory equal to memory+swap, ``--pids-limit``, a CPU quota,
``--cap-drop ALL``, ``no-new-privileges``, the seccomp profile of the one sandbox policy
(:mod:`autograder.sandbox.policy`: also ``ptrace``, new namespaces, io_uring, file locks), a
non-root uid per slot, no host environment, no log kept by the daemon
(``--log-driver none``: a flood cannot fill the host's disk), and a wall-clock kill. Containers
are labelled with their grader; they are removed when their runner ends, and a grader removes
those a crashed grader left behind when it starts.

Warm containers: a container start costs about half a second, so after each start the sandbox
launches the next containers for the same slot and limits (``warm``, default 2). They get as
far as they can without a submission (interpreter, numpy, the runner imported) and wait in the
FIFO open; :meth:`DockerSandbox.start` then only copies the files in and opens the channel.
A batch says how many starts each slot still expects (:meth:`DockerSandbox.expect_starts`), and
no container is launched that none of them would take; a service's warm grader gives no such
hint, and keeps its containers ready for jobs to come.
Nothing of a submission is in a container before it is handed over, and a container serves
one runner only.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from autograder.image.build import DEFAULT_TAG, docker_cli
from autograder.protocol import Channel, ChannelClosed
from autograder.sandbox.base import (ExitInfo, Limits, OutputBuffer, RunnerProcess, Sandbox,
                                     SandboxError)
from autograder.sandbox import policy
from autograder.sandbox.gpu import GpuAllocator, GpuLease, gpu_flags, request_gpu

IMAGE_ENV = "AUTOGRADER_IMAGE"
LABEL = "org.autograder.sandbox"
OWNER_LABEL = "org.autograder.owner"
EXPIRES_LABEL = "org.autograder.expires"
INSTANCE_LABEL = "org.autograder.instance"
UID_BASE = policy.UID_BASE
WORKDIR = "/submission"
#: Memory for the interpreter, numpy and torch themselves, on top of the submission's own
#: ``memory_mb`` (the process backend's warm runner has them loaded before its limit applies).
RUNTIME_MEMORY_MB = 384
#: The runner's soft address-space limit is what numpy's interpreter has mapped plus
#: ``memory_mb`` (a clean MemoryError before the cgroup's OOM killer); importing torch raises it
#: by this much for torch's own mappings.
TORCH_ADDRESS_SPACE_MB = 768
#: Extra wall-clock seconds a container may live beyond its CPU limit before it is killed
#: regardless of the harness (a hung grader must not leave it running).
WALL_SLACK_S = 60
#: A warm container (started ahead for the next runner of the same slot and limits, waiting for
#: its files) older than this is replaced rather than used.
POOL_MAX_IDLE_S = 600
CLEAN_ENV = policy.clean_environment(home=WORKDIR)


def seccomp_profile() -> dict:
    """The container's seccomp profile (docker's JSON format), from the one sandbox policy
    (:mod:`autograder.sandbox.policy`) the process backend's filter is built from too. Only
    x86-64 is listed: a call from another ABI (32-bit, x32) is refused outright, as there."""
    eperm = {"action": "SCMP_ACT_ERRNO", "errnoRet": policy.EPERM}
    return {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [
            {"names": list(policy.DENIED_SYSCALLS), **eperm},
            # New namespaces (a user namespace needs no capability): refused, one rule a flag
            # (a rule matches when (flags & F) == F).
            *({"names": ["clone"], **eperm,
               "args": [{"index": 0, "value": flag, "valueTwo": flag,
                         "op": "SCMP_CMP_MASKED_EQ"}]}
              for flag in policy.CLONE_NAMESPACE_FLAGS.values()),
            # Record locks and leases: a covert channel through shared read-only files.
            *({"names": ["fcntl"], **eperm,
               "args": [{"index": 1, "value": cmd, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]}
              for cmd in policy.FCNTL_LOCK_COMMANDS.values()),
            # clone3's flags sit in memory seccomp cannot read: "not implemented" makes the
            # libc fall back to clone, which is filtered above.
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": policy.ENOSYS},
        ],
    }


class DockerUnavailable(SandboxError):
    """No usable docker engine or image; the message says how to get one."""


def docker_status(image: str | None = None) -> str | None:
    """None when the docker backend can run here, else why not (for tests and ``doctor``)."""
    try:
        check_engine(docker_cli(), image or os.environ.get(IMAGE_ENV) or DEFAULT_TAG)
    except DockerUnavailable as e:
        return str(e)
    return None


def check_engine(docker: str, image: str) -> None:
    """Raise :class:`DockerUnavailable` unless the engine answers and has the image."""
    try:
        proc = subprocess.run([docker, "image", "inspect", "--format", "{{.Id}}", image],
                              capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise DockerUnavailable(f"the docker backend needs the docker CLI ({docker} not "
                                f"found); run `bash scripts/services.sh`") from None
    except subprocess.TimeoutExpired:
        raise DockerUnavailable("the docker engine did not answer within 60 s") from None
    if proc.returncode != 0:
        err = proc.stderr.strip()
        if "No such image" in err or "No such object" in err:
            raise DockerUnavailable(f"the grading image {image} does not exist; build it with "
                                    f"`autograder image build`")
        raise DockerUnavailable(f"the docker engine is not usable: {err}; start it "
                                f"(`bash scripts/services.sh` starts dockerd)")
    from autograder.image.build import RUNNER_LABEL, image_label, runner_hash

    if image_label(image, RUNNER_LABEL) != runner_hash():
        raise DockerUnavailable(f"the grading image {image} holds a different student runner "
                                f"than this installation; rebuild it with `autograder image "
                                f"build`")


def _owner_token(pid: int) -> str | None:
    """``pid.starttime``: identifies a process even after its pid is reused."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return f"{pid}.{fields[19]}"
    except (OSError, IndexError):
        return None


def _owner_alive(owner: str) -> bool:
    host, _, token = owner.partition(":")
    if host != socket.gethostname():
        return True  # another machine's grader sharing this engine: not ours to judge
    pid = token.split(".", 1)[0]
    return pid.isdigit() and _owner_token(int(pid)) == token


@dataclass(frozen=True)
class RunSpec:
    """Everything that shapes one container's command line."""

    name: str
    image: str
    limits: Limits
    uid: int
    channel_dir: str
    files_dir: str
    owner: str
    expires: int
    cpus: float = 1.0
    gpu_device: str | None = None
    seccomp_file: str = ""
    instance: str = ""
    cidfile: str = ""  # where docker writes the container's id (its cgroup's name)


def run_command(docker: str, spec: RunSpec) -> list[str]:
    """The ``docker run`` command line of one runner (plain data: tested flag by flag)."""
    lim = spec.limits
    memory = lim.memory_mb + RUNTIME_MEMORY_MB
    disk = lim.disk_mb
    uid = spec.uid
    cmd = [
        docker, "run", "--name", spec.name,
        "--label", f"{LABEL}=1", "--label", f"{OWNER_LABEL}={spec.owner}",
        "--label", f"{EXPIRES_LABEL}={spec.expires}",
        "--label", f"{INSTANCE_LABEL}={spec.instance}",
        "--init",                       # PID 1 reaps orphans; the runner cannot signal it
        "--network", "none",
        "--read-only",
        "--tmpfs", f"/tmp:rw,nosuid,nodev,noexec,size={disk}m,mode=1777",
        "--tmpfs", f"{WORKDIR}:rw,nosuid,nodev,noexec,size={disk}m,mode=0700,uid={uid},gid={uid}",
        "--shm-size", f"{disk}m",
        "--ipc", "private",
        "--memory", f"{memory}m", "--memory-swap", f"{memory}m",
        "--pids-limit", str(lim.max_processes),
        "--cpus", f"{spec.cpus:g}",
        "--ulimit", f"cpu={max(1, lim.cpu_s)}:{max(1, lim.cpu_s) + 1}",
        "--ulimit", "core=0",
        "--ulimit", "nofile=256:256",
        "--ulimit", f"fsize={disk * 2**20}:{disk * 2**20}",
        "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges",
        "--security-opt", f"seccomp={spec.seccomp_file}",
        "--user", f"{uid}:{uid}",
        "--hostname", "sandbox",
        "--log-driver", "none",
        "--workdir", "/",
        "--mount", f"type=bind,source={spec.channel_dir},target=/ag/chan,readonly",
        "--mount", f"type=bind,source={spec.files_dir},target=/ag/files,readonly",
    ]
    if spec.cidfile:
        cmd += ["--cidfile", spec.cidfile]
    for key, value in CLEAN_ENV.items():
        cmd += ["--env", f"{key}={value}"]
    cmd += gpu_flags(spec.gpu_device)
    # A GPU runtime maps far more address space than it uses: no address-space limit there.
    as_extra = 0 if spec.gpu_device else lim.memory_mb
    cmd += [spec.image, "python3", "-I", "-m", "autograder.runner.container_entry",
            str(lim.max_message_bytes), str(as_extra), str(TORCH_ADDRESS_SPACE_MB)]
    return cmd


class _FifoChannel(Channel):
    """The grader's end of the FIFO pair.

    Until the runner has opened ``to_runner`` for reading, the grader holds it open read-write
    (an open for writing alone would block, or fail without a reader). On the first send (always
    after the runner's hello, so the runner is reading by then) that placeholder is swapped for
    a write-only descriptor: from then on a dead runner gives EPIPE, and closing the channel
    gives the runner end-of-file.
    """

    def __init__(self, read_fd: int, placeholder_fd: int, to_runner: str, max_message: int):
        super().__init__(read_fd, placeholder_fd, max_message)
        self._to_runner = to_runner
        self._connected = False

    def send_bytes(self, body: bytes) -> None:
        if not self._connected:
            try:
                fd = os.open(self._to_runner, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError as e:
                raise ChannelClosed(f"the runner's pipe is gone ({e.strerror})") from None
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
            os.close(self.write_fd)
            self.write_fd = fd
            self._connected = True
        super().send_bytes(body)


@dataclass(frozen=True)
class DockerExitInfo(ExitInfo):
    oom_killed: bool = False

    def describe(self) -> str:
        if self.oom_killed:
            return "killed by SIGKILL (out of memory: the container's memory limit was reached)"
        if self.code == 125:
            return "could not be started by docker (exit 125)"
        return super().describe()


class _CgroupUsage:
    """The student's own CPU time and peak memory from the container's cgroup: the CPU used
    since the hand-over (the interpreter's start and imports before it are not the student's)
    and the memory peak since then (reset at the hand-over where cgroup v1 allows it). Read
    while the container still exists (the grader samples it before it ends the runner); a
    runner that dies by itself takes its cgroup with it, and its figures stay 0."""

    _ROOTS = ("/sys/fs/cgroup/{ctl}/docker/{id}",
              "/sys/fs/cgroup/{ctl}/system.slice/docker-{id}.scope",
              "/sys/fs/cgroup/system.slice/docker-{id}.scope", "/sys/fs/cgroup/docker/{id}")

    def __init__(self, cpu_file: str | None, memory_file: str | None, v2: bool):
        self.cpu_file = cpu_file
        self.memory_file = memory_file
        self.v2 = v2
        self.cpu_s = 0.0
        self.maxrss_kb = 0
        self._cpu_base = self._cpu()

    def rebase(self) -> None:
        """From now on (the runner has said hello: its imports are done) it is the student's."""
        self._cpu_base = self._cpu()
        if self.memory_file and not self.v2:
            try:
                with open(self.memory_file, "w") as f:
                    f.write("0")
            except OSError:
                pass

    @classmethod
    def of(cls, cidfile: str) -> _CgroupUsage:
        try:
            cid = Path(cidfile).read_text().strip()
        except OSError:
            cid = ""
        for root in cls._ROOTS if cid else ():
            v1_cpu = root.format(ctl="cpuacct", id=cid) + "/cpuacct.usage"
            if os.path.exists(v1_cpu):
                return cls(v1_cpu, root.format(ctl="memory", id=cid)
                           + "/memory.max_usage_in_bytes", v2=False)
            v2_cpu = root.format(ctl="", id=cid).replace("//", "/") + "/cpu.stat"
            if "{ctl}" not in root and os.path.exists(v2_cpu):
                return cls(v2_cpu, os.path.dirname(v2_cpu) + "/memory.peak", v2=True)
        return cls(None, None, v2=False)

    def _cpu(self) -> float | None:
        if self.cpu_file is None:
            return None
        try:
            text = Path(self.cpu_file).read_text()
        except OSError:
            return None
        if self.v2:
            usec = next((int(line.split()[1]) for line in text.splitlines()
                         if line.startswith("usage_usec")), None)
            return usec / 1e6 if usec is not None else None
        return int(text) / 1e9

    def sample(self) -> None:
        cpu = self._cpu()
        if cpu is not None and self._cpu_base is not None:
            self.cpu_s = max(0.0, cpu - self._cpu_base)
        if self.memory_file:
            try:
                self.maxrss_kb = int(Path(self.memory_file).read_text()) // 1024
            except (OSError, ValueError):
                pass

    def apply(self, info: ExitInfo) -> ExitInfo:
        return dataclasses.replace(info, cpu_s=round(self.cpu_s, 3), maxrss_kb=self.maxrss_kb)


class DockerRunner(RunnerProcess):
    def __init__(self, channel: Channel, output_fd: int, output: OutputBuffer, *,
                 sandbox: DockerSandbox, name: str, proc: subprocess.Popen, run_dir: str,
                 from_runner: str, lease: GpuLease | None, wall_s: float, client_fd: int):
        super().__init__(channel, output_fd, output, kill_pids=(), degraded=[])
        self.client_fd = client_fd
        self.sandbox = sandbox
        self.name = name
        self.proc = proc
        self.run_dir = run_dir
        self.from_runner = from_runner
        self.lease = lease
        self._killed = False
        self._closed = False
        self._exit: ExitInfo | None = None
        self._exited = threading.Event()  # how it ended is known
        self._done = threading.Event()    # and the container is removed
        self._kill_lock = threading.Lock()
        self.usage = _CgroupUsage.of(os.path.join(run_dir, "cid"))
        self._timer = threading.Timer(wall_s, self.kill)
        self._timer.daemon = True
        self._timer.start()
        self._watcher = threading.Thread(target=self._watch, name=f"watch-{name}", daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        """Wait for the container to end; record how; make sure the grader sees EOF; remove it."""
        code = self.proc.wait()
        self._timer.cancel()
        # What the docker client itself printed (its errors; the runner's output before it had
        # its output FIFO): shown with the runner's output.
        try:
            with os.fdopen(self.client_fd, "rb") as f:
                said = f.read(16384)
        except OSError:
            said = b""
        if said.strip():
            self.output.feed(said)
        for fifo in (self.from_runner, os.path.join(os.path.dirname(self.from_runner), "output")):
            try:  # a writer that comes and goes: EOF for a grader whose runner never connected
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
        oom = False
        if code == 137 and not self._killed:
            out = subprocess.run([self.sandbox.docker, "inspect", "--format",
                                  "{{.State.OOMKilled}}", self.name],
                                 capture_output=True, text=True)
            oom = out.stdout.strip() == "true"
        # docker's init reports a child's death by signal N as status 128 + N, the same as an
        # exit with that status: only the grader's own kill and the OOM killer are known.
        self._exit = DockerExitInfo(code=code, signaled=self._killed or oom,
                                    ambiguous=code > 128 and code != 255, oom_killed=oom)
        self._exited.set()
        self.sandbox._remove(self.name)
        if self.lease is not None:
            self.lease.release()
        shutil.rmtree(self.run_dir, ignore_errors=True)
        self._done.set()

    def kill(self) -> None:
        """Kill the container (and with it every process of the runner); it is then removed."""
        with self._kill_lock:
            if self._killed or self.proc.poll() is not None:
                return
            self._killed = True
            self.usage.sample()
        subprocess.run([self.sandbox.docker, "kill", self.name], capture_output=True,
                       timeout=60)
        try:  # the client follows its container; if the daemon lost it, end the client too
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def serving(self) -> None:
        self.usage.rebase()

    def exit_info(self, timeout: float = 2.0) -> ExitInfo | None:
        if self._closed and not self._exited.is_set():
            # Ended by the grader: killed, whatever docker takes to confirm it.
            self._exited.wait(min(timeout, 0.05))
            return self.usage.apply(self._exit or DockerExitInfo(code=128 + 9, signaled=True))
        self._exited.wait(timeout)
        return self.usage.apply(self._exit) if self._exit is not None else None

    def close(self) -> None:
        """End the runner without waiting for docker: the channel closes (a runner waiting for
        a request exits by itself), the container is killed and removed in the background;
        :meth:`DockerSandbox.close` waits for all of it."""
        self._closed = True
        self.usage.sample()  # while the container is still there: its cgroup goes with it
        self.release_pipes()
        threading.Thread(target=self.kill, name=f"kill-{self.name}", daemon=True).start()


class DockerSandbox(Sandbox):
    """A container per runner start, from the grading image."""

    name = "docker"

    def __init__(self, image: str | None = None, *, gpu: str = "none",
                 gpus: GpuAllocator | None = None, gpu_wait_s: float = 0.0, cpus: float = 1.0,
                 uid_base: int = UID_BASE, docker: str | None = None, check: bool = True,
                 warm: int = 2):
        self.docker = docker or docker_cli()
        self.image = image or os.environ.get(IMAGE_ENV) or DEFAULT_TAG
        self.gpu = gpu
        self.gpus = gpus
        self.gpu_wait_s = gpu_wait_s
        self.cpus = cpus
        self.uid_base = uid_base
        self.uids = policy.UidLeases(uid_base)
        token = _owner_token(os.getpid()) or str(os.getpid())
        self.owner = f"{socket.gethostname()}:{token}"
        self.instance = uuid.uuid4().hex[:16]  # this sandbox's containers, among its grader's
        self._tmp = tempfile.TemporaryDirectory(prefix="autograder-docker-")
        os.chmod(self._tmp.name, 0o711)
        self.seccomp_file = os.path.join(self._tmp.name, "seccomp.json")
        with open(self.seccomp_file, "w") as f:
            json.dump(seccomp_profile(), f)
        self._runners: set[DockerRunner] = set()
        self._pool: dict[tuple[Limits, int], list[_Launched]] = {}
        self.warm = warm
        # Per slot, the starts a batch still expects (see expect_starts): no container is
        # launched ahead that no submission would take (each costs up to a second of CPU, more
        # with torch, and the last ones of every batch were thrown away).
        self._expected: dict[int, int] = {}
        self._lock = threading.Lock()
        if check:
            self._check_engine()
            self.remove_stale()

    # -- the engine ------------------------------------------------------------------------
    def _check_engine(self) -> None:
        check_engine(self.docker, self.image)

    def remove_stale(self) -> list[str]:
        """Remove sandbox containers whose grader is gone (or whose time is long over)."""
        proc = subprocess.run(
            [self.docker, "ps", "-a", "--filter", f"label={LABEL}", "--format",
             f'{{{{.Names}}}}\t{{{{.Label "{OWNER_LABEL}"}}}}\t{{{{.Label "{EXPIRES_LABEL}"}}}}'],
            capture_output=True, text=True, timeout=60)
        stale = []
        now = time.time()
        for line in proc.stdout.splitlines():
            parts = line.split("\t")
            if len(parts) != 3:
                continue
            name, owner, expires = parts
            expired = expires.isdigit() and int(expires) < now
            if expired or not _owner_alive(owner):
                stale.append(name)
        if stale:
            subprocess.run([self.docker, "rm", "-f", *stale], capture_output=True, timeout=120)
        return stale

    def _remove(self, name: str) -> None:
        subprocess.run([self.docker, "rm", "-f", name], capture_output=True, timeout=120)

    # -- runners ---------------------------------------------------------------------------
    def _launch(self, limits: Limits, slot: int, lease: GpuLease | None) -> _Launched:
        """``docker run`` a container that gets as far as it can without the student: the
        interpreter, numpy and the runner imported; it then waits, in its open of the reply
        FIFO, for :meth:`_hand_over`."""
        uid = self.uids.uid(slot)
        run_dir = tempfile.mkdtemp(prefix="run-", dir=self._tmp.name)
        try:
            chan = os.path.join(run_dir, "chan")
            os.mkdir(chan, 0o500)
            for fifo in ("to_runner", "from_runner", "output"):
                os.mkfifo(os.path.join(chan, fifo), 0o600)
                os.chown(os.path.join(chan, fifo), uid, uid)
            os.chown(chan, uid, uid)
            files_dir = os.path.join(run_dir, "files")
            os.mkdir(files_dir, 0o500)
            os.chown(files_dir, uid, uid)
            name = f"ag-{os.getpid()}-{uuid.uuid4().hex[:12]}"
            wall_s = limits.cpu_s + WALL_SLACK_S
            spec = RunSpec(name=name, image=self.image, limits=limits, uid=uid,
                           channel_dir=chan, files_dir=files_dir, owner=self.owner,
                           expires=int(time.time() + POOL_MAX_IDLE_S + wall_s + 300),
                           cpus=self.cpus, gpu_device=lease.device if lease else None,
                           seccomp_file=self.seccomp_file, instance=self.instance,
                           cidfile=os.path.join(run_dir, "cid"))
            out_r, out_w = os.pipe()
            try:
                proc = subprocess.Popen(run_command(self.docker, spec), stdin=subprocess.DEVNULL,
                                        stdout=out_w, stderr=out_w, close_fds=True,
                                        start_new_session=True, env=_client_env())
            except BaseException:
                os.close(out_r)
                raise
            finally:
                os.close(out_w)
        except BaseException:
            shutil.rmtree(run_dir, ignore_errors=True)
            raise
        return _Launched(name=name, proc=proc, run_dir=run_dir, out_r=out_r, uid=uid,
                         wall_s=wall_s, launched=time.monotonic())

    def _hand_over(self, c: _Launched, files: Path, limits: Limits,
                   lease: GpuLease | None) -> DockerRunner:
        """Give a launched container the student's files and the protocol channel."""
        chan = os.path.join(c.run_dir, "chan")
        to_runner = os.path.join(chan, "to_runner")
        from_runner = os.path.join(chan, "from_runner")
        opened: list[int] = []
        try:
            _copy_for(Path(files), Path(c.run_dir) / "files", c.uid)
            # The FIFO ends: the reading end lets the container's entry go on; read-write, so
            # neither open blocks. Then the mark: files and channel are in place (the entry
            # waits for it too, should one of its opens ever return before ours).
            read_fd = os.open(from_runner, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            opened.append(read_fd)
            fcntl.fcntl(read_fd, fcntl.F_SETFL,
                        fcntl.fcntl(read_fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
            hold_fd = os.open(to_runner, os.O_RDWR | os.O_CLOEXEC)
            opened.append(hold_fd)
            output_fd = os.open(os.path.join(chan, "output"),
                                os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            opened.append(output_fd)
            fcntl.fcntl(output_fd, fcntl.F_SETFL,
                        fcntl.fcntl(output_fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
            with open(os.path.join(chan, "ready"), "w"):
                pass
        except BaseException:
            for fd in opened:
                os.close(fd)
            self._discard(c)
            raise
        runner = DockerRunner(_FifoChannel(read_fd, hold_fd, to_runner, limits.max_message_bytes),
                              output_fd, OutputBuffer(limits.max_output_bytes), sandbox=self,
                              name=c.name, proc=c.proc, run_dir=c.run_dir,
                              from_runner=from_runner, lease=lease, wall_s=c.wall_s,
                              client_fd=c.out_r)
        with self._lock:
            self._runners = {r for r in self._runners if not r._done.is_set()}
            self._runners.add(runner)
        return runner

    def _discard(self, c: _Launched) -> None:
        self._remove(c.name)
        try:
            c.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            c.proc.kill()
            c.proc.wait()
        os.close(c.out_r)
        shutil.rmtree(c.run_dir, ignore_errors=True)

    def _take_warm(self, limits: Limits, slot: int) -> _Launched | None:
        while True:
            with self._lock:
                queue = self._pool.get((limits, slot))
                c = queue.pop(0) if queue else None
            if c is None:
                return None
            if c.proc.poll() is None and time.monotonic() - c.launched < POOL_MAX_IDLE_S:
                return c
            self._discard(c)

    def expect_starts(self, slot: int, starts: int | None) -> None:
        with self._lock:
            if starts is None:
                self._expected.pop(slot, None)
            else:
                self._expected[slot] = max(0, starts)

    def _refill(self, limits: Limits, slot: int) -> None:
        with self._lock:
            missing = self.warm - len(self._pool.setdefault((limits, slot), []))
            if slot in self._expected:
                pooled = sum(len(q) for (_, s), q in self._pool.items() if s == slot)
                missing = min(missing, self._expected[slot] - pooled)
        for _ in range(missing):
            try:
                c = self._launch(limits, slot, None)
            except Exception:  # noqa: BLE001 - the next start launches its own
                return
            with self._lock:
                self._pool.setdefault((limits, slot), []).append(c)

    def start(self, files: Path, limits: Limits, slot: int = 0) -> RunnerProcess:
        # Limits carry no GPU policy yet: the sandbox's own (DockerSandbox(gpu=...)) applies.
        policy = getattr(limits, "gpu", None) or self.gpu
        if policy != "none" and self.gpus is None:
            self.gpus = GpuAllocator()  # AUTOGRADER_GPUS, else nvidia-smi -L, else none
        lease = request_gpu(policy, self.gpus, self.gpu_wait_s)
        try:
            c = self._take_warm(limits, slot) if lease is None else None
            if c is None:
                c = self._launch(limits, slot, lease)
            runner = self._hand_over(c, files, limits, lease)
        except BaseException:
            if lease is not None:
                lease.release()
            raise
        if lease is None and self.warm:
            # The next runners of this slot and these limits start now, in the background.
            self._refill(limits, slot)
        return runner

    def release_warm(self) -> int:
        """Remove the warm containers (at the end of a batch); returns how many there were."""
        with self._lock:
            warm = [c for queue in self._pool.values() for c in queue]
            self._pool = {}
        for c in warm:
            self._discard(c)
        return len(warm)

    def close(self) -> None:
        with self._lock:
            runners, self._runners = list(self._runners), set()
        for runner in runners:
            runner.kill()
        self.release_warm()
        for runner in runners:
            runner._done.wait(30)
        self.uids.close()
        self._tmp.cleanup()


@dataclass
class _Launched:
    """A started container that has no student files yet."""

    name: str
    proc: subprocess.Popen
    run_dir: str
    out_r: int
    uid: int
    wall_s: float
    launched: float


def _client_env() -> dict[str, str]:
    """The docker client's environment: where the engine is, nothing of the grader's."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
    for key in ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "DOCKER_CERT_PATH",
                "DOCKER_TLS_VERIFY", "HOME"):
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def _copy_for(src: Path, dst: Path, uid: int) -> None:
    """The student's files for the container: regular files and folders only, owned by the
    runner's uid, read-only to it."""
    for dirpath, dirnames, filenames in os.walk(src, followlinks=False):
        rel = os.path.relpath(dirpath, src)
        target = dst if rel == "." else dst / rel
        target.mkdir(mode=0o700, exist_ok=True)
        for fname in filenames:
            path = os.path.join(dirpath, fname)
            if stat.S_ISREG(os.lstat(path).st_mode):
                shutil.copyfile(path, target / fname, follow_symlinks=False)
                os.chown(target / fname, uid, uid)
                os.chmod(target / fname, 0o400)
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
        os.chown(target, uid, uid)
        os.chmod(target, 0o500)

