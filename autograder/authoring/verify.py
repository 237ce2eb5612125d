"""``autograder verify NAME``: proof that an assignment is sound before students see it.

Checks, each reported with what to fix:

1. the committed release is what the sources build (byte for byte);
2. the release leaks no solution line, hidden test or mutant;
3. every test (public and hidden) passes on the reference solution;
4. every public test passes on the reference *without* the reference available (what a student
   with a correct solution sees in ``autograder check``), so no public test needs staff material;
5. every test fails on the stub;
6. every mutant file splices into the reference (:mod:`autograder.authoring.mutants`); one that
   does not is *broken*, never counted as caught;
7. every mutant (one common mistake) loses points, regular or extra credit, counted apart: a
   mutant that loses a regular point and gains a bonus one is still caught;
8. the trivial mutants verify adds by itself (:mod:`autograder.authoring.trivial`: zeros, or a
   constant, of the right shapes) earn none of the regular points;
9. no test ends in a grader error on any of these submissions (a fault of the test's own code);
10. the tests' points add up to ``points`` in assignment.toml, when it is set.

All submissions are graded for real, through the same sandbox and harness as students' work.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from autograder.authoring.mutants import MutantError, mutant_modules, read_mutant
from autograder.authoring.regions import strip_solutions
from autograder.authoring.release import find_release_leaks, release_differences
from autograder.authoring.trivial import TRIVIAL_MUTANTS, trivial_submissions
from autograder.course import Assignment
from autograder.harness.grader import run_session, spec_for
from autograder.harness.spec import PreparedSubmission
from autograder.sandbox.base import Sandbox
from autograder.results import GradingResult, Outcome, TestResult

REFERENCE_ID = "reference"
STUB_ID = "stub"


@dataclass
class Check:
    name: str
    ok: bool
    details: list[str] = field(default_factory=list)


@dataclass
class MutantRow:
    """What one mutant earned, regular and extra-credit points apart, against the reference."""

    mutant: str
    regular: float = 0.0            # regular points earned
    regular_max: float = 0.0
    extra: float = 0.0              # extra-credit points earned
    extra_max: float = 0.0          # extra credit the reference earns (all there is)
    caught_by: list[str] = field(default_factory=list)   # tests it fails
    reference_regular: float = 0.0
    description: str = ""           # the mistake, from the mutant's docstring
    broken: str = ""                # why it could not be built; a broken mutant is never caught
    trivial: bool = False           # added by verify itself: zeros or a constant
    credited_by: list[str] = field(default_factory=list)  # tests that gave it regular points

    @property
    def score(self) -> float:
        return self.regular + self.extra

    @property
    def max_score(self) -> float:
        return self.regular_max

    @property
    def caught(self) -> bool:
        """A mutant is caught when it loses points in either column (a trivial one: when it
        earns no regular point at all); a broken one never is."""
        if self.broken:
            return False
        if self.trivial:
            return self.regular < 1e-9
        return (self.regular < self.reference_regular - 1e-9
                or self.extra < self.extra_max - 1e-9)


def _regular_and_extra(result: GradingResult) -> tuple[float, float]:
    regular = sum(t.score for t in result.tests if not t.extra_credit)
    extra = sum(t.score for t in result.tests if t.extra_credit)
    return round(regular, 6), round(extra, 6)


def _row(name: str, result: GradingResult, reference: GradingResult, *,
         description: str = "", trivial: bool = False) -> MutantRow:
    regular, extra = _regular_and_extra(result)
    ref_regular, ref_extra = _regular_and_extra(reference)
    return MutantRow(
        name, regular, result.max_score, extra, ref_extra,
        [t.name for t in result.tests if t.status != "passed"], ref_regular, description,
        trivial=trivial,
        credited_by=[t.name for t in result.tests if not t.extra_credit and t.score > 0])


def _first_line(test: TestResult) -> str:
    return test.output.strip().splitlines()[0] if test.output.strip() else str(test.outcome)


@dataclass
class VerifyReport:
    assignment: str
    checks: list[Check]
    mutants: list[MutantRow]
    results: dict[str, GradingResult]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


def _stage(dest: Path, modules: dict[str, str], support: list[Path]) -> Path:
    """Stage module sources as a submission, the one way grading and `check` stage one."""
    from autograder.submissions import stage

    files = {f"{name}.py": source.encode("utf-8") for name, source in modules.items()}
    return stage(files, dest, tuple(modules), support, sub_id=dest.name).files


def verify(assignment: Assignment, sandbox: Sandbox) -> VerifyReport:
    if assignment.variant_names():  # an exam: every variant, as an assignment of its own
        from autograder.authoring.variants import verify_variants
        return verify_variants(assignment, sandbox)
    cfg = assignment.config
    checks: list[Check] = []

    diffs = release_differences(assignment)
    checks.append(Check("release is up to date", not diffs,
                        diffs + ([f"run `autograder release {assignment.name}` and commit "
                                  f"release/{assignment.name}/"] if diffs else [])))
    leaks = find_release_leaks(assignment)
    checks.append(Check("release holds no solution line, hidden test or mutant", not leaks, leaks))

    references = {m: p.read_text() for m, p in assignment.reference_files().items()}
    stubs = {m: strip_solutions(src, str(assignment.reference_files()[m]))
             for m, src in references.items()}
    support = assignment.support_files()

    mutants: dict[str, tuple[str, dict[str, str]]] = {}  # id -> (description, modules)
    rows: list[MutantRow] = []
    for path in assignment.mutant_files():
        try:
            mutant = read_mutant(path, cfg.modules)
            mutants[f"mutant:{path.stem}"] = (mutant.description,
                                              mutant_modules(mutant, references))
        except MutantError as e:
            rows.append(MutantRow(path.stem, broken=str(e)))
    trivial = trivial_submissions(references)

    with tempfile.TemporaryDirectory(prefix="autograder-verify-") as tmp:
        root = Path(tmp)
        subs = [PreparedSubmission(REFERENCE_ID, _stage(root / "ref", references, support)),
                PreparedSubmission(STUB_ID, _stage(root / "stub", stubs, support))]
        for i, (sub_id, (_, modules)) in enumerate(mutants.items()):
            subs.append(PreparedSubmission(sub_id, _stage(root / f"mutant-{i}", modules,
                                                          support)))
        for i, (sub_id, modules) in enumerate(trivial.items()):
            subs.append(PreparedSubmission(sub_id, _stage(root / f"trivial-{i}", modules,
                                                          support)))
        results = run_session(spec_for(assignment, hidden=True), subs, sandbox)
        public_only = run_session(spec_for(assignment, hidden=False),
                                  [PreparedSubmission("reference (public tests, no reference)",
                                                      subs[0].files)], sandbox)

    ref = results[REFERENCE_ID]
    failing = [f"{t.name}: {t.outcome}: {_first_line(t)}"
               for t in ref.tests if t.status != "passed"]
    checks.append(Check(f"every test passes on the reference ({len(ref.tests)} tests)",
                        not failing, failing))
    pub = next(iter(public_only.values()))
    failing_pub = [f"{t.name}: {_first_line(t)}" for t in pub.tests if t.status != "passed"]
    checks.append(Check("public tests pass without staff material (as `autograder check` runs "
                        "them)", not failing_pub, failing_pub))
    stub = results[STUB_ID]
    passing = [t.name for t in stub.tests if t.status == "passed"]
    checks.append(Check("every test fails on the stub", not passing,
                        [f"{n} passes on the stub: make it call the student's code and check "
                         f"the result" for n in passing]))

    for sub_id, (description, _) in mutants.items():
        rows.append(_row(sub_id.removeprefix("mutant:"), results[sub_id], ref,
                         description=description))
    rows.sort(key=lambda row: row.mutant)
    broken = [f"{row.mutant}: BROKEN: {row.broken}" for row in rows if row.broken]
    checks.append(Check(f"every mutant file splices into the reference ({len(rows)} mutants)",
                        not broken, broken))
    uncaught = [f"{row.mutant} keeps all {row.regular:g} points"
                + (f" and {row.extra:g} extra" if row.extra_max else "")
                + ": add a test that catches it" for row in rows if not row.broken and not row.caught]
    checks.append(Check(f"every mutant loses points ({len(rows)} mutants)",
                        bool(rows) and not uncaught,
                        uncaught or ([] if rows else [f"no mutants in {assignment.mutants_dir}: "
                                                      f"add one file per common mistake"])))

    trivial_rows = [_row(sub_id, results[sub_id], ref, trivial=True,
                         description=f"every public function returns {kind}")
                    for sub_id, kind in TRIVIAL_MUTANTS.items()]
    credited = [f"{row.mutant} earns {row.regular:g} of {row.regular_max:g} regular points, "
                f"from {', '.join(row.credited_by)}: make these tests check values the work "
                f"produces, not only shapes, dtypes or unchanged inputs"
                for row in trivial_rows if not row.caught]
    checks.append(Check("trivial mutants (zeros, a constant, of the right shapes) earn no "
                        "regular points", not credited, credited))
    rows.extend(trivial_rows)

    graded = {**results, **public_only}
    grader_errors = [f"{t.name} (on {sub_id}): {_first_line(t)}"
                     for sub_id, result in graded.items() for t in result.tests
                     if t.outcome == Outcome.GRADER_ERROR]
    checks.append(Check("no test ends in a grader error (a fault of the test's own code)",
                        not grader_errors, grader_errors))
    if cfg.points is not None:
        checks.append(Check(f"tests add up to the declared {cfg.points:g} points",
                            abs(ref.max_score - cfg.points) < 1e-9,
                            [] if abs(ref.max_score - cfg.points) < 1e-9 else
                            [f"the tests are worth {ref.max_score:g} points; change `points` in "
                             f"assignment.toml or the tests' points markers"]))
    return VerifyReport(assignment.name, checks, rows, results)
