"""Build ``release/<name>/``, the student bundle, as an explicit pipeline of small steps.

Each step reads the assignment and returns the files it contributes, in memory; nothing is
written until every step has succeeded, so a mistake in a source leaves the previous release
untouched. The steps, top to bottom (:data:`RELEASE_STEPS`):

1. :func:`stub_modules`: ``solutions/<name>/<module>.py`` with solution regions replaced by stubs.
2. :func:`support_files`: the ``support_files`` of ``assignment.toml``, copied.
3. :func:`handout_notebook`: the handout notebook with solutions, hidden tests and outputs cleared.
4. :func:`public_tests`: everything under ``assignments/<name>/tests/``, copied.
5. :func:`assignment_config`: ``assignment.toml``, copied verbatim (``autograder check`` reads it).
6. :func:`student_readme`: a generated ``README.md``: what to implement, how to check it.

:func:`write_release` then writes them: byte for byte the same on every build (sorted, no
timestamps, ``\\n`` line endings in generated files), removing files that are no longer part of
the release and never writing outside the release folder. ``__pycache__``, ``*.pyc`` and
dot-files are never copied.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from autograder.authoring.errors import AuthoringError
from autograder.authoring.leaks import find_release_leaks
from autograder.authoring.notebook import build_handout
from autograder.authoring.regions import make_stub
from autograder.config import AssignmentConfig, load_course
from autograder.course import Assignment

__all__ = [
    "ReleaseFile", "RELEASE_STEPS", "plan_release", "write_release", "build_release",
    "release_differences", "find_release_leaks", "is_ignored",
]

# Build and cache litter: never released, never compared.
IGNORED_NAMES = frozenset({"__pycache__", ".pytest_cache", ".ipynb_checkpoints", ".DS_Store"})


@dataclass(frozen=True)
class ReleaseFile:
    """One file of the release: its path inside the release folder and its bytes."""

    path: str  # POSIX, relative to the release folder
    content: bytes
    origin: str  # what it was made from, for error messages


def is_ignored(name: str) -> bool:
    """Whether a file or folder name is litter that a release never holds."""
    return name in IGNORED_NAMES or name.endswith((".pyc", ".pyo")) or name.startswith(".")


def _relative(assignment: Assignment, path: Path) -> str:
    try:
        return str(path.relative_to(assignment.course_root))
    except ValueError:
        return str(path)


def _copy_tree(assignment: Assignment, root: Path, base: Path) -> list[ReleaseFile]:
    """Every non-ignored file under ``root`` (a file or a folder), at its path from ``base``."""
    if root.is_symlink():
        raise AuthoringError(f"{_relative(assignment, root)}: is a symbolic link; releases copy "
                             f"plain files only, so replace the link with a copy of the file")
    if root.is_file():
        rel = PurePosixPath(*root.relative_to(base).parts).as_posix()
        return [ReleaseFile(rel, root.read_bytes(), _relative(assignment, root))]
    files: list[ReleaseFile] = []
    for child in sorted(root.iterdir()):
        if not is_ignored(child.name):
            files += _copy_tree(assignment, child, base)
    return files


# --- the steps -----------------------------------------------------------------------------

def stub_modules(assignment: Assignment) -> list[ReleaseFile]:
    """One stub per student module, from ``solutions/<name>/<module>.py``."""
    files = []
    for module, reference in assignment.reference_files().items():
        if not reference.is_file():
            raise AuthoringError(f"{_relative(assignment, reference)}: reference module not found "
                                 f"(assignment.toml lists module {module!r}); write it, or remove "
                                 f"{module!r} from `modules`")
        stub = make_stub(reference.read_text(encoding="utf-8"), _relative(assignment, reference))
        files.append(ReleaseFile(f"{module}.py", stub.text.encode(), _relative(assignment, reference)))
    return files


def support_files(assignment: Assignment) -> list[ReleaseFile]:
    """The ``support_files`` named in assignment.toml (files or folders under assignments/<name>/)."""
    files = []
    public = assignment.public_dir.resolve()
    for entry in assignment.config.support_files:
        path = assignment.public_dir / entry
        if not path.resolve().is_relative_to(public):
            raise AuthoringError(f"{_relative(assignment, assignment.public_dir)}/assignment.toml: "
                                 f"support file {entry!r} is outside {assignment.public_dir.name}/; "
                                 f"copy it into the assignment folder and name it relative to it")
        if not path.exists():
            raise AuthoringError(f"{_relative(assignment, path)}: support file not found "
                                 f"(named in assignment.toml `support_files`); add it or remove "
                                 f"the entry")
        files += _copy_tree(assignment, path, assignment.public_dir)
    return files


def handout_notebook(assignment: Assignment) -> list[ReleaseFile]:
    """The handout notebook (``handout`` in assignment.toml), solutions and outputs cleared."""
    name = assignment.config.handout
    if not name:
        return []
    source = assignment.public_dir / name
    if not source.resolve().is_relative_to(assignment.public_dir.resolve()):
        raise AuthoringError(f"{_relative(assignment, assignment.public_dir)}/assignment.toml: "
                             f"handout {name!r} is outside {assignment.public_dir.name}/; move it there")
    text = build_handout(source)
    rel = PurePosixPath(*Path(name).parts).as_posix()
    return [ReleaseFile(rel, text.encode(), _relative(assignment, source))]


def public_tests(assignment: Assignment) -> list[ReleaseFile]:
    """Everything under ``assignments/<name>/tests/``: tests, conftest.py, helpers, data."""
    tests = assignment.public_tests_dir
    if not tests.is_dir():
        return []
    return _copy_tree(assignment, tests, assignment.public_dir)


def assignment_config(assignment: Assignment) -> list[ReleaseFile]:
    """``assignment.toml``, copied verbatim: the student's ``autograder check`` reads it. An
    exam's (or one variant's) is generated instead, without the exam password and the other
    variants: :func:`student_config_toml`."""
    path = assignment.config_path
    if assignment.variant is not None or assignment.config.exam is not None:
        text = student_config_toml(assignment.config)
        return [ReleaseFile("assignment.toml", text.encode(), f"generated from "
                                                             f"{_relative(assignment, path)}")]
    return [ReleaseFile("assignment.toml", path.read_bytes(), _relative(assignment, path))]


def _toml_value(value: object) -> str:
    """A TOML literal for the plain values a config holds (JSON's string escapes are TOML's)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise AuthoringError(f"cannot write {value!r} into a released assignment.toml")


def student_config_toml(cfg: AssignmentConfig) -> str:
    """The released ``assignment.toml`` of an exam or one variant: what ``autograder check``
    needs, with the exam's terms except its password, and no ``[variants]`` or ``[service]``."""
    data = cfg.model_dump(exclude={"variants": True, "service": True,
                                   "exam": {"password"}})
    lines = [f"# Generated by `autograder release {cfg.name}`; do not edit."]
    tables = []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append((key, value))
        elif value is not None:
            lines.append(f"{key} = {_toml_value(value)}")
    for key, table in tables:
        lines += ["", f"[{key}]"] + [f"{k} = {_toml_value(v)}" for k, v in table.items()
                                     if v is not None]
    return "\n".join(lines) + "\n"


def student_readme(assignment: Assignment) -> list[ReleaseFile]:
    """A generated ``README.md`` telling the student what to implement and how to check it."""
    cfg = assignment.config
    lines = [f"# {cfg.title or cfg.name}", "",
             f"Generated by `autograder release {cfg.name}`; it is rebuilt from the course "
             f"sources, so do not edit it.", "", "## What to implement", ""]
    module_level = False
    for module, reference in assignment.reference_files().items():
        stub = make_stub(reference.read_text(encoding="utf-8"), _relative(assignment, reference))
        module_level |= stub.module_level_placeholders
        lines.append(f"In `{module}.py`:")
        lines += [f"- `{name}`" for name in stub.todo] or ["- (nothing marked: read the handout)"]
        lines.append("")
    lines += ["Each stub raises `NotImplementedError` below a `# YOUR CODE HERE` comment: replace "
              "those lines with your implementation. Keep every function's name and signature."]
    if module_level:
        lines += ["Also replace each `...` placeholder outside the functions."]
    if cfg.handout:
        lines += ["", f"The handout `{cfg.handout}` explains each part; work through it in Jupyter."]
    lines += ["", "## Check your work", "", "From this folder, run:", "", "    autograder check", "",
              "It runs the public tests in `tests/` against your modules the way the grader does. "
              "Passing them is a good sign, not a guarantee: the grader also runs hidden tests.",
              "", "## Submit", "",
              "Submit " + ", ".join(f"`{m}.py`" for m in cfg.modules) + "."]
    if cfg.due is not None:
        # Name the zone: "23:59" alone leaves a student abroad guessing which 23:59.
        if cfg.due.tzinfo is None:
            zone = load_course(assignment.course_root).timezone
            lines += [f"Due: {cfg.due:%Y-%m-%d %H:%M} {zone} time."]
        else:
            lines += [f"Due: {cfg.due.isoformat(sep=' ', timespec='minutes')} (UTC offset shown)."]
    if cfg.exam is not None:
        # The exam's own terms; the student's page shows their end time, allowance included.
        lines += [f"Timed: {cfg.exam.duration_minutes:g} minutes from when you start, ending "
                  f"by the close of the exam window at the latest; work is judged on receipt."]
    if cfg.support_files:
        lines += ["", "Provided, do not edit or submit: "
                  + ", ".join(f"`{f}`" for f in cfg.support_files)
                  + " (the grader uses its own copy)."]
    return [ReleaseFile("README.md", ("\n".join(lines) + "\n").encode(), "generated")]


Step = Callable[[Assignment], list[ReleaseFile]]

RELEASE_STEPS: tuple[Step, ...] = (
    stub_modules, support_files, handout_notebook, public_tests, assignment_config, student_readme,
)


def plan_release(assignment: Assignment, steps: Iterable[Step] = RELEASE_STEPS) -> list[ReleaseFile]:
    """Run the steps and return the release's files, sorted by path; nothing is written.

    Two steps giving the same path with different bytes is an :class:`AuthoringError`.
    """
    by_path: dict[str, ReleaseFile] = {}
    for step in steps:
        for file in step(assignment):
            parts = PurePosixPath(file.path).parts
            if PurePosixPath(file.path).is_absolute() or ".." in parts or not parts:
                raise AuthoringError(f"{file.origin}: would be released at {file.path!r}, outside "
                                     f"the release folder; keep release paths relative")
            earlier = by_path.get(file.path)
            if earlier is not None and earlier.content != file.content:
                raise AuthoringError(f"{file.origin} and {earlier.origin} would both be released "
                                     f"as {file.path}; rename one of them")
            by_path.setdefault(file.path, file)
    return [by_path[p] for p in sorted(by_path)]


def _check_out_dir(assignment: Assignment, out_dir: Path) -> None:
    """Refuse a release folder that would wipe course sources when stale files are removed."""
    out = out_dir.resolve()
    protected = [assignment.course_root, assignment.public_dir, assignment.solution_dir]
    for place in protected:
        if place.resolve().is_relative_to(out):
            raise AuthoringError(f"{out_dir}: holds {place}, so cleaning it as a release folder "
                                 f"would delete course sources; choose an empty or release folder")
    if (out / ".git").exists():
        raise AuthoringError(f"{out_dir}: is a git checkout, not a release folder; choose another")


def _remove_stale(out_dir: Path, wanted: set[str]) -> None:
    """Delete everything under out_dir that is not a wanted file (links are removed, not followed)."""
    for dirpath, dirnames, filenames in os.walk(out_dir, topdown=False):
        here = Path(dirpath)
        for name in filenames:
            path = here / name
            if path.is_symlink() or path.relative_to(out_dir).as_posix() not in wanted:
                path.unlink()
        for name in dirnames:
            path = here / name
            if path.is_symlink():
                path.unlink()
            elif not any(path.iterdir()):
                path.rmdir()


def write_release(files: list[ReleaseFile], out_dir: Path) -> list[Path]:
    """Make ``out_dir`` hold exactly ``files``; returns their paths, sorted."""
    out_dir = Path(out_dir)
    if out_dir.is_symlink() or (out_dir.exists() and not out_dir.is_dir()):
        raise AuthoringError(f"{out_dir}: not a folder; remove it and release again")
    out_dir.mkdir(parents=True, exist_ok=True)
    root = out_dir.resolve()
    _remove_stale(out_dir, {f.path for f in files})
    written = []
    for file in files:
        target = out_dir.joinpath(*PurePosixPath(file.path).parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.resolve().is_relative_to(root):  # pragma: no cover - links were removed
            raise AuthoringError(f"{target}: resolves outside {out_dir}; refusing to write it")
        if not target.is_file() or target.read_bytes() != file.content:
            target.write_bytes(file.content)
        written.append(target)
    return sorted(written)


def build_release(assignment: Assignment, out_dir: Path | None = None) -> list[Path]:
    """Build the student release of ``assignment`` into ``out_dir`` (default
    ``release/<name>/``) and return the written paths, sorted.

    Byte-identical on every rebuild; files no longer part of the release are removed. Raises
    :class:`AuthoringError` (a :class:`~autograder.config.ConfigError`) naming the file and the fix.
    """
    out_dir = Path(out_dir) if out_dir is not None else assignment.release_dir
    _check_out_dir(assignment, out_dir)
    if assignment.variant_names():  # an exam: every variant, in variants/<v>/
        from autograder.authoring.variants import plan_variant_releases
        return write_release(plan_variant_releases(assignment), out_dir)
    return write_release(plan_release(assignment), out_dir)


def _tree(root: Path) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    if not root.is_dir():
        return found
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not is_ignored(d))
        for name in filenames:
            if not is_ignored(name):
                path = Path(dirpath, name)
                found[path.relative_to(root).as_posix()] = path.read_bytes()
    return found


def _first_difference(a: bytes, b: bytes) -> str:
    a_lines, b_lines = a.split(b"\n"), b.split(b"\n")
    for number, (x, y) in enumerate(zip(a_lines, b_lines), start=1):
        if x != y:
            return f"first difference at line {number}"
    return f"first difference at line {min(len(a_lines), len(b_lines)) + 1}"


def release_differences(assignment: Assignment) -> list[str]:
    """Rebuild into a temporary folder and compare with the committed ``release/<name>/`` byte
    for byte: one line per missing, extra or changed file; ``[]`` when up to date. Ignored
    litter (``__pycache__``, ``*.pyc``, dot-files) in the committed folder is not compared."""
    committed_dir = assignment.release_dir
    shown = _relative(assignment, committed_dir)
    fix = f"run `autograder release {assignment.name}` and commit the result"
    with tempfile.TemporaryDirectory(prefix="autograder-release-") as tmp:
        build_release(assignment, Path(tmp) / assignment.name)
        fresh = _tree(Path(tmp) / assignment.name)
    if not committed_dir.is_dir():
        return [f"{shown}/: missing; {fix}"]
    committed = _tree(committed_dir)
    problems = []
    for path in sorted(set(fresh) | set(committed)):
        if path not in committed:
            problems.append(f"{shown}/{path}: missing (a fresh build has it); {fix}")
        elif path not in fresh:
            problems.append(f"{shown}/{path}: extra (no longer part of the release); {fix}")
        elif fresh[path] != committed[path]:
            problems.append(f"{shown}/{path}: differs from a fresh build "
                            f"({_first_difference(fresh[path], committed[path])}); {fix}")
    return problems

