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

The API the grading side calls::

    from gradebook import Gradebook
    gb = Gradebook.open("sqlite:///course/gradebook.sqlite", course.config)  # or postgresql+psycopg://...
    sub = gb.record_submission("s001", "softmax", {"softmax.py": data}, submitted_at)  # aware time
    gb.record_result(sub.id, result, run_id="job-42")  # GradingResult; twice is a no-op
    gb.grades(as_of)  # -> list[StudentGrade], each with .lines explaining every number

``record_submission`` takes the files (``{path: bytes}`` or a directory), stored in the database,
or just their content hash. The same files at the same time return the same submission;
otherwise the submission gets the next attempt number. ``record_result`` stores a run once per
``run_id``: recording it again does nothing, and a *different* result under the same run id
raises :class:`~gradebook.errors.ResultConflict` (a regrade gets a new run id; the newest run of
a submission counts).
"""

from gradebook.errors import GradebookError
from gradebook.store import Gradebook, content_hash, database_url

__all__ = ["Gradebook", "GradebookError", "content_hash", "database_url"]
