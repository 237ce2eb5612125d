"""Mutants: the common mistakes an assignment's tests must catch, and how ``verify`` builds them.

A mutant is a file ``solutions/<name>/mutants/<mistake>.py``. Usually it holds only the
function(s) the mistake is in (and the imports they need), under a module docstring that names
the mistake::

    \"\"\"The gradient is not divided by N: dx is the gradient of the summed loss.\"\"\"

    import numpy as np


    def softmax_loss(x, y):
        ...

``verify`` *splices* it into the reference: each top-level ``def`` or ``class`` of the mutant
replaces the one of the same name in the reference module (found with :mod:`ast`, replaced by
line range), so everything the mutant does not name is the reference, and the test results
show this one mistake only. Its imports are added above the reference's first definition.

Two header lines (comments before the docstring) change that:

* ``# mutant: module=<name>``: the mutant is of another module of the assignment (default: the
  first of ``modules`` in assignment.toml);
* ``# mutant: whole-module``: the file is the whole module, used as it is. Keep this for
  mistakes at module level (a constant, a module-level statement), where there is no function
  to replace.

A mutant that cannot be read or spliced (a syntax error, a name the reference does not define, a
module-level statement in a function mutant) is *broken*: :class:`MutantError` says which file,
which line and what to write instead, and ``verify`` fails on it rather than counting it as
caught.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from autograder.errors import UserError

_HEADER = re.compile(r"#\s*mutant\s*:\s*(.*?)\s*$")
_MODULE_OPTION = re.compile(r"module\s*=\s*([A-Za-z_][A-Za-z0-9_]*)$")
_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


class MutantError(UserError):
    """A mutant file cannot be read or spliced into the reference: the mutant is broken."""


@dataclass(frozen=True)
class Mutant:
    """One mutant file, read and checked (not yet spliced)."""

    name: str            # the file's stem: the mistake's name
    path: Path
    module: str          # the assignment module it stands in for
    whole_module: bool   # the file is the whole module (``# mutant: whole-module``)
    description: str     # the docstring: the mistake, in a sentence a TA reads
    source: str


def read_mutant(path: Path, modules: tuple[str, ...]) -> Mutant:
    """Read a mutant file and its header; raise :class:`MutantError` when it is not usable.

    ``modules`` are the assignment's modules (``modules`` in assignment.toml); the mutant stands
    in for the first unless its header names another."""
    where = path.name
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise MutantError(f"{where}: cannot be read ({e})") from None
    module, whole_module = modules[0], False
    for number, line in enumerate(source.splitlines(), start=1):
        stripped = line.strip()
        if not stripped.startswith("#"):
            break  # the header is the comment lines at the top
        match = _HEADER.match(stripped)
        if match is None:
            continue
        option = match.group(1)
        module_option = _MODULE_OPTION.match(option)
        if option == "whole-module":
            whole_module = True
        elif module_option is not None:
            module = module_option.group(1)
            if module not in modules:
                raise MutantError(f"{where}:{number}: `# mutant: module={module}` names a module "
                                  f"the assignment does not have; use one of "
                                  f"{', '.join(modules)} (modules in assignment.toml)")
        else:
            raise MutantError(f"{where}:{number}: unknown header `{stripped}`; write "
                              f"`# mutant: whole-module` or `# mutant: module=<name>`")
    tree = _parse(source, where)
    description = (ast.get_docstring(tree) or "").strip()
    if not description:
        raise MutantError(f"{where}: start the file with a docstring that names the mistake in "
                          f"a sentence (what the code does wrong), e.g. "
                          f"\"\"\"The gradient is not divided by N.\"\"\"")
    return Mutant(path.stem, path, module, whole_module, description, source)


def _parse(source: str, where: str) -> ast.Module:
    try:
        return ast.parse(source, filename=where)
    except SyntaxError as e:
        raise MutantError(f"{where}:{e.lineno}: syntax error: {e.msg}") from None


def _first_line(node: ast.stmt) -> int:
    """The first line of a definition, its decorators included."""
    decorators = getattr(node, "decorator_list", [])
    return min([node.lineno, *(d.lineno for d in decorators)])


def _is_docstring(node: ast.stmt) -> bool:
    return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str))


def splice(reference: str, mutant: str, *, where: str, module: str) -> str:
    """The reference module's source with the mutant's definitions in place of its own.

    Each top-level ``def``/``class`` of ``mutant`` replaces the reference's definition of the
    same name (its whole line range, decorators included); the mutant's imports go above the
    reference's first definition. ``where`` names the mutant file and ``module`` the reference
    module in messages. Raises :class:`MutantError` when the mutant defines a name the reference
    lacks, holds a module-level statement other than imports, or defines nothing."""
    mutant_tree = _parse(mutant, where)
    reference_tree = ast.parse(reference)  # the reference itself passed every other check
    mutant_lines = mutant.splitlines(keepends=True)

    definitions: dict[str, ast.stmt] = {}
    for node in reference_tree.body:
        if isinstance(node, _DEFINITIONS):
            definitions[node.name] = node  # a later definition wins, as in Python

    imports: list[str] = []
    replacements: list[tuple[ast.stmt, str]] = []
    seen: set[str] = set()
    for index, node in enumerate(mutant_tree.body):
        if index == 0 and _is_docstring(node):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imports.append(ast.get_source_segment(mutant, node) or ast.unparse(node))
            continue
        if not isinstance(node, _DEFINITIONS):
            raise MutantError(
                f"{where}:{node.lineno}: a module-level statement "
                f"(`{ast.unparse(node).splitlines()[0][:60]}`); a mutant holds only the "
                f"functions it replaces and their imports. Put the mistake inside a function, "
                f"or make the file a whole module with the line `# mutant: whole-module` at the "
                f"top")
        if node.name not in definitions:
            known = ", ".join(sorted(definitions)) or "nothing"
            raise MutantError(
                f"{where}:{node.lineno}: defines {node.name}, which {module}.py does not define "
                f"(it defines {known}); a mutant replaces definitions of the reference, so "
                f"check the name, or make the file a whole module with the line "
                f"`# mutant: whole-module` at the top")
        if node.name in seen:
            raise MutantError(f"{where}:{node.lineno}: defines {node.name} twice")
        seen.add(node.name)
        text = "".join(mutant_lines[_first_line(node) - 1:node.end_lineno])
        replacements.append((definitions[node.name], text))
    if not replacements:
        raise MutantError(f"{where}: replaces no function of {module}.py; write the function(s) "
                          f"with the mistake (same names as in the reference)")

    lines = reference.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    # Bottom-up, so the line numbers of the replacements still to do stay valid.
    for target, text in sorted(replacements, key=lambda r: _first_line(r[0]), reverse=True):
        if not text.endswith("\n"):
            text += "\n"
        lines[_first_line(target) - 1:target.end_lineno] = [text]
    if imports:
        first_definition = min(_first_line(n) for n in definitions.values())
        lines[first_definition - 1:first_definition - 1] = [
            "# imports of the mutant\n", *(i + "\n" for i in imports), "\n\n"]
    spliced = "".join(lines)
    try:
        compile(spliced, f"{module}.py with {where}", "exec")
    except SyntaxError as e:  # e.g. a def indented under the mutant's own if-block
        raise MutantError(f"{where}: spliced into {module}.py, it does not compile: "
                          f"{e.msg} (line {e.lineno} of the result)") from None
    return spliced


def mutant_modules(mutant: Mutant, references: dict[str, str]) -> dict[str, str]:
    """The modules of the submission that stands for ``mutant``: the references, with the
    mutant's module replaced (whole) or spliced. Raises :class:`MutantError` when broken."""
    if mutant.whole_module:
        try:
            compile(mutant.source, mutant.path.name, "exec")
        except SyntaxError as e:
            raise MutantError(f"{mutant.path.name}:{e.lineno}: syntax error: {e.msg}") from None
        return {**references, mutant.module: mutant.source}
    return {**references, mutant.module: splice(references[mutant.module], mutant.source,
                                                where=mutant.path.name, module=mutant.module)}
