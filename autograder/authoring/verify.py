"""``autograder verify NAME``: proof that an assignment is sound before students see it.

Checks, each reported with what to fix:

1. the committed release is what the sources build (byte for byte);
2. the release leaks no solution line, hidden test or mutant;
3. every test (public and hidden) passes on the reference solution;
4. every public test passes on the reference *without* the reference available (what a student
   with a correct solution sees in ``autograder check``), so no public test needs staff material;
5. every test fails on the stub;
6. every mutant (a whole student module with one common mistake) loses points;
7. the tests' points add up to ``points`` in assignment.toml, when it is set.

All submissions are graded for real, through the same sandbox and harness as students' work.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from autograder.authoring.regions import strip_solutions
from autograder.authoring.release import find_release_leaks, release_differences
from autograder.course import Assignment
from autograder.harness.grader import run_session, spec_for
from autograder.harness.plugin import PreparedSubmission
from autograder.sandbox.base import Sandbox
from autograder.results import GradingResult

REFERENCE_ID = "reference"
STUB_ID = "stub"


@dataclass
class Check:
    name: str
    ok: bool
    details: list[str] = field(default_factory=list)


@dataclass
class MutantRow:
    mutant: str
    score: float
    max_score: float
    caught_by: list[str]
    reference_score: float = 0.0

    @property
    def caught(self) -> bool:
        # Against what the reference earns, so losing only extra credit counts too.
        return self.score < self.reference_score


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
    dest.mkdir(parents=True)
    for name, source in modules.items():
        (dest / f"{name}.py").write_text(source)
    for path in support:
        (dest / path.name).write_bytes(path.read_bytes())
    return dest


def verify(assignment: Assignment, sandbox: Sandbox) -> VerifyReport:
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
    mutants = assignment.mutant_files()
    main = cfg.main_module

    with tempfile.TemporaryDirectory(prefix="autograder-verify-") as tmp:
        root = Path(tmp)
        subs = [PreparedSubmission(REFERENCE_ID, _stage(root / "ref", references, support)),
                PreparedSubmission(STUB_ID, _stage(root / "stub", stubs, support))]
        for path in mutants:
            subs.append(PreparedSubmission(
                f"mutant:{path.stem}",
                _stage(root / f"mutant-{path.stem}", {**references, main: path.read_text()},
                       support)))
        results = run_session(spec_for(assignment, hidden=True), subs, sandbox)
        public_only = run_session(spec_for(assignment, hidden=False),
                                  [PreparedSubmission("reference (public tests, no reference)",
                                                      subs[0].files)], sandbox)

    ref = results[REFERENCE_ID]
    failing = [f"{t.name}: {t.outcome}: {t.output.splitlines()[0] if t.output else ''}"
               for t in ref.tests if t.status != "passed"]
    checks.append(Check(f"every test passes on the reference ({len(ref.tests)} tests)",
                        not failing, failing))
    pub = next(iter(public_only.values()))
    failing_pub = [f"{t.name}: {t.output.splitlines()[0] if t.output else t.outcome}"
                   for t in pub.tests if t.status != "passed"]
    checks.append(Check("public tests pass without staff material (as `autograder check` runs "
                        "them)", not failing_pub, failing_pub))
    stub = results[STUB_ID]
    passing = [t.name for t in stub.tests if t.status == "passed"]
    checks.append(Check("every test fails on the stub", not passing,
                        [f"{n} passes on the stub: make it call the student's code and check "
                         f"the result" for n in passing]))

    rows = []
    for path in mutants:
        r = results[f"mutant:{path.stem}"]
        rows.append(MutantRow(path.stem, r.score, r.max_score,
                              [t.name for t in r.tests if t.status != "passed"], ref.score))
    uncaught = [f"{row.mutant} keeps all {row.score:g} points: add a test that catches it"
                for row in rows if not row.caught]
    checks.append(Check(f"every mutant loses points ({len(rows)} mutants)",
                        bool(rows) and not uncaught,
                        uncaught or ([] if rows else [f"no mutants in {assignment.mutants_dir}: "
                                                      f"add one file per common mistake"])))
    if cfg.points is not None:
        checks.append(Check(f"tests add up to the declared {cfg.points:g} points",
                            abs(ref.max_score - cfg.points) < 1e-9,
                            [] if abs(ref.max_score - cfg.points) < 1e-9 else
                            [f"the tests are worth {ref.max_score:g} points; change `points` in "
                             f"assignment.toml or the tests' points markers"]))
    return VerifyReport(assignment.name, checks, rows, results)
