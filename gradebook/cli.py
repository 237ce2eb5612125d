"""``autograder gradebook ...``: the commands TAs and instructors script against.

Every command takes ``--db URL`` (default ``$AUTOGRADER_DB``, else ``<course>/gradebook.sqlite``)
and ``--course DIR``; commands that grade first sync the assignment records from
``assignments/*/assignment.toml`` and course.toml ``[assessments]``.
"""

from __future__ import annotations

import datetime as dt
import getpass
from dataclasses import dataclass
from pathlib import Path

import click

from autograder.config import ConfigError
from autograder.course import Course, CourseNotFound
from autograder.errors import AutograderError
from gradebook.errors import GradebookError


class UserError(click.ClickException):
    """A mistake the user can fix; printed without a traceback."""


class _Commands(click.Group):
    """Every gradebook command prints a mistake the user can fix (a malformed course.toml, an
    unknown student, a refused extension) as a message, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (AutograderError, ConfigError, CourseNotFound, GradebookError) as e:
            raise UserError(str(e)) from None


def _whoami() -> str:
    """Who is making a change, for the audit trail (the login name, unless --by says)."""
    try:
        return getpass.getuser()
    except Exception:  # no login name (a container without /etc/passwd entry)
        return ""


by_option = click.option("--by", "by", default=None, metavar="WHO",
                         help="Who makes the change, for the audit trail (default: your login name).")


@dataclass
class _Ctx:
    course_dir: Path | None
    db: str | None
    zone: object = None  # the course's time zone, once a gradebook is open

    def course(self) -> Course:
        try:
            return Course.find(self.course_dir)
        except CourseNotFound as e:
            raise UserError(str(e)) from None

    def open(self, sync: bool = True):  # -> Gradebook
        from gradebook.store import Gradebook, database_url

        course = self.course()
        try:
            gb = Gradebook.open(database_url(course.root, self.db), course.config)
            if sync:
                gb.sync_assignments(course.root)
        except (ConfigError, GradebookError) as e:
            raise UserError(str(e)) from None
        return gb


def _as_of(value: str | None, gb) -> dt.datetime | None:
    if not value:
        return None
    from gradebook.csvfiles import parse_time

    try:
        return parse_time(value, gb.config.zone)
    except ValueError:
        raise UserError(f"--as-of {value!r} is not a time; write ISO 8601 such as "
                        f"2026-12-20T12:00") from None


as_of_option = click.option("--as-of", "as_of", default=None, metavar="TIME",
                            help="Grade as of this time (ISO 8601, course time zone); default now.")
allocation_option = click.option("--allocation", type=click.Choice(["chronological", "best"]),
                                 default=None, help="Slack-day allocation (default: course.toml).")


@click.group(cls=_Commands)
@click.option("--db", default=None, metavar="URL",
              help="Database URL (sqlite:///file or postgresql+psycopg://...); default "
                   "$AUTOGRADER_DB, else <course>/gradebook.sqlite.")
@click.option("--course", "course_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="The course repository (default: the one around the current directory).")
@click.pass_context
def gradebook(ctx: click.Context, db: str | None, course_dir: Path | None) -> None:
    """The gradebook: roster, submissions, late and slack days, grades, exports."""
    ctx.obj = _Ctx(course_dir, db)


def _run(fn):
    """Turn the gradebook's own errors into messages without tracebacks."""
    try:
        return fn()
    except (GradebookError, ConfigError, ValueError) as e:
        raise UserError(str(e)) from None


@gradebook.command()
@click.pass_obj
def sync(obj: _Ctx) -> None:
    """Sync the assignment records from assignments/*/assignment.toml and course.toml."""
    from gradebook.store import Gradebook, database_url

    course = obj.course()
    with Gradebook.open(database_url(course.root, obj.db), course.config) as gb:
        report = _run(lambda: gb.sync_assignments(course.root))
        for word, names in (("added", report.added), ("updated", report.updated),
                            ("removed (records kept, no longer graded)", report.removed)):
            if names:
                click.echo(f"{word}: {', '.join(names)}")
        click.echo(f"{len(gb.assignment_names())} assessments in the gradebook")


@gradebook.group()
def roster() -> None:
    """The class list."""


@roster.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--drop-missing", is_flag=True,
              help="Mark students who are not in FILE as dropped (their records are kept).")
@click.pass_obj
def roster_import(obj: _Ctx, file: Path, drop_missing: bool) -> None:
    """Import FILE.csv (columns id, name, email, optional section); all or nothing."""
    from gradebook.csvfiles import parse_roster

    rows = _run(lambda: parse_roster(file))
    with obj.open(sync=False) as gb:
        report = _run(lambda: gb.import_roster(rows, drop_missing=drop_missing))
    click.echo(f"{file}: {len(report.added)} added, {len(report.updated)} updated, "
               f"{len(report.reactivated)} reactivated, {len(report.unchanged)} unchanged")
    if report.dropped:
        click.echo(f"marked dropped: {', '.join(report.dropped)}")
    elif report.not_in_file:
        click.echo(f"in the gradebook but not in {file.name}: {', '.join(report.not_in_file)} "
                   f"(still active; --drop-missing marks them dropped)")


@roster.command("drop")
@click.argument("student")
@click.option("--undo", is_flag=True, help="Make the student active again.")
@click.pass_obj
def roster_drop(obj: _Ctx, student: str, undo: bool) -> None:
    """Mark STUDENT dropped: out of exports and stats, records kept."""
    with obj.open(sync=False) as gb:
        _run(lambda: gb.set_student_status(student, "active" if undo else "dropped"))
    click.echo(f"{student}: {'active' if undo else 'dropped'}")


@gradebook.command("staff")
@click.argument("email")
@click.option("--role", type=click.Choice(["instructor", "ta", "grader"]), required=True)
@click.option("--name", default="")
@click.pass_obj
def staff(obj: _Ctx, email: str, role: str, name: str) -> None:
    """Give EMAIL a staff role."""
    with obj.open(sync=False) as gb:
        _run(lambda: gb.add_staff(email, role, name))
    click.echo(f"{email}: {role}")


@gradebook.group()
def scores() -> None:
    """Scores graded elsewhere (a Gradescope export, a paper exam, the project)."""


@scores.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@by_option
@click.pass_obj
def scores_import(obj: _Ctx, file: Path, by: str | None) -> None:
    """Import FILE.csv: student, assignment, score, max_score, optional submitted_at."""
    from gradebook.csvfiles import parse_scores

    with obj.open() as gb:
        rows = _run(lambda: parse_scores(file, gb.config.zone))
        counts = _run(lambda: gb.import_scores(rows, str(file), by=by or _whoami()))
    click.echo(f"{file}: {counts['added']} added, {counts['replaced']} replaced, "
               f"{counts['unchanged']} unchanged")


@gradebook.command()
@click.argument("student")
@click.argument("assignment")
@click.option("--days", type=int, default=None, help="Move the due time later by this many days.")
@click.option("--until", default=None, metavar="TIME",
              help="The new due time (ISO 8601, course time zone); later than the due time.")
@click.option("--revoke", is_flag=True, help="Take the student's extension back.")
@click.option("--reason", default="", help="Why, for the audit trail.")
@by_option
@click.pass_obj
def extend(obj: _Ctx, student: str, assignment: str, days: int | None, until: str | None,
           revoke: bool, reason: str, by: str | None) -> None:
    """Give STUDENT an extension on ASSIGNMENT (--days N or --until TIME), or take it back
    (--revoke). Every change is kept in the audit trail."""
    from gradebook.policy import fmt_time

    who = by or _whoami()
    with obj.open() as gb:
        if revoke:
            if days is not None or until:
                raise UserError("--revoke takes neither --days nor --until")
            _run(lambda: gb.revoke_extension(student, assignment, reason=reason, revoked_by=who))
            click.echo(f"{student} {assignment}: extension revoked")
            return
        due = _as_of(until, gb) if until else None
        new_due = _run(lambda: gb.grant_extension(student, assignment, due=due, days=days,
                                                  reason=reason, granted_by=who))
        click.echo(f"{student} {assignment}: due {fmt_time(new_due, gb.config.zone)}")


@gradebook.command()
@click.argument("student")
@click.option("--time-factor", type=float, default=None,
              help="Multiply every exam's and quiz's duration by this (1.5: time and a half).")
@click.option("--extra-minutes", type=float, default=0.0, show_default=True,
              help="Minutes added to every timed assessment, after the factor.")
@click.option("--revoke", is_flag=True, help="Take the student's accommodation back.")
@click.option("--reason", default="", help="Why, for the audit trail.")
@by_option
@click.pass_obj
def accommodate(obj: _Ctx, student: str, time_factor: float | None, extra_minutes: float,
                revoke: bool, reason: str, by: str | None) -> None:
    """Give STUDENT an accommodation on every exam and quiz: their time is duration x
    --time-factor + --extra-minutes, within each exam's window. Stored once, kept in the audit
    trail; setting it again replaces it."""
    who = by or _whoami()
    with obj.open() as gb:
        if revoke:
            if time_factor is not None or extra_minutes:
                raise UserError("--revoke takes neither --time-factor nor --extra-minutes")
            _run(lambda: gb.remove_accommodation(student, reason=reason, removed_by=who))
            click.echo(f"{student}: accommodation revoked")
            return
        if time_factor is None and not extra_minutes:
            raise UserError("give --time-factor (e.g. 1.5) and/or --extra-minutes, or --revoke")
        factor = 1.0 if time_factor is None else time_factor
        _run(lambda: gb.set_accommodation(student, time_factor=factor,
                                          extra_minutes=extra_minutes, reason=reason,
                                          set_by=who))
        extra = f" + {extra_minutes:g} min" if extra_minutes else ""
        click.echo(f"{student}: every exam's and quiz's duration x {factor:g}{extra} "
                   f"(within each exam's window)")


@gradebook.command("exam-override")
@click.argument("student")
@click.argument("exam")
@click.option("--extra-minutes", type=float, default=0.0, show_default=True,
              help="Minutes added to this student's time on this exam (on top of any "
                   "accommodation).")
@click.option("--window-extension-minutes", type=float, default=0.0, show_default=True,
              help="Move this student's close of the exam window (and so the due time) later.")
@click.option("--revoke", is_flag=True, help="Take the override back.")
@click.option("--reason", default="", help="Why, for the audit trail.")
@by_option
@click.pass_obj
def exam_override(obj: _Ctx, student: str, exam: str, extra_minutes: float,
                  window_extension_minutes: float, revoke: bool, reason: str,
                  by: str | None) -> None:
    """Set STUDENT's own terms on EXAM (a kind exam or quiz): more minutes and/or a later close
    of the window. Kept in the audit trail; setting it again replaces it."""
    who = by or _whoami()
    with obj.open() as gb:
        if revoke:
            if extra_minutes or window_extension_minutes:
                raise UserError("--revoke takes neither --extra-minutes nor "
                                "--window-extension-minutes")
            _run(lambda: gb.revoke_exam_override(student, exam, reason=reason, revoked_by=who))
            click.echo(f"{student} {exam}: exam override revoked")
            return
        _run(lambda: gb.set_exam_override(student, exam, extra_minutes=extra_minutes,
                                          window_extension_minutes=window_extension_minutes,
                                          reason=reason, set_by=who))
        allowance = _run(lambda: gb.exam_allowance(student, exam))
        click.echo(f"{student} {exam}: duration x {allowance.time_factor:g} + "
                   f"{allowance.extra_minutes:g} min, window closes "
                   f"{allowance.window_extension_minutes:g} min later")


@gradebook.command()
@click.argument("results_dirs", nargs=-1, required=True,
                type=click.Path(exists=True, path_type=Path))
@click.option("--student", default=None, help="The student (one result only); default: the "
                                                "submission's name.")
@click.option("--submitted-at", default=None, metavar="TIME",
              help="When it was submitted (ISO 8601, course time zone unless an offset is given).")
@click.option("--manifest", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              default=None, help="CSV with columns submission, student, submitted_at.")
@click.pass_obj
def record(obj: _Ctx, results_dirs: tuple[Path, ...], student: str | None,
           submitted_at: str | None, manifest: Path | None) -> None:
    """Record the results.json files `autograder grade --output DIR` wrote (idempotent; all or
    nothing). Who and when come from each result; --manifest or --student and --submitted-at
    only for results that do not say."""
    from gradebook.intake import find_results, read_manifest, record_results

    with obj.open() as gb:
        obj.zone = gb.config.zone
        found = _run(lambda: find_results(list(results_dirs)))
        when = _as_of(submitted_at, gb)
        table = _run(lambda: read_manifest(manifest, gb.config.zone)) if manifest else None
        done = _run(lambda: record_results(gb, found, student=student, submitted_at=when,
                                           manifest=table))
    from gradebook.policy import fmt_receipt

    for r in done:
        click.echo(f"{r.student} {r.assignment} attempt {r.attempt}: {r.score:g} / "
                   f"{r.max_points:g} (received {fmt_receipt(r.received_at, obj.zone)})")
    click.echo(f"recorded {len(done)} results")


@gradebook.command()
@click.argument("student")
@click.argument("assignment")
@click.argument("attempt", type=int)
@click.pass_obj
def choose(obj: _Ctx, student: str, assignment: str, attempt: int) -> None:
    """Make STUDENT's ATTEMPT the one that counts for ASSIGNMENT (score policy "chosen")."""
    with obj.open() as gb:
        _run(lambda: gb.choose_submission(gb.submission_id(student, assignment, attempt)))
        policy = gb.config.grading.score_policy
    click.echo(f"{student} {assignment}: attempt {attempt} chosen"
               + ("" if policy == "chosen" else
                  f" (note: course.toml [grading] score_policy is {policy!r}, so the choice is "
                  f"kept but does not count until it is \"chosen\")"))


@gradebook.command()
@click.option("--format", "fmt", type=click.Choice(["csv", "canvas", "xlsx"]), default="csv")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--include-dropped", is_flag=True, help="Also export dropped students.")
@as_of_option
@allocation_option
@click.pass_obj
def export(obj: _Ctx, fmt: str, output: Path, include_dropped: bool, as_of: str | None,
           allocation: str | None) -> None:
    """One row per student: scores after penalties, late and slack days, grades."""
    from gradebook.export import write_export

    with obj.open() as gb:
        grades = gb.grades(_as_of(as_of, gb), allocation, include_dropped)
        people = {s.student_id: {"email": s.email, "section": s.section} for s in gb.students()}
        _run(lambda: write_export(fmt, output, grades, gb.specs(), gb.config, people))
    click.echo(f"wrote {output} ({fmt}, {len(grades)} students)")


@gradebook.command()
@click.argument("student")
@as_of_option
@allocation_option
@click.pass_obj
def explain(obj: _Ctx, student: str, as_of: str | None, allocation: str | None) -> None:
    """Print the derivation of every number shown for STUDENT."""
    with obj.open() as gb:
        grades = _run(lambda: gb.grades(_as_of(as_of, gb), allocation, only=student))
    click.echo("\n".join(grades[0].lines))


@gradebook.command()
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the PNG histograms and CSV tables go (default <course>/gradebook-stats).")
@as_of_option
@click.pass_obj
def stats(obj: _Ctx, output_dir: Path | None, as_of: str | None) -> None:
    """Per-assessment distributions, per-test pass rates, histograms."""
    import pandas as pd

    from gradebook.stats import distributions, histograms, pass_rates

    out = output_dir or obj.course().root / "gradebook-stats"
    with obj.open() as gb:
        grades = gb.grades(_as_of(as_of, gb))
        specs = gb.specs()
        dist = distributions(grades, specs)
        rates = pass_rates(gb.test_records())
    pngs = histograms(grades, specs, out)
    dist.to_csv(out / "distributions.csv", index=False)
    rates.to_csv(out / "pass_rates.csv", index=False)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        click.echo("per-assessment percentages (after penalties):")
        click.echo(dist.to_string(index=False) if not dist.empty else "  (no assessments)")
        click.echo("\ntests with the lowest pass rates:")
        click.echo(rates.head(15).to_string(index=False) if not rates.empty
                   else "  (no stored results)")
    click.echo(f"\nwrote {len(pngs)} plots, distributions.csv and pass_rates.csv to {out}")


@gradebook.command("import-nbgrader")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.pass_obj
def import_nbgrader(obj: _Ctx, file: Path) -> None:
    """Bring students and scores over from nbgrader's gradebook.db."""
    from gradebook.nbgrader_import import import_nbgrader as run_import

    with obj.open() as gb:
        report = _run(lambda: run_import(gb, file))
    click.echo(report)


@gradebook.command()
@click.argument("student")
@click.argument("assignment")
@click.argument("test")
@click.option("--score", type=float, default=None, help="The test's score instead of the grader's.")
@click.option("--comment", default="", help="Why (required; kept in the audit trail and shown "
                                            "by explain).")
@click.option("--delete", is_flag=True, help="Take the override back: the graded score counts.")
@by_option
@click.pass_obj
def override(obj: _Ctx, student: str, assignment: str, test: str, score: float | None,
             comment: str, delete: bool, by: str | None) -> None:
    """Give TEST of STUDENT's ASSIGNMENT a score by hand, with a comment (or --delete it)."""
    who = by or _whoami()
    with obj.open() as gb:
        if delete:
            _run(lambda: gb.remove_override(student, assignment, test, comment=comment, by=who))
            click.echo(f"{student} {assignment} {test}: override removed")
            return
        if score is None:
            raise UserError("give the test's new score with --score (or --delete the override)")
        _run(lambda: gb.override_test(student, assignment, test, score, comment=comment, by=who))
    click.echo(f"{student} {assignment} {test}: {score:g} (overridden)")


@gradebook.command()
@click.option("--student", default=None)
@click.option("--assignment", default=None)
@click.pass_obj
def audit(obj: _Ctx, student: str | None, assignment: str | None) -> None:
    """The audit trail: extensions, manual scores, overrides and deletions; who, when, what, why."""
    from gradebook.policy import fmt_receipt

    with obj.open() as gb:
        entries = gb.audit(student, assignment)
        zone = gb.config.zone
    for e in entries:
        why = f"; why: {e.reason}" if e.reason else ""
        click.echo(f"{fmt_receipt(e.at, zone)}  {e.actor or '(unknown)'}  {e.action}  "
                   f"{e.student} {e.assignment}: {e.detail}{why}")
    if not entries:
        click.echo("(no changes by hand recorded)")


@gradebook.group()
def submissions() -> None:
    """The submission records: list them, delete one."""


@submissions.command("list")
@click.option("--student", default=None)
@click.option("--assignment", default=None)
@click.pass_obj
def submissions_list(obj: _Ctx, student: str | None, assignment: str | None) -> None:
    """Every submission record: id, student, assignment, attempt, receipt time, score."""
    from gradebook.policy import fmt_receipt

    with obj.open() as gb:
        rows = gb.submission_rows(student, assignment)
        zone = gb.config.zone
    for r in rows:
        score = "not graded" if r.score is None else f"{r.score:g} / {r.max_points:g}"
        click.echo(f"{r.id:>6}  {r.student}  {r.assignment}  attempt {r.attempt}  received "
                   f"{fmt_receipt(r.received_at, zone)}  {score}  ({r.runs} run"
                   f"{'s' if r.runs != 1 else ''}, content {r.content_hash[:12]})")
    click.echo(f"{len(rows)} submission{'s' if len(rows) != 1 else ''}")


@submissions.command("delete")
@click.argument("submission_id", type=int)
@click.option("--reason", default="", help="Why, for the audit trail.")
@by_option
@click.confirmation_option(prompt="Delete this submission, its files and its results?")
@click.pass_obj
def submissions_delete(obj: _Ctx, submission_id: int, reason: str, by: str | None) -> None:
    """Delete submission SUBMISSION_ID (see `submissions list`) with its files and results."""
    with obj.open() as gb:
        gone = _run(lambda: gb.delete_submission(submission_id, reason=reason, by=by or _whoami()))
    click.echo(f"deleted submission {gone.id}: {gone.student} {gone.assignment} attempt {gone.attempt}")
