"""The one sandbox policy: both backends' filters, decoded, refuse the same set, and read the
clean environment and the uids from the same place."""

from __future__ import annotations

from autograder.sandbox import policy, seccomp
from autograder.sandbox.docker import CLEAN_ENV, UID_BASE as DOCKER_UID_BASE, seccomp_profile
from autograder.sandbox.process import UID_BASE as PROCESS_UID_BASE


def _docker_refusals() -> dict[str, set]:
    """What the docker profile refuses, read back from its rules."""
    refused: dict[str, set] = {"syscalls": set(), "clone_flags": set(), "fcntl_commands": set()}
    profile = seccomp_profile()
    for rule in profile["syscalls"]:
        if rule["action"] != "SCMP_ACT_ERRNO" or rule.get("errnoRet") != policy.EPERM:
            continue
        if "args" not in rule:
            refused["syscalls"] |= set(rule["names"])
        elif rule["names"] == ["clone"]:
            (arg,) = rule["args"]
            assert arg["index"] == 0 and arg["op"] == "SCMP_CMP_MASKED_EQ"
            refused["clone_flags"] |= {n for n, v in policy.CLONE_NAMESPACE_FLAGS.items()
                                       if v == arg["value"] == arg["valueTwo"]}
        elif rule["names"] == ["fcntl"]:
            (arg,) = rule["args"]
            assert arg["index"] == 1 and arg["op"] == "SCMP_CMP_EQ"
            refused["fcntl_commands"] |= {n for n, v in policy.FCNTL_LOCK_COMMANDS.items()
                                          if v == arg["value"]}
    return refused


def test_both_backends_refuse_the_same_set():
    process = seccomp.describe_program(seccomp.build_program())
    docker = _docker_refusals()
    x86_64 = set(policy.DENIED_SYSCALLS) - policy.X86_ONLY
    assert process["syscalls"] == x86_64
    assert docker["syscalls"] & x86_64 == x86_64
    assert docker["syscalls"] == set(policy.DENIED_SYSCALLS)
    assert process["clone_flags"] == docker["clone_flags"] == set(policy.CLONE_NAMESPACE_FLAGS)
    assert process["fcntl_commands"] == docker["fcntl_commands"] == set(
        policy.FCNTL_LOCK_COMMANDS)


def test_the_policy_holds_what_the_filters_had_drifted_apart_on():
    for name in ("io_uring_setup", "io_uring_enter", "io_uring_register", "pidfd_getfd", "kcmp",
                 "syslog", "chroot", "ptrace", "unshare", "setns", "bpf", "flock",
                 "inotify_init1"):
        assert name in policy.DENIED_SYSCALLS
    assert "CLONE_NEWTIME" in policy.CLONE_NAMESPACE_FLAGS
    # Every x86-64 name has its number; a name without one is 32-bit only.
    assert set(policy.DENIED_SYSCALLS) == set(policy.X86_64_NUMBERS) | policy.X86_ONLY
    assert len(set(policy.X86_64_NUMBERS.values())) == len(policy.X86_64_NUMBERS)


def test_other_abis_are_refused_by_both():
    assert seccomp_profile()["architectures"] == ["SCMP_ARCH_X86_64"]
    program = seccomp.build_program()
    # The process filter's first test: not x86-64 -> kill.
    assert program[8:16] == seccomp._insn(seccomp._JEQ_K, 1, 0, seccomp.AUDIT_ARCH_X86_64)


def test_one_clean_environment_and_one_uid_range():
    assert CLEAN_ENV == policy.clean_environment(home="/submission")
    assert DOCKER_UID_BASE == PROCESS_UID_BASE == policy.UID_BASE
    env = policy.clean_environment(home="/x")
    assert env["HOME"] == "/x" and "PYTHONPATH" not in env
