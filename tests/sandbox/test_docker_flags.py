"""The container command line holds every restriction (no docker engine needed)."""

from __future__ import annotations

from autograder.sandbox.base import Limits
from autograder.sandbox.docker import (CLEAN_ENV, RUNTIME_MEMORY_MB, RunSpec, run_command,
                                       seccomp_profile)

LIMITS = Limits(memory_mb=512, cpu_s=35, max_processes=32, disk_mb=16,
                max_output_bytes=16 * 1024, max_message_bytes=8 * 2**20)


def command(**kw):
    spec = RunSpec(**{"name": "ag-1-abc", "image": "autograder-runner:latest", "limits": LIMITS,
                      "uid": 61001, "channel_dir": "/tmp/x/run-1/chan",
                      "files_dir": "/tmp/x/run-1/files", "owner": "host:12.34",
                      "expires": 1_900_000_000, "seccomp_file": "/tmp/x/seccomp.json", **kw})
    return run_command("/usr/bin/docker", spec)


def values(cmd, flag):
    return [cmd[i + 1] for i, a in enumerate(cmd) if a == flag]


def test_every_restriction_is_on_the_command_line():
    cmd = command()
    assert cmd[:2] == ["/usr/bin/docker", "run"]
    assert "--rm" not in cmd  # removed by the grader after reading its exit state
    assert values(cmd, "--network") == ["none"]
    assert "--read-only" in cmd
    assert values(cmd, "--cap-drop") == ["ALL"]
    assert "--cap-add" not in cmd and "--privileged" not in cmd
    assert values(cmd, "--security-opt") == ["no-new-privileges",
                                             "seccomp=/tmp/x/seccomp.json"]
    assert values(cmd, "--user") == ["61001:61001"]
    memory = f"{512 + RUNTIME_MEMORY_MB}m"
    assert values(cmd, "--memory") == [memory]
    assert values(cmd, "--memory-swap") == [memory]  # equal: no swap beyond the limit
    assert values(cmd, "--pids-limit") == ["32"]
    assert values(cmd, "--cpus") == ["1"]
    assert values(cmd, "--log-driver") == ["none"]    # a flood is not stored on the host
    assert "--init" in cmd
    ulimits = values(cmd, "--ulimit")
    assert "cpu=35:36" in ulimits and "core=0" in ulimits
    assert f"fsize={16 * 2**20}:{16 * 2**20}" in ulimits


def test_writable_places_are_size_bounded_tmpfs():
    cmd = command()
    tmpfs = {v.split(":", 1)[0]: v.split(":", 1)[1] for v in values(cmd, "--tmpfs")}
    assert set(tmpfs) == {"/tmp", "/submission"}
    for opts in tmpfs.values():
        assert "size=16m" in opts and "nosuid" in opts and "nodev" in opts
    assert "uid=61001" in tmpfs["/submission"]
    assert values(cmd, "--shm-size") == ["16m"]
    assert values(cmd, "--ipc") == ["private"]


def test_only_the_channel_and_the_students_files_are_mounted_read_only():
    cmd = command()
    mounts = values(cmd, "--mount")
    assert mounts == ["type=bind,source=/tmp/x/run-1/chan,target=/ag/chan,readonly",
                      "type=bind,source=/tmp/x/run-1/files,target=/ag/files,readonly"]
    assert "-v" not in cmd and "--volume" not in cmd and "--volumes-from" not in cmd


def test_no_host_environment_enters():
    cmd = command()
    env = values(cmd, "--env")
    assert env == [f"{k}={v}" for k, v in CLEAN_ENV.items()]
    assert "--env-file" not in cmd and "-e" not in cmd
    assert all(not a.startswith("--env=") for a in cmd)


def test_the_runner_entry_and_labels():
    cmd = command()
    i = cmd.index("autograder-runner:latest")
    assert cmd[i + 1:] == ["python3", "-I", "-m", "autograder.runner.container_entry",
                           str(8 * 2**20), "512", "768"]
    labels = values(cmd, "--label")
    assert "org.autograder.sandbox=1" in labels
    assert "org.autograder.owner=host:12.34" in labels
    assert "org.autograder.expires=1900000000" in labels
    assert "org.autograder.instance=" in labels
    assert values(cmd, "--name") == ["ag-1-abc"]
    assert "--gpus" not in cmd


def test_the_seccomp_profile_refuses_escapes_and_new_namespaces():
    profile = seccomp_profile()
    assert profile["defaultAction"] == "SCMP_ACT_ALLOW"
    denied = {n for rule in profile["syscalls"] if "args" not in rule
              and rule["action"] == "SCMP_ACT_ERRNO" for n in rule["names"]}
    for name in ("ptrace", "unshare", "setns", "mount", "bpf", "keyctl", "perf_event_open",
                 "process_vm_readv", "userfaultfd", "io_uring_setup", "clone3"):
        assert name in denied
    clone_rules = [r for r in profile["syscalls"] if r["names"] == ["clone"]]
    flags = {r["args"][0]["value"] for r in clone_rules}
    assert 0x10000000 in flags and 0x20000000 in flags and 0x40000000 in flags  # user, pid, net
    for r in clone_rules:
        arg = r["args"][0]
        assert arg["op"] == "SCMP_CMP_MASKED_EQ" and arg["value"] == arg["valueTwo"]
