"""Real services for tests: skip with a stated reason where one is missing, fail in CI.

`.ci/run` (and `scripts/services.sh`) install and start Docker, PostgreSQL and Redis from
Debian's packages and set ``AUTOGRADER_REQUIRE_SERVICES=1``; with it set, a missing service is
a failure, so a green CI run proves the tests that need services really ran.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REQUIRE_ENV = "AUTOGRADER_REQUIRE_SERVICES"
PG_ENV = "AUTOGRADER_TEST_POSTGRES_URL"


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


def postgres_url() -> str:
    """The test PostgreSQL server's URL (``$AUTOGRADER_TEST_POSTGRES_URL``), checked reachable."""
    import sqlalchemy as sa

    url = os.environ.get(PG_ENV, "")
    need("postgres", bool(url), f"{PG_ENV} is not set")
    try:
        with sa.create_engine(url).connect():
            pass
    except sa.exc.OperationalError as e:
        need("postgres", False, f"cannot connect to {PG_ENV}: {e.orig}")
    return url


@contextmanager
def empty_database(kind: str, tmp_path: Path, name: str) -> Iterator[str]:
    """A URL to an empty database: ``kind`` "sqlite" is the file ``name``.sqlite in
    ``tmp_path``; "postgresql" a fresh schema (prefixed ``name``) dropped afterwards, so tests
    never see each other's rows."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / f'{name}.sqlite'}"
        return
    import sqlalchemy as sa

    base = postgres_url()
    schema = f"{name}_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(base)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()
