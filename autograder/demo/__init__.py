"""``autograder demo``: the whole slice on the embedded defaults, in a temporary course.

It copies the softmax assignment (sources and solutions) into a temporary course directory,
builds the student release, grades the course's sample submissions (a correct submission, a
buggy one, a zipped folder, a notebook, the untouched stub and a malicious one) in the process
sandbox, prints the score table and writes one results.json per submission.

The samples are staff-only course content, kept with the solutions
(``solutions/softmax/samples/`` of the course repository the demo runs from), never inside this
package: a correct sample is a full solution, and a student who installs the package must not
get one.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path

ASSIGNMENT = "softmax"


def samples_dir(course: Path) -> Path:
    """The sample submissions of the demo's assignment, in a course repository."""
    return course / "solutions" / ASSIGNMENT / "samples"


def source_course() -> Path:
    """The course repository the demo copies from: the one containing this checkout."""
    from autograder.course import Course, CourseNotFound

    repo = Path(__file__).resolve().parents[2]
    for candidate in (repo, None):
        try:
            course = Course.find(candidate)
        except CourseNotFound:
            continue
        if (course.root / "solutions" / ASSIGNMENT).is_dir():
            return course.root
    raise FileNotFoundError(f"the demo needs assignments/{ASSIGNMENT} and solutions/{ASSIGNMENT}; "
                            f"run it from a checkout of the course repository")


def build_demo_course(dest: Path) -> Path:
    """Copy the softmax assignment into ``dest`` (a new course directory)."""
    src = source_course()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for part in ("assignments", "solutions"):
        shutil.copytree(src / part / ASSIGNMENT, dest / part / ASSIGNMENT, ignore=ignore)
    if not samples_dir(src).is_dir():
        raise FileNotFoundError(f"the demo needs the sample submissions in "
                                f"{samples_dir(src)}; run it from a checkout of the course "
                                f"repository")
    if (src / "course.toml").is_file():
        shutil.copy(src / "course.toml", dest / "course.toml")
    else:
        (dest / "course.toml").write_text('name = "demo"\n')
    return dest


def demo_uploads(course: Path, workdir: Path) -> list[Path]:
    """The sample submissions, in the forms students send them."""
    samples = samples_dir(course)
    uploads = workdir / "uploads"
    uploads.mkdir(parents=True)
    out = []
    for name in ("correct.py", "buggy.py", "malicious.py"):
        target = uploads / name
        shutil.copy(samples / name, target)
        out.append(target)
    zipped = uploads / "zipped_folder.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.write(samples / "correct.py", f"my_homework/{ASSIGNMENT}.py")
    out.append(zipped)
    if (samples / "notebook.ipynb").is_file():
        nb = uploads / "notebook.ipynb"
        shutil.copy(samples / "notebook.ipynb", nb)
        out.append(nb)
    stub = uploads / "untouched_stub.py"
    shutil.copy(course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.py", stub)
    out.append(stub)
    return out


def run_demo(output: Path, keep: Path | None = None) -> list:
    """Release, grade the samples, and return their results (written under ``output``)."""
    from rich.console import Console
    from rich.progress import Progress

    from autograder.authoring.release import build_release
    from autograder.course import Course
    from autograder.harness.grader import grade_uploads
    from autograder.report import score_table, warn_degraded

    console = Console()
    with tempfile.TemporaryDirectory(prefix="autograder-demo-") as tmp:
        course_dir = build_demo_course(Path(tmp) / "course")
        assignment = Course(course_dir).assignment(ASSIGNMENT)
        written = build_release(assignment)
        console.print(f"[bold]1. release[/] built release/{ASSIGNMENT}/ "
                      f"({len(written)} files: stubs, handout, public tests)")
        uploads = demo_uploads(course_dir, Path(tmp))
        console.print(f"[bold]2. grade[/] {len(uploads)} sample submissions in the process "
                      f"sandbox (public and hidden tests)")
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("grading", total=len(uploads))

            def done(result):
                result.write(output / result.submission / "results.json")
                progress.advance(task)

            results = grade_uploads(assignment, uploads, on_result=done)
        warn_degraded(console, results)
        console.print(score_table(results, title=f"{ASSIGNMENT}: sample submissions"))
        malicious = next((r for r in results if r.submission == "malicious"), None)
        if malicious is not None:
            console.print("[bold]3. the malicious sample[/] tried to forge results, read the "
                          "solution, patch numpy and exit early; what it got:")
            for t in malicious.tests[:3]:
                console.print(f"   {t.name}: {t.outcome}: {t.output.splitlines()[0][:100]}",
                              markup=False, highlight=False)
        console.print(f"[bold]4. results[/] one Gradescope-style results.json per submission "
                      f"in {output}/")
        if keep is not None:
            shutil.copytree(course_dir, keep, dirs_exist_ok=True)
            console.print(f"the demo course is kept in {keep}")
    return results
