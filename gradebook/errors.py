"""What can go wrong in the gradebook. Every message says what to fix; a failed operation has
written nothing (each one is a single transaction)."""

from __future__ import annotations

from autograder.errors import UserError


class GradebookError(UserError):
    """Base class: a mistake the user can fix."""


class UnknownStudent(GradebookError):
    """A student id that is not in the roster."""


class UnknownAssignment(GradebookError):
    """An assignment name that is neither in assignments/ nor in course.toml [assessments]."""


class UnknownSubmission(GradebookError):
    """A submission id the gradebook does not hold."""


class ResultConflict(GradebookError):
    """A run id that already holds a different result."""


class InvalidFile(GradebookError):
    """A CSV (roster, scores) with problems; the message lists every line and what to fix."""

    def __init__(self, path: str, problems: list[str], what: str = "nothing was imported") -> None:
        self.path = path
        self.problems = problems
        shown = problems[:25]
        more = f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        super().__init__(f"{path}: {len(problems)} problem{'s' if len(problems) != 1 else ''}, "
                         f"{what}:\n" + "\n".join(f"  {p}" for p in shown) + more)


class RosterError(InvalidFile):
    """A roster CSV with problems."""


class ScoresError(InvalidFile):
    """A scores CSV with problems."""


class NotAGradebook(GradebookError):
    """The database holds something else (for example nbgrader's gradebook.db)."""
