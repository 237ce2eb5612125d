"""The platform's one error tree (after httpx's ``_exceptions.py``): one root, a branch per kind
of fault, each class named after what went wrong.

* :class:`UserError` and its subclasses are mistakes a person can fix (a TA's config, a
  student's upload, an unknown student id). Every command prints them as a message, without a
  traceback, and exits with status 1.
* :class:`PlatformError` and its subclasses are faults of the platform (the sandbox could not
  start, a test's own code is broken). A test that ends in one is a *grader error*: never
  counted against the student, reported to staff, flagged by ``verify``.

Failures caused by the student's code are not errors of the platform at all: they are outcomes
(:class:`autograder.results.Outcome`) decided by the harness.
"""

from __future__ import annotations


class AutograderError(Exception):
    """Root of every error the platform raises on purpose."""


class UserError(AutograderError):
    """A mistake the user can fix; the message says what to change."""


class PlatformError(AutograderError):
    """A fault of the platform, not of the person using it; never charged to a student."""


class GraderError(PlatformError):
    """The grading harness or a test's own code failed (collection error, bad marker, a test
    that raises on its own): the test cannot judge the submission."""
