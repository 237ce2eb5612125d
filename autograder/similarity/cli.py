"""``autograder similarity``: the similarity report from the command line (registered on the
main command group by ``autograder/cli.py``)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("similarity")
@click.argument("assignment")
@click.argument("submissions", nargs=-1,
                type=click.Path(exists=True, path_type=Path))
@click.option("--output", "output_dir", type=click.Path(file_okay=False, path_type=Path),
              required=True, help="Where pairs.csv and report.html are written.")
@click.option("--reference-set", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, help="Earlier terms' submissions (one folder, .zip, .py or .ipynb "
                                 "per student) to compare this term's with.")
@click.option("--threshold", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Pairs at or above this similarity are flagged and shown side by side.")
@click.option("--details", type=click.IntRange(min=0), default=30, show_default=True,
              help="How many flagged pairs the report shows side by side.")
@click.option("--course", "course_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="The course repository (default: the one containing the "
                                 "current directory).")
@click.option("--db", default=None, metavar="URL",
              help="Without SUBMISSIONS: the gradebook to read the latest submission of each "
                   "student from (default: $AUTOGRADER_DB, else the course's gradebook.sqlite).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The service's data folder, whose uploads/ holds what students submitted "
                   "through the service (default: <course>/data).")
def similarity_command(assignment: str, submissions: tuple[Path, ...], output_dir: Path,
                       reference_set: Path | None, threshold: float, details: int,
                       course_dir: Path | None, db: str | None, data_dir: Path | None) -> None:
    """Compare the submissions of ASSIGNMENT for shared code: SUBMISSIONS (folders, .zip, .py
    or .ipynb files), or by default the latest submission of each student in the gradebook.
    Writes DIR/pairs.csv (a, b, similarity in [0, 1], most similar first) and DIR/report.html.
    The release's stubs and handout are starter code and never count as shared. It flags pairs
    for a person to review; it changes no grade."""
    from autograder.course import Course
    from autograder.service.settings import DATA_DIR
    from autograder.similarity import run_similarity

    course = Course.find(course_dir)
    asg = course.assignment(assignment)
    if submissions:
        result = run_similarity(asg, output_dir, uploads=submissions,
                                reference_set=reference_set, threshold=threshold,
                                details=details)
    else:
        from autograder.config import load_course
        from gradebook.store import Gradebook, database_url

        uploads_dir = (data_dir or course.root / DATA_DIR) / "uploads"
        with Gradebook.open(database_url(course.root, db), load_course(course.root)) as gb:
            result = run_similarity(asg, output_dir, gradebook=gb, uploads_dir=uploads_dir,
                                    reference_set=reference_set, threshold=threshold,
                                    details=details)
    docs = result.comparison.documents
    click.echo(f"{asg.label}: compared {sum(not d.reference for d in docs)} submissions"
               + (f" with {sum(d.reference for d in docs)} of earlier terms"
                  if any(d.reference for d in docs) else "")
               + f" in {result.elapsed_s:.1f} s; {len(result.flagged)} pair(s) at or above "
                 f"{threshold:.0%}")
    for p in result.flagged[:10]:
        click.echo(f"  {p.similarity:6.1%}  {p.a}  {p.b}")
    for u in result.unreadable:
        click.echo(f"  not compared: {u.name}: {u.reason}", err=True)
    click.echo(f"wrote {result.output / 'pairs.csv'} and {result.output / 'report.html'}")
