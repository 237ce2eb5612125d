"""A sandbox of either backend for attack tests, each test file in its own uid range."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from autograder.sandbox.base import Sandbox
from tests.support.services import need


@contextmanager
def sandbox_for(backend: str, uid_base: int) -> Iterator[Sandbox]:
    """``process`` or ``docker`` (skipped, or failed in CI, without a docker engine and image)."""
    if backend == "docker":
        from autograder.sandbox.docker import DockerSandbox, docker_status

        status = docker_status()
        need("docker", status is None, status or "")
        with DockerSandbox(uid_base=uid_base) as sb:
            yield sb
        return
    from autograder.sandbox.process import ProcessSandbox

    with ProcessSandbox(uid_base=uid_base) as sb:
        yield sb
