"""``autograder``: the command line TAs, students and instructors script against."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from autograder.config import ConfigError
from autograder.course import Course, CourseNotFound


class UserError(click.ClickException):
    """A mistake the user can fix; printed without a traceback."""


def _course(course_dir: Path | None) -> Course:
    try:
        return Course.find(course_dir)
    except CourseNotFound as e:
        raise UserError(str(e)) from None


course_option = click.option(
    "--course", "course_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="The course repository (default: the one containing the current directory).")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dl-autograder")
def main() -> None:
    """Grade deep-learning assignments: student code runs sandboxed, verdicts stay trusted."""


@main.command()
@click.argument("name")
@course_option
def release(name: str, course_dir: Path | None) -> None:
    """Build release/NAME/ (stubs, handout, public tests) from the solution and assignment."""
    from autograder.authoring.release import build_release

    try:
        assignment = _course(course_dir).assignment(name)
        written = build_release(assignment)
    except (ConfigError,) as e:
        raise UserError(str(e)) from None
    click.echo(f"released {name}: {len(written)} files in {assignment.release_dir}")
    for path in written:
        click.echo(f"  {path.relative_to(assignment.release_dir)}")


def _mount_optional_groups() -> None:
    """Command groups that live beside the core (the gradebook) mount themselves here."""
    try:
        from gradebook.cli import gradebook as gradebook_group
    except ImportError:  # the gradebook package is not installed in this environment
        return
    main.add_command(gradebook_group)


_mount_optional_groups()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
