"""Find staff-only material in a built release: solution lines, hidden tests, mutants.

The rule for solution lines (what counts as a leak):

* The secrets are the code lines the stubs hide: every non-blank, non-comment line inside a
  solution region of ``solutions/<name>/*.py`` (and the code of ``# SOLUTION`` lines), and every
  code line of the handout source that the handout clears (solution, hidden-test and
  mark-scheme regions, and whole solution cells).
* Lines are compared with all whitespace removed, so re-indenting or re-spacing a pasted line
  does not hide it; a secret matches when it is contained in a release line (a solution line
  pasted into a comment is still found). For ``target = value``, ``return value`` and
  ``yield value`` lines whose value is a formula (it holds an operator or an index) the value
  alone is a secret too, so ``expected = <the formula>`` in a public test is found whatever the
  target is called.
* A secret is ignored when it is short (fewer than :data:`MIN_SECRET_CHARS` characters without
  whitespace: ``return loss, dx``, ``N = x.shape[0]``, ``np.exp(shifted)``, ``pass``, ``)`` say
  nothing about the solution and turn up in honest tests), or when it is public by design: it
  also appears outside the regions (in a line of the stub, a docstring giving the formula
  included, or of the handout), which the release publishes anyway.

Hidden tests: a hidden test file's name (``solutions/<name>/tests/*``) as a release file or
mentioned in one, a hidden test file's bytes anywhere in the release, and a hidden test
function's name (``def test_...`` / ``class Test...``) mentioned in a release file are leaks,
except names and files that the public tests share (``conftest.py``, a public test of the same
name). Mutants (``solutions/<name>/mutants/*.py``) must not appear by name or content, and no
release file may be a reference module copied whole.
"""

from __future__ import annotations

import ast
import json
import os
import re
from pathlib import Path

from autograder.authoring.errors import AuthoringError
from autograder.authoring.notebook import build_handout, solution_cell_lines
from autograder.authoring.regions import solution_region_lines, strip_solutions
from autograder.course import Assignment

__all__ = ["MIN_SECRET_CHARS", "find_release_leaks"]

MIN_SECRET_CHARS = 16

# Hidden-test file names that say nothing about the tests (their content is still checked).
_GENERIC_NAMES = frozenset({"conftest.py", "__init__.py"})


def _squash(text: str) -> str:
    return "".join(text.split())


def _is_formula(node: ast.AST) -> bool:
    """Whether an expression computes something (an operator or an index), as opposed to a
    plain call such as ``np.asarray(W, dtype=np.float64)`` that honest tests write too."""
    return any(isinstance(n, (ast.BinOp, ast.UnaryOp, ast.Compare, ast.BoolOp, ast.Subscript))
               for n in ast.walk(node))


def _secret_forms(text: str) -> list[str]:
    """The squashed line, and for ``target = value`` / ``return value`` / ``yield value`` whose
    value is a formula also the squashed value alone (so renaming the target does not hide a
    pasted formula)."""
    forms = [_squash(text)]
    try:
        tree = ast.parse(text.strip())
    except SyntaxError:
        return forms
    if len(tree.body) == 1:
        node = tree.body[0]
        value = getattr(node, "value", None)
        if isinstance(node, ast.Expr) and isinstance(value, (ast.Yield, ast.YieldFrom, ast.Await)):
            value = value.value
        if (isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Return, ast.Expr))
                and value is not None and _is_formula(value)):
            segment = ast.get_source_segment(text.strip(), value)
            if segment:
                forms.append(_squash(segment))
    return list(dict.fromkeys(forms))


def _files(root: Path) -> dict[str, Path]:
    """Every file under root (relative POSIX path -> path), caches and bytecode left out."""
    found: dict[str, Path] = {}
    if not root.is_dir():
        return found
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in ("__pycache__", ".pytest_cache"))
        for name in filenames:
            if not name.endswith((".pyc", ".pyo")):
                path = Path(dirpath, name)
                found[path.relative_to(root).as_posix()] = path
    return found


def _text_lines(path: Path) -> list[tuple[int, str]] | None:
    """(line number, text) of a release file; for a notebook, every string in its JSON (cell
    sources and outputs) split into lines, numbered in reading order. None for binary files."""
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None
    if path.suffix == ".ipynb":
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return list(enumerate(text.split("\n"), start=1))
        strings: list[str] = []

        def walk(node: object) -> None:
            if isinstance(node, str):
                strings.extend(node.split("\n"))
            elif isinstance(node, list):
                for item in node:
                    walk(item)
            elif isinstance(node, dict):
                for key in sorted(node):
                    walk(node[key])

        walk(data)
        return list(enumerate(strings, start=1))
    return list(enumerate(text.split("\n"), start=1))


def _test_names(path: Path) -> set[str]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError):
        return set()
    return {node.name for node in ast.walk(tree)
            if (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"))
            or (isinstance(node, ast.ClassDef) and node.name.startswith("Test"))}


class _Secrets:
    """What must not appear in the release, with where each secret comes from."""

    def __init__(self, assignment: Assignment) -> None:
        self.assignment = assignment
        self.lines: dict[str, str] = {}           # squashed line -> "file:line: text"
        self.public_lines: set[str] = set()       # squashed lines published on purpose
        self.whole_files: dict[bytes, str] = {}   # content -> what it is
        self.file_names: dict[str, str] = {}      # file name -> what it is
        self.words: dict[str, str] = {}           # identifier -> what it is

    def rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.assignment.course_root))
        except ValueError:
            return str(path)

    def add_line(self, text: str, where: str) -> None:
        for form in _secret_forms(text):
            if len(form) >= MIN_SECRET_CHARS:
                self.lines.setdefault(form, f"{where}: {text}")

    def collect(self) -> None:
        a = self.assignment
        for reference in sorted(a.solution_dir.glob("*.py")):
            source = reference.read_text(encoding="utf-8")
            hidden = solution_region_lines(source, self.rel(reference))
            for number, text in hidden:
                self.add_line(text, f"{self.rel(reference)}:{number}")
            for line in strip_solutions(source, self.rel(reference)).split("\n"):
                self.public_lines.update(_secret_forms(line))
            if hidden:  # a module without regions is published whole on purpose
                self.whole_files[reference.read_bytes()] = f"reference module {self.rel(reference)}"
        handout = a.config.handout
        if handout and (a.public_dir / handout).is_file():
            source = a.public_dir / handout
            for cell, text in solution_cell_lines(source):
                self.add_line(text, f"{self.rel(source)} cell {cell}")
            for cell in json.loads(build_handout(source))["cells"]:
                for line in "".join(cell["source"]).split("\n"):
                    self.public_lines.update(_secret_forms(line))
        published = "\n".join(sorted(self.public_lines))
        self.lines = {k: v for k, v in self.lines.items() if k not in published}

        public_tests = _files(a.public_tests_dir)
        public_names = {Path(p).name for p in public_tests}
        public_contents = {p.read_bytes() for p in public_tests.values()}
        public_test_names: set[str] = set()
        for path in public_tests.values():
            if path.suffix == ".py":
                public_test_names |= _test_names(path)
        for rel, path in sorted(_files(a.hidden_tests_dir).items()):
            what = f"hidden test file {self.rel(path)}"
            if path.name not in public_names and path.name not in _GENERIC_NAMES:
                self.file_names[path.name] = what
            content = path.read_bytes()
            if content.strip() and content not in public_contents:
                self.whole_files.setdefault(content, what)
            if path.suffix == ".py":
                for name in sorted(_test_names(path) - public_test_names):
                    self.words.setdefault(name, f"hidden test {name} ({self.rel(path)})")
        for path in sorted(a.mutants_dir.glob("*.py")) if a.mutants_dir.is_dir() else []:
            what = f"mutant {self.rel(path)}"
            if path.stem not in a.config.modules:
                self.file_names[path.name] = what
            if path.read_bytes().strip():
                self.whole_files.setdefault(path.read_bytes(), what)


def find_release_leaks(assignment: Assignment, release_dir: Path | None = None) -> list[str]:
    """Every staff-only thing found in the release (default ``release/<name>/``), one message
    each, ``[]`` when clean. See the module docstring for the rule."""
    release_dir = Path(release_dir) if release_dir is not None else assignment.release_dir
    secrets = _Secrets(assignment)
    shown = secrets.rel(release_dir)
    if not release_dir.is_dir():
        return [f"{shown}/: no release to check; run `autograder release {assignment.name}` first"]
    try:
        secrets.collect()
    except AuthoringError as e:
        return [f"cannot check for leaks: {e}"]
    words = re.compile(r"\b(" + "|".join(map(re.escape, sorted(secrets.words))) + r")\b") if secrets.words else None
    problems: list[str] = []
    for rel, path in sorted(_files(release_dir).items()):
        where = f"{shown}/{rel}"
        if path.name in secrets.file_names:
            problems.append(f"{where}: is {secrets.file_names[path.name]}; staff-only files must "
                            f"not be released: move it out of assignments/{assignment.name}/")
        content = path.read_bytes()
        if content in secrets.whole_files:
            problems.append(f"{where}: is a copy of {secrets.whole_files[content]}; remove it from "
                            f"the sources the release copies")
            continue
        lines = _text_lines(path)
        if lines is None:
            continue
        for number, text in lines:
            squashed = _squash(text)
            origins = dict.fromkeys(o for secret, o in secrets.lines.items() if secret in squashed)
            for origin in origins:
                problems.append(f"{where}:{number}: holds a solution line ({origin}); remove "
                                f"it from the release's source and rebuild")
            for name, what in secrets.file_names.items():
                if re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", text):
                    problems.append(f"{where}:{number}: names {what}; remove the mention")
            if words is not None:
                for name in sorted(set(words.findall(text))):
                    problems.append(f"{where}:{number}: names {secrets.words[name]}; remove the "
                                    f"mention or rename the hidden test")
    return problems
