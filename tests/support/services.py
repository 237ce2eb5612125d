"""Real services for tests: skip with a stated reason where one is missing, fail in CI.

`.ci/run` (and `scripts/services.sh`) install and start Docker, PostgreSQL and Redis from
Debian's packages and set ``AUTOGRADER_REQUIRE_SERVICES=1``; with it set, a missing service is
a failure, so a green CI run proves the tests that need services really ran.
"""

from __future__ import annotations

import os

import pytest

REQUIRE_ENV = "AUTOGRADER_REQUIRE_SERVICES"


def services_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0", "false", "no")


def need(service: str, available: bool, reason: str) -> None:
    """Skip (or, in CI, fail) the calling test unless ``available``."""
    if available:
        return
    message = f"{service} is not available: {reason}"
    if services_required():
        pytest.fail(f"{message} ({REQUIRE_ENV} is set, so this is a failure, not a skip)")
    pytest.skip(f"{message}; run `bash scripts/services.sh` to install and start it")
