"""The gradebook: the records the platform keeps, the course policy over them, and what
instructors take out of it.

Layout (one concern a module):

* ``models`` / ``migrations/`` — the tables (SQLAlchemy 2) and their Alembic migrations;
  :meth:`Gradebook.open` upgrades a database to the newest one.
* ``store`` — :class:`Gradebook`, the only code that reads or writes records; every write is one
  transaction.
* ``policy`` — late days, slack days, penalties, categories, letters: pure functions, no database.
* ``csvfiles`` — roster and scores CSV parsing with line-numbered errors; ``intake`` — results.json
  files from ``autograder grade --output``; ``nbgrader_import`` — nbgrader's gradebook.db.
* ``export`` (CSV, Canvas, Excel), ``stats`` (distributions, pass rates, histograms), ``cli``.

The API the grading side calls (see gradebook/README.md)::

    from gradebook import Gradebook
    gb = Gradebook.open("sqlite:///course/gradebook.sqlite", course.config)  # or postgresql+psycopg://...
    sub = gb.record_submission("s001", "softmax", {"softmax.py": data}, received_at)  # before grading
    job_identity = sub.identity        # SubmissionIdentity(student, attempt, received_at)
    rec = gb.record_graded(result, files)  # GradingResult carrying that identity; twice is a no-op
    gb.grades(as_of)  # -> list[StudentGrade], each with .lines explaining every number

Importing this package loads no database layer: ``Gradebook`` and the store's helpers are
imported on first use (a student's ``autograder check`` and every grading worker import the
``autograder`` package, which mounts the gradebook's commands).
"""

from typing import TYPE_CHECKING, Any

from gradebook.errors import GradebookError

if TYPE_CHECKING:
    from gradebook.store import Gradebook, content_hash, database_url

__all__ = ["Gradebook", "GradebookError", "content_hash", "database_url"]

_FROM_STORE = {"Gradebook", "content_hash", "database_url"}


def __getattr__(name: str) -> Any:
    """The store's names, imported (with SQLAlchemy and Alembic) on first use."""
    if name in _FROM_STORE:
        from gradebook import store

        return getattr(store, name)
    raise AttributeError(f"module 'gradebook' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _FROM_STORE)
