"""The service's handle on the course database: the gradebook (which owns submissions and
results) plus sessions for the service's own tables, in the same database and, for writes, in
the same transaction as the gradebook's records."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session, sessionmaker

from autograder.config import CourseConfig
from autograder.service import models  # noqa: F401  (registers the service tables on Base)
from gradebook.store import Gradebook


class ServiceDB:
    """One open database. ``read()`` for queries; ``write()`` for a transaction that gradebook
    writes made inside it join (all kept, or none)."""

    def __init__(self, gb: Gradebook) -> None:
        self.gb = gb
        self._reads = sessionmaker(gb.engine, expire_on_commit=False)

    @classmethod
    def open(cls, url: str, config: CourseConfig) -> ServiceDB:
        """Open (migrating to the newest schema, service tables included) the database at ``url``."""
        return cls(Gradebook.open(url, config))

    @property
    def course_id(self) -> int:
        return self.gb.course_id

    @property
    def dialect(self) -> str:
        return self.gb.engine.dialect.name

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._reads() as s:
            yield s

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction (on SQLite it holds the write lock from its start, so a
        read-then-write cannot be overtaken). Gradebook writes inside it join it."""
        with self.gb.transaction():
            # The session of the transaction just opened (the gradebook has no public accessor
            # for it yet: its writes made inside ``transaction()`` use this same session).
            with self.gb._tx() as s:
                yield s

    def close(self) -> None:
        self.gb.close()
