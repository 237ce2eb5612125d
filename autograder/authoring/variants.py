"""Exams with variants: ``release`` and ``verify`` act on every variant.

A variant is an ordinary :class:`~autograder.course.Assignment` (``exam.variants()``), with its
folders under ``variants/<v>/``; these functions only loop over them and add what concerns the
exam as a whole, so grading, the sandbox and the per-assignment checks need no exam case.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from autograder.authoring.release import ReleaseFile, plan_release, release_differences
from autograder.course import Assignment
from autograder.sandbox.base import Sandbox

if TYPE_CHECKING:  # verify imports this module lazily: no import circle at run time
    from autograder.authoring.verify import Check, VerifyReport

__all__ = ["plan_variant_releases", "verify_variants"]


def plan_variant_releases(exam: Assignment) -> list[ReleaseFile]:
    """Every variant's release files, each under ``variants/<v>/`` of the exam's release folder,
    sorted; nothing is written (so one broken variant leaves every release untouched)."""
    files: list[ReleaseFile] = []
    for variant in exam.variants():
        prefix = f"variants/{variant.variant}/"
        files += [ReleaseFile(prefix + f.path, f.content, f.origin) for f in plan_release(variant)]
    return sorted(files, key=lambda f: f.path)


def _exam_checks(exam: Assignment) -> list[Check]:
    """What concerns the exam as a whole: its variants exist, the release folder holds exactly
    the current variants, no release file holds the exam password, the variants weigh the same."""
    from autograder.authoring.verify import Check

    checks: list[Check] = []
    missing = [f"{v.label}: no {folder} folder {path}; create it (see docs/authoring.md)"
               for v in exam.variants()
               for folder, path in (("public", v.public_dir), ("solution", v.solution_dir))
               if not path.is_dir()]
    checks.append(Check(f"every variant has its folders ({len(exam.variant_names())} variants)",
                        not missing, missing))
    diffs = release_differences(exam)
    checks.append(Check(f"release/{exam.name}/ holds exactly the current variants' releases",
                        not diffs, diffs))
    password = exam.config.exam.password if exam.config.exam else ""
    leaked = []
    if password:
        for path in sorted(exam.release_dir.rglob("*")):
            if path.is_file() and password.encode() in path.read_bytes():
                leaked.append(f"{path.relative_to(exam.course_root)}: holds the exam password; "
                              f"remove it from the sources and release again")
    checks.append(Check("release holds no exam password", not leaked, leaked))
    return checks


def verify_variants(exam: Assignment, sandbox: Sandbox) -> VerifyReport:
    """``verify`` of an exam: every variant verified as an assignment of its own, its checks
    named ``[<v>] ...`` and its mutants ``<v>/<mutant>``, plus the exam-wide checks. The exam is
    sound when every variant is."""
    from autograder.authoring.verify import Check, VerifyReport, verify

    checks = _exam_checks(exam)
    rows = []
    results = {}
    totals: dict[str, float] = {}
    for variant in exam.variants():
        report = verify(variant, sandbox)
        tag = variant.label.removeprefix(f"{exam.name}/")
        checks += [Check(f"[{tag}] {c.name}", c.ok, c.details) for c in report.checks]
        for row in report.mutants:
            row.mutant = f"{tag}/{row.mutant}"
            rows.append(row)
        results.update({f"{tag}/{sub}": r for sub, r in report.results.items()})
        reference = report.results.get("reference")
        if reference is not None:
            totals[tag] = reference.max_score
    if len(set(totals.values())) > 1:
        shown = ", ".join(f"{v} {p:g}" for v, p in totals.items())
        checks.append(Check("every variant is worth the same points", False,
                            [f"the variants' tests add up to {shown}; a student's score must not "
                             f"depend on the variant drawn: set `points` in assignment.toml and "
                             f"make each variant's tests add up to it"]))
    else:
        checks.append(Check("every variant is worth the same points", True))
    return VerifyReport(exam.name, checks, rows, results)
