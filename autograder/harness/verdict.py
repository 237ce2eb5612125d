"""The verdict: how a finished test's exception becomes an outcome and the message a student
reads. A pure function of what happened, the one place that decides it (points follow from the
outcome in the plugin: full points for ``passed``, none otherwise).

Who is charged:
* the student's code raised, hung, crashed, ran out of memory or broke the protocol: the
  outcome says which (decided from what the sandbox observed, see harness/remote.py);
* a check failed on a value the student's code returned: ``failed``;
* the test's own code failed on a value that came from the student's code (unpacking a ``None``
  it returned): ``failed``, "your function's result could not be checked";
* the platform failed (the sandbox, a check misused by the test author, a bug in the test's own
  code before any student value reached it): ``grader_error``: never counted against the
  student, reported to staff, and ``autograder verify`` fails on it.
"""

from __future__ import annotations

import re
import traceback
from dataclasses import dataclass

import pytest

from autograder.errors import PlatformError
from autograder.harness.remote import ImportFailed, StudentError, StudentSideFailure
from autograder.results import Outcome


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    message: str


PLATFORM_FAULT = ("The test could not run (a problem of the grading platform, not of your "
                  "code; staff have been told and it does not count against you)")


def verdict(exc: BaseException | None, *, time_limit: float, student_values_seen: bool,
            failing_statement: str = "an assertion in the test") -> Verdict:
    """The outcome and message of a finished test.

    ``exc``: what the test raised (None: it passed). ``student_values_seen``: whether any value
    came back from the student's code during the test, so a crash of the test's own code can be
    told apart from a test that choked on what the student returned. ``failing_statement``: the
    source line of a bare ``assert`` that failed."""
    if exc is None:
        return Verdict(Outcome.PASSED, "")
    if isinstance(exc, StudentError):
        if exc.outcome == Outcome.NOT_IMPLEMENTED:
            return Verdict(Outcome.NOT_IMPLEMENTED, f"{exc.where} is not implemented yet (it "
                                                    f"raises NotImplementedError).")
        if isinstance(exc, ImportFailed):
            msg = (f"Your module could not be imported ({exc.where}): {exc.type_name}: "
                   f"{exc.student_message}")
        else:
            msg = f"{exc.where} raised {exc.type_name}: {exc.student_message}"
        if exc.traceback_text.strip():
            msg += "\n" + exc.traceback_text.rstrip()
        if exc.outcome == Outcome.MEMORY:
            msg += "\n(The memory limit for your code was reached.)"
        return Verdict(Outcome(exc.outcome), msg)
    if isinstance(exc, StudentSideFailure):
        msg = str(exc)
        if exc.outcome == Outcome.TIMEOUT:
            msg = (f"Time limit exceeded: your code did not finish within {time_limit:g} s "
                   f"(an infinite loop, or a much slower algorithm than needed?).")
        return Verdict(Outcome(exc.outcome), msg)
    if isinstance(exc, PlatformError):
        return Verdict(Outcome.GRADER_ERROR, f"{PLATFORM_FAULT}: {exc}")
    if isinstance(exc, pytest.fail.Exception):  # pytest.raises / pytest.fail in the test
        text = str(exc).strip()
        m = re.match(r"DID NOT RAISE (?:<class '(?:builtins\.)?([\w.]+)'>|\(?([\w., <>']+)\)?)",
                     text)
        if m:
            expected = m.group(1) or m.group(2)
            return Verdict(Outcome.FAILED, f"Expected your code to raise {expected}, but it "
                                           f"returned normally.")
        return Verdict(Outcome.FAILED, text or "a check failed")
    if isinstance(exc, AssertionError):
        text = str(exc).strip()
        if not text:  # a bare `assert`: show the check itself (its source), not values
            text = f"This check failed: {failing_statement}"
        return Verdict(Outcome.FAILED, text)
    detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    if not student_values_seen:
        # Nothing the student's code returned was involved: the test's own code is broken.
        return Verdict(Outcome.GRADER_ERROR, f"{PLATFORM_FAULT}: the test's own code raised "
                                             f"{detail}")
    # The test's code choked on what the student's code returned (unpacking None, indexing a
    # wrong shape): report it in the student's terms.
    return Verdict(Outcome.FAILED, f"Your function's result could not be checked: {detail}")
