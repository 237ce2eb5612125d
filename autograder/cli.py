"""``autograder``: the command line TAs, students and instructors script against."""

from __future__ import annotations

import importlib
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

# No autograder.config here (pydantic: ~0.1 s): `check` starts its sandbox before it needs it.
from autograder.errors import AutograderError, PlatformError

if TYPE_CHECKING:
    from autograder.course import Course

#: Command groups that live beside the core, imported only when named (or listed by --help):
#: a student's `check` must not pay for the service, the gradebook or the similarity report.
#: name -> (module, attribute). A module that is not installed leaves its command out.
LAZY_COMMANDS = {
    "gradebook": ("gradebook.cli", "gradebook"),
    "worker": ("autograder.service.celery_engine", "worker_command"),
    "serve": ("autograder.service.cli", "serve"),
    "token": ("autograder.service.cli", "token"),
    "invite": ("autograder.service.cli", "invite"),
    "staff": ("autograder.service.cli", "staff_group"),
    "submit": ("autograder.service.cli", "submit"),
    "similarity": ("autograder.similarity.cli", "similarity_command"),
    "lti": ("autograder.service.lti.cli", "lti_group"),
}


class UserError(click.ClickException):
    """A mistake the user can fix; printed without a traceback."""


class _Commands(click.Group):
    """Every command prints the platform's errors as messages: a user's mistake with what to fix
    (exit 1), a fault of the platform said to be one (exit 2); never a traceback."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(LAZY_COMMANDS))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None and name in LAZY_COMMANDS:
            module, attribute = LAZY_COMMANDS[name]
            try:
                command = getattr(importlib.import_module(module), attribute)
            except ModuleNotFoundError as e:
                if e.name is None or not module.startswith(e.name):
                    raise  # the module is there but imports something missing: a real fault
                return None  # not installed in this environment
            self.add_command(command, name)
        return command

    def invoke(self, ctx: click.Context):
        # SIGTERM (a scheduler, `timeout`, a stopped CI job) unwinds as Ctrl-C does, so every
        # sandbox closes and takes its runners and warm containers with it. `serve` and
        # `worker` install their own handlers afterwards.
        signal.signal(signal.SIGTERM, _terminated)
        try:
            return super().invoke(ctx)
        except PlatformError as e:
            err = click.ClickException(f"a fault of the grading platform, not of your files: {e}")
            err.exit_code = 2
            raise err from None
        except AutograderError as e:
            raise click.ClickException(str(e)) from None


def _terminated(signum: int, _frame: object) -> None:
    # As Ctrl-C: pytest ends the session on KeyboardInterrupt (a SystemExit inside a test would
    # only fail that test, and be recorded as a fault of ours in the student's results).
    raise KeyboardInterrupt


def _course(course_dir: Path | None) -> Course:
    from autograder.course import Course, CourseNotFound

    try:
        return Course.find(course_dir)
    except CourseNotFound as e:
        raise UserError(str(e)) from None


course_option = click.option(
    "--course", "course_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="The course repository (default: the one containing the current directory).")


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dl-autograder")
def main() -> None:
    """Grade deep-learning assignments: student code runs sandboxed, verdicts stay trusted."""


variant_option = click.option(
    "--variant", default=None, metavar="V",
    help="For an exam with variants: only variant V (default: every variant).")


@main.command()
@click.argument("name")
@variant_option
@course_option
def release(name: str, variant: str | None, course_dir: Path | None) -> None:
    """Build release/NAME/ (stubs, handout, public tests) from the solution and assignment;
    for an exam with variants, release/NAME/variants/<v>/ for every variant."""
    from autograder.authoring.release import build_release
    from autograder.config import ConfigError

    try:
        assignment = _course(course_dir).assignment(name)
        if variant is not None:
            assignment = assignment.variant_of(variant)
        written = build_release(assignment)
    except (ConfigError,) as e:
        raise UserError(str(e)) from None
    click.echo(f"released {name}: {len(written)} files in {assignment.release_dir}")
    for path in written:
        click.echo(f"  {path.relative_to(assignment.release_dir)}")


@main.command()
@click.argument("name")
@click.argument("submissions", nargs=-1, required=True,
                type=click.Path(exists=True, path_type=Path))
@click.option("--output", "output_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Where to write DIR/<submission>/results.json "
                                 "(default: graded/NAME).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="table: a score table; json: the results on stdout.")
@click.option("--backend", type=click.Choice(["process", "docker"]), default=None,
              help="The sandbox (default: course.toml's grading.backend, else process).")
@click.option("--jobs", "-j", type=click.IntRange(min=0), default=None,
              help="Grading workers (default: course.toml's grading.jobs; 0 = one per two CPUs "
                   "for large batches).")
@click.option("--public-only", is_flag=True, help="Run only the public tests.")
@click.option("--details", is_flag=True, help="Also print every test's feedback.")
@click.option("--record", is_flag=True,
              help="Also record the batch in the gradebook (all or nothing). Each upload's name "
                   "is the student id (alice.zip -> alice) unless --manifest says otherwise.")
@click.option("--manifest", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              default=None, help="A CSV with columns submission, student, submitted_at that maps "
                                 "uploads (by file name) to students and receipt times.")
@click.option("--db", default=None, metavar="URL",
              help="The gradebook for --record (default: $AUTOGRADER_DB, else "
                   "<course>/gradebook.sqlite).")
@course_option
def grade(name: str, submissions: tuple[Path, ...], output_dir: Path | None, fmt: str,
          backend: str | None, jobs: int | None, public_only: bool, details: bool,
          record: bool, manifest: Path | None, db: str | None, course_dir: Path | None) -> None:
    """Grade SUBMISSIONS (folders, .zip, .py or .ipynb files) of assignment NAME.

    Every result carries whose upload it is and when it was received: the student id is the
    upload's name (or the manifest's), the receipt time the manifest's, else the file's
    modification time. Late days are judged on that time."""
    import json

    from rich.console import Console
    from rich.progress import Progress

    from autograder.harness.grader import grade_uploads
    from autograder.report import score_table, test_table, warn_degraded

    course = _course(course_dir)
    assignment = course.assignment(name)
    if record and public_only:
        raise UserError("--record needs the whole test set: a --public-only result never "
                        "counts as a grade")
    identity_of = _upload_identities(list(submissions), manifest, course.config.zone)
    if record:  # before grading: a batch that cannot be recorded is refused at once
        _check_roster(course, db, {identity_of(u).student for u in submissions})
    backend = backend or course.config.grading.backend
    out = output_dir or Path("graded") / name
    err = Console(stderr=True)
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task(f"grading {name}", total=len(submissions))

        def done(result):
            result.write(out / result.submission / "results.json")
            progress.advance(task)

        results = grade_uploads(assignment, list(submissions), backend=backend,
                                hidden=not public_only, on_result=done,
                                jobs=course.config.grading.jobs if jobs is None else jobs,
                                identity_of=identity_of)
    recorded = _record_batch(course, results, db) if record else []
    if fmt == "json":
        click.echo(json.dumps([r.to_json() for r in results], indent=2))
        _exit_now(0)
        return
    console = Console()
    warn_degraded(console, results)
    if details:
        for r in results:
            console.print(test_table(r))
    console.print(score_table(results, title=f"{name}: {len(results)} submission(s)"))
    console.print(f"results written to {out}/<submission>/results.json")
    for line in recorded:
        console.print(line, markup=False, highlight=False)
    _exit_now(0)


def _exit_now(code: int) -> None:
    """End a command-line run once its work is done: every file written, every sandbox closed,
    the gradebook committed, the output flushed. The interpreter's teardown (finalising torch,
    which the tests imported: about a second) serves nothing then. Inside another program (a
    test's CliRunner, which swaps the streams) this returns and the caller goes on."""
    if sys.stdout is not sys.__stdout__ or sys.stderr is not sys.__stderr__:
        return
    import os

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _upload_identities(uploads: list[Path], manifest: Path | None, zone):
    """``upload -> SubmissionIdentity``: the manifest's row for the upload (matched by its file
    name or its submission id), else the upload's name as the student id and its modification
    time as the receipt time."""
    import datetime as dt

    from autograder.results import SubmissionIdentity
    from autograder.submissions import submission_id

    rows: dict[str, tuple[str, dt.datetime]] = {}
    if manifest is not None:
        from gradebook.intake import read_manifest
        rows = read_manifest(manifest, zone)
        known = {u.name for u in uploads} | {submission_id(u) for u in uploads}
        unknown = sorted(set(rows) - known)
        if unknown:
            raise UserError(f"{manifest}: the manifest names uploads that are not being graded: "
                            f"{', '.join(unknown[:5])}; its submission column holds upload file "
                            f"names (alice.zip) or their ids (alice)")

    def identity_of(upload: Path) -> SubmissionIdentity:
        row = rows.get(upload.name) or rows.get(submission_id(upload))
        if row is not None:
            student, when = row
        else:
            student = submission_id(upload)
            when = dt.datetime.fromtimestamp(upload.stat().st_mtime, tz=zone)
        return SubmissionIdentity(student=student, received_at=when.isoformat())
    return identity_of


def _check_roster(course: Course, db: str | None, students: set[str]) -> None:
    from gradebook.store import Gradebook, database_url

    with Gradebook.open(database_url(course.root, db), course.config) as gb:
        unknown = sorted(students - {st.student_id for st in gb.students()})
    if unknown:
        raise UserError(f"not in the roster: {', '.join(unknown[:10])}; add them with "
                        f"`autograder gradebook roster import FILE.csv`, or map uploads to "
                        f"students with --manifest (nothing was graded)")


def _record_batch(course: Course, results, db: str | None) -> list[str]:
    """Record every result in the gradebook in one transaction; lines saying what was kept."""
    from gradebook.store import Gradebook, database_url

    with Gradebook.open(database_url(course.root, db), course.config) as gb:
        gb.sync_assignments(course.root)
        with gb.transaction():
            recorded = [gb.record_graded(r) for r in results]
    zone = course.config.zone
    return [f"recorded {r.student}: attempt {r.attempt}, received "
            f"{r.received_at.astimezone(zone):%Y-%m-%d %H:%M:%S %Z}"
            f", {r.score:g} / {r.max_points:g}" for r in recorded]


@main.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("-k", "keyword", metavar="PATTERN", default=None,
              help="Run only the tests whose names match PATTERN: a part of a name "
                   "(-k vectorized), or an expression (-k 'loss and not vectorized').")
def check(directory: Path | None, keyword: str | None) -> None:
    """Run the public tests on your work (inside your copy of an assignment's release)."""
    here = (directory or Path.cwd()).resolve()
    release_dir = next((d for d in (here, *here.parents) if (d / "assignment.toml").is_file()),
                       None)
    if release_dir is None:
        raise UserError(f"no assignment.toml at or above {here}: run `autograder check` inside "
                        f"the folder of the assignment you downloaded")
    from autograder.harness.session import runner_preload, start_sandbox

    # The student side starts first: its fork server imports numpy (and torch, only where the
    # code imports it) while this process imports the harness and collects the tests.
    with start_sandbox("process", runner_preload(release_dir.glob("*.py"))) as sandbox:
        result = _check_in(release_dir, sandbox, keyword)
    from rich.console import Console

    from autograder.report import print_check, warn_degraded

    console = Console()
    warn_degraded(console, [result])
    print_check(console, result)
    passed = sum(t.status == "passed" for t in result.tests)
    regular = [t for t in result.tests if not t.extra_credit]
    extra = [t for t in result.tests if t.extra_credit]
    points = f"{sum(t.score for t in regular):g} of {sum(t.max_score for t in regular):g} points"
    if extra:
        points += (f", +{sum(t.score for t in extra):g} of "
                   f"+{sum(t.extra_points for t in extra):g} extra")
    selected = f" selected by -k {keyword!r}" if keyword is not None else ""
    console.print(f"{passed} of {len(result.tests)} public tests{selected} pass ({points}). "
                  f"Hidden tests are run when you submit.", markup=False, highlight=False)
    code = 1 if passed < len(result.tests) else 0
    _exit_now(code)
    sys.exit(code)


def _check_in(release_dir: Path, sandbox, keyword: str | None):
    """Stage the student's release folder and run its public tests in ``sandbox``."""
    import tempfile

    from autograder.config import load_assignment
    from autograder.harness.grader import spec_for_release
    from autograder.harness.plugin import HarnessError
    from autograder.harness.session import run_session
    from autograder.submissions import stage

    try:
        spec = spec_for_release(release_dir)
    except HarnessError as e:
        raise UserError(str(e)) from None
    with tempfile.TemporaryDirectory(prefix="autograder-check-") as tmp:
        # The folder is staged exactly as `grade` stages a folder upload (helper modules kept);
        # the support files are the release's copies, as grading uses the course's.
        support = [release_dir / name for name in
                   load_assignment(release_dir, folder_must_match=False).support_files]
        prepared = stage(release_dir, Path(tmp) / "submission", spec.modules,
                         [p for p in support if p.is_file()], sub_id="your work")
        try:
            return run_session(spec, [prepared], sandbox, keyword=keyword)["your work"]
        except HarnessError as e:
            raise UserError(str(e)) from None


@main.command()
@click.argument("name")
@variant_option
@course_option
def verify(name: str, variant: str | None, course_dir: Path | None) -> None:
    """Prove assignment NAME is sound: reference passes, stub fails, mutants lose points,
    the release is current and leaks nothing. An exam is sound when every variant is."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from autograder.authoring.verify import verify as run_verify
    from autograder.config import ConfigError
    from autograder.harness.grader import preload_for, start_sandbox
    from autograder.harness.plugin import HarnessError

    console = Console()
    try:
        assignment = _course(course_dir).assignment(name)
        if variant is not None:
            assignment = assignment.variant_of(variant)
        with start_sandbox("process", preload_for(assignment)) as sandbox:
            with console.status(f"verifying {name}: grading the reference, the stub and the "
                                f"mutants"):
                report = run_verify(assignment, sandbox)
    except (ConfigError, HarnessError) as e:
        raise UserError(str(e)) from None
    if report.mutants:
        table = Table(title=f"{name}: mutants (common mistakes)")
        table.add_column("mutant")
        table.add_column("regular", justify="right")
        has_extra = any(row.extra_max for row in report.mutants)
        if has_extra:
            table.add_column("extra", justify="right")
        table.add_column("caught by")

        def shorten(tests: list[str]) -> str:
            names = [n.split("::")[-1] for n in tests]
            return escape(", ".join(names[:4]) + (f" and {len(names) - 4} more"
                                                  if len(names) > 4 else ""))

        for row in report.mutants:
            if row.broken:
                cells = ["[red]BROKEN[/]"] + (["-"] if has_extra else []) + [escape(row.broken)]
            else:
                cells = [f"{row.regular:g}/{row.regular_max:g}"]
                if has_extra:
                    cells.append(f"+{row.extra:g}/{row.extra_max:g}")
                if row.trivial and row.credited_by:
                    cells.append("[red]credited by[/] " + shorten(row.credited_by))
                else:
                    cells.append(shorten(row.caught_by) or "[red]nothing[/]")
            table.add_row(escape(row.mutant), *cells)
        console.print(table)
    for check in report.checks:
        mark = "[green]ok[/]  " if check.ok else "[red]FAIL[/]"
        console.print(f"{mark} {escape(check.name)}")
        for line in check.details[:20]:
            console.print(f"       {line}", markup=False, highlight=False)
    if not report.ok:
        console.print(f"[red]{name} is not ready to release.[/]")
        sys.exit(1)
    console.print(f"[green]{name} is sound.[/]")


@main.command()
@click.option("--output", "output_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("graded/demo"), show_default=True,
              help="Where to write the sample submissions' results.json files.")
@click.option("--keep", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Keep the temporary demo course (sources, solutions, release) here.")
def demo(output_dir: Path, keep: Path | None) -> None:
    """Run the whole slice on the embedded defaults: release the softmax assignment, grade
    bundled sample submissions (correct, buggy, stub, malicious) and write their results."""
    from autograder.config import ConfigError
    from autograder.demo import run_demo

    try:
        run_demo(output_dir, keep)
    except (ConfigError, FileNotFoundError) as e:
        raise UserError(str(e)) from None


@main.group()
def image() -> None:
    """The docker sandbox's grading image."""


@image.command("build")
@click.option("--base", default=None, help="Build on this local image (e.g. a CUDA image the "
              "course names) instead of a debootstrapped Debian root.")
@click.option("--tag", default=None, help="The image's tag (default: autograder-runner:latest).")
@click.option("--force", is_flag=True, help="Rebuild even when the inputs did not change.")
def image_build(base: str | None, tag: str | None, force: bool) -> None:
    """Build the grading image from local material only (cached by a hash of its inputs)."""
    from autograder.image.build import DEFAULT_TAG, ImageBuildError, build_image

    try:
        r = build_image(tag or DEFAULT_TAG, base=base, force=force,
                        log=lambda m: click.echo(f"image: {m}", err=True))
    except ImageBuildError as e:
        raise UserError(str(e)) from None
    click.echo(f"{r.tag}: {'built' if r.built else 'cached'} in {r.seconds:.1f} s, "
               f"{r.size_mb:.0f} MiB, inputs {r.inputs[:12]}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
