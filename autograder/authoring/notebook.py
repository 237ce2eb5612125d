"""The student handout notebook, made with nbgrader's own preprocessors.

The handout source (``assignments/<name>/<handout>``) may hold nbgrader solution cells and
``### BEGIN SOLUTION`` regions, ``### BEGIN HIDDEN TESTS`` regions and ``### BEGIN MARK SCHEME``
regions. The handout is the source run through, in order:

1. ``ClearSolutions``: regions become nbgrader's code stub (``# YOUR CODE HERE`` and a
   ``raise NotImplementedError``) or ``YOUR ANSWER HERE`` in Markdown; a cell marked as a
   solution cell without a region is replaced whole.
2. ``ClearHiddenTests``: hidden test regions are removed.
3. ``ClearMarkScheme``: marking-scheme regions are removed.
4. ``ClearOutput``: outputs and execution counts are removed.

``enforce_metadata`` is off for all three: nbgrader needs the cell metadata to give cells ids in
its own gradebook, but students submit modules here and the notebook is never graded, so a region
in a cell without nbgrader metadata is simply cleared (refusing it would only push authors to
publish the solution by mistake). nbgrader's ``LockCells`` and ``ComputeChecksums`` serve that
gradebook too and are not used.
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path

import nbformat
from nbformat.validator import iter_validate
from nbgrader.preprocessors import ClearHiddenTests, ClearMarkScheme, ClearOutput, ClearSolutions

from autograder.authoring.errors import AuthoringError

__all__ = ["build_handout", "read_notebook", "handout_steps", "solution_cell_lines"]

# nbgrader's stubs, with the Python one saying what to do (the other languages keep nbgrader's).
CODE_STUBS = {
    **ClearSolutions.class_traits()["code_stub"].default(),
    "python": '# YOUR CODE HERE\nraise NotImplementedError("replace this line with your answer")',
}

_quiet = logging.getLogger("autograder.authoring.nbgrader")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


def handout_steps() -> list:
    """The nbgrader preprocessors that make a handout, in the order they run."""
    return [
        ClearSolutions(code_stub=CODE_STUBS, enforce_metadata=False, log=_quiet),
        ClearHiddenTests(enforce_metadata=False, log=_quiet),
        ClearMarkScheme(enforce_metadata=False, log=_quiet),
        ClearOutput(log=_quiet),
    ]


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """Read and validate a notebook (nbformat 4), raising :class:`AuthoringError` naming the file
    and the problem. Cells of a 4.5+ notebook that lack an id get ``cell-<index>`` (nbformat
    would invent a random one, which would make releases differ between builds)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AuthoringError(f"{path}: handout notebook not found; create it or fix `handout` "
                             f"in assignment.toml") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise AuthoringError(f"{path}: not a notebook (invalid JSON: {e}); open and save it in "
                             f"Jupyter, or restore it from version control") from None
    if not isinstance(data, dict) or data.get("nbformat") != 4 or not isinstance(data.get("cells"), list):
        raise AuthoringError(f"{path}: not an nbformat 4 notebook (need a JSON object with "
                             f"\"nbformat\": 4 and a \"cells\" list); save it with Jupyter 4+")
    if data.get("nbformat_minor", 0) >= 5:
        for index, cell in enumerate(data["cells"]):
            if isinstance(cell, dict) and "id" not in cell:
                cell["id"] = f"cell-{index}"
    errors = sorted(iter_validate(data), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(top level)"
        raise AuthoringError(f"{path}: invalid notebook at {where}: {first.message}"
                             f"{f' (and {len(errors) - 1} more problems)' if len(errors) > 1 else ''}"
                             f"; fix it in Jupyter or by hand")
    return nbformat.reads(json.dumps(data), as_version=4)


def _failing_cell(step, nb: nbformat.NotebookNode, resources: dict) -> int | None:
    """The index of the first cell the step refuses (to point the author at it)."""
    probe = copy.deepcopy(nb)
    for index, cell in enumerate(probe.cells):
        try:
            step.preprocess_cell(cell, dict(resources), index)
        except (RuntimeError, ValueError):
            return index
    return None


def _run_step(step, nb: nbformat.NotebookNode, path: Path) -> nbformat.NotebookNode:
    resources: dict = {"language": nb.metadata.get("kernelspec", {}).get("language", "python")}
    try:
        nb, _ = step.preprocess(nb, resources)
    except (RuntimeError, ValueError) as e:
        index = _failing_cell(step, nb, resources)
        where = f"cell {index} " if index is not None else ""
        raise AuthoringError(f"{path}: {where}({type(step).__name__}): {e}; balance each "
                             f"`### BEGIN ...` with its `### END ...` in the same cell, without "
                             f"nesting") from None
    return nb


def build_handout(source_path: Path) -> str:
    """The student handout of a notebook source, serialized deterministically (nbformat's sorted
    JSON, ``\\n`` line endings, a trailing newline) and validated.

    Raises :class:`AuthoringError` naming the file and the problem for a malformed notebook or
    unbalanced regions.
    """
    source_path = Path(source_path)
    nb = read_notebook(source_path)
    for step in handout_steps():
        nb = _run_step(step, nb, source_path)
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as e:  # pragma: no cover - nbgrader keeps notebooks valid
        raise AuthoringError(f"{source_path}: the handout is not a valid notebook: {e.message}") from None
    text = nbformat.writes(nb)
    return text.replace("\r\n", "\n").rstrip("\n") + "\n"


def solution_cell_lines(source_path: Path) -> list[tuple[int, str]]:
    """(cell index, stripped text) of every code line the handout hides: lines inside
    BEGIN/END SOLUTION, HIDDEN TESTS and MARK SCHEME regions, and whole solution cells that hold
    no region (nbgrader replaces them whole). Comments and blank lines are left out."""
    nb = read_notebook(Path(source_path))
    hidden: list[tuple[int, str]] = []
    for index, cell in enumerate(nb.cells):
        lines = cell.source.split("\n")
        has_region = any(_region_kind(line, "BEGIN") for line in lines)
        is_solution = bool(cell.metadata.get("nbgrader", {}).get("solution", False))
        inside = is_solution and not has_region
        for line in lines:
            if _region_kind(line, "BEGIN"):
                inside = True
                continue
            if _region_kind(line, "END"):
                inside = False
                continue
            text = line.strip()
            if inside and text and not text.startswith("#"):
                hidden.append((index, text))
    return hidden


def _region_kind(line: str, edge: str = "BEGIN") -> bool:
    return any(f"{edge} {kind}" in line for kind in ("SOLUTION", "HIDDEN TESTS", "MARK SCHEME"))
