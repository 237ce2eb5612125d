r'''Solution regions in a reference module, and the student stub made by removing them.

Markers understood (each alone on its line unless said otherwise):

* ``# BEGIN SOLUTION`` ... ``# END SOLUTION`` (also nbgrader's ``### BEGIN SOLUTION`` /
  ``### END SOLUTION``): the region becomes, at the marker's indentation::

      # YOUR CODE HERE
      raise NotImplementedError("softmax_loss: replace this line with your implementation")

  naming the enclosing function or method (``Model.forward``, ``outer.inner``).
* ``# BEGIN SOLUTION NO PROMPT`` ... ``# END SOLUTION`` (otter-grader): the region is removed
  and nothing replaces it; pair it with a prompt block to give the student a starting point.
* ``<code>  # SOLUTION`` (otter-grader): the line becomes ``...``; when it is an assignment only
  the value is replaced (``w = np.zeros(3)  # SOLUTION`` becomes ``w = ...``).
  ``<code>  # SOLUTION NO PROMPT`` removes the line.
* Prompt blocks (otter-grader), visible only in the stub. The marker lines are dropped:

  - ``""" # BEGIN PROMPT`` ... ``""" # END PROMPT`` (or ``"""; # END PROMPT``): a string
    that does nothing in the reference; its lines appear verbatim in the stub.
  - ``# BEGIN PROMPT`` ... ``# END PROMPT`` (bare comments): the lines between are commented
    out in the reference and uncommented in the stub (one ``#`` and one space removed after
    the indentation; write ``# # note`` to keep a comment in the stub).

Nothing else is changed: signatures, docstrings and the code outside regions are kept byte for
byte. The stub must compile, and every ``raise`` stub must sit inside a function (a ``raise``
at module or class level would make the module fail to import); otherwise
:class:`AuthoringError` says which line and what to write instead.
'''

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from autograder.authoring.errors import AuthoringError

__all__ = ["AuthoringError", "Stub", "make_stub", "strip_solutions", "solution_region_lines"]

STUB_COMMENT = "# YOUR CODE HERE"
STUB_MESSAGE = "{name}: replace this line with your implementation"

_BEGIN = re.compile(r"^(?P<indent>[ \t]*)#+[ \t]*BEGIN SOLUTION(?P<no_prompt>[ \t]+NO PROMPT)?[ \t]*$")
_END = re.compile(r"^[ \t]*#+[ \t]*END SOLUTION[ \t]*$")
_SOLUTION_LINE = re.compile(r"^(?P<code>.*?)[ \t]*#[ \t]*SOLUTION(?P<no_prompt>[ \t]+NO PROMPT)?[ \t]*$")
_BEGIN_PROMPT = re.compile(r"^(?P<left>.*?)#[ \t]*BEGIN PROMPT[ \t]*$")
_END_PROMPT = re.compile(r"^(?P<left>.*?)#[ \t]*END PROMPT[ \t]*$")
_MENTIONS_MARKER = re.compile(r"\b(BEGIN|END) (SOLUTION|PROMPT)\b")
_STRING_OPENERS = ('"""', "'''")
_PLACEHOLDER = "__autograder_enclosing_function__"

_BEGIN_HELP = "write `# BEGIN SOLUTION` (or `### BEGIN SOLUTION`) alone on its line"


@dataclass(frozen=True)
class Stub:
    """A student stub: its text, and the functions (qualified names) the student must write."""

    text: str
    todo: tuple[str, ...]
    # True when some `...` placeholders (otter `# SOLUTION` lines) sit outside any function.
    module_level_placeholders: bool = False


@dataclass
class _Scan:
    path: str
    out: list[str] = field(default_factory=list)
    # For each output line, the 1-based source line it came from.
    origin: list[int] = field(default_factory=list)
    # Output line numbers (1-based) of `raise` stubs and of `...` replacements.
    raise_lines: list[int] = field(default_factory=list)
    placeholder_lines: list[int] = field(default_factory=list)
    # (stub line just before, indentation width) of each NO PROMPT region, to name its function.
    silent_regions: list[tuple[int, int]] = field(default_factory=list)
    # (source line, stripped text) of every secret code line.
    secret: list[tuple[int, str]] = field(default_factory=list)

    def emit(self, text: str, source_line: int) -> int:
        self.out.append(text)
        self.origin.append(source_line)
        return len(self.out)


def _error(path: str, line: int, problem: str, fix: str) -> AuthoringError:
    return AuthoringError(f"{path}:{line}: {problem}; {fix}")


def _is_code(stripped: str) -> bool:
    return bool(stripped) and not stripped.startswith("#")


def _uncomment(line: str) -> str:
    """``    # x = 1`` -> ``    x = 1`` (one ``#`` and one following space removed)."""
    m = re.match(r"^([ \t]*)#[ ]?(.*)$", line)
    return m.group(1) + m.group(2) if m else line


def _replace_solution_line(code: str) -> str:
    """otter's rule: an assignment keeps its targets and gets ``...`` as value; any other line
    becomes ``...`` at its indentation."""
    indent = code[: len(code) - len(code.lstrip())]
    body = code.strip()
    try:
        tree = ast.parse(body)
    except SyntaxError:
        return indent + "..."
    if len(tree.body) == 1 and isinstance(tree.body[0], (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        node = tree.body[0]
        if node.value is not None and node.value.lineno == 1:
            return indent + body[: node.value.col_offset].rstrip() + " ..."
    return indent + "..."


def _scan(source: str, path: str) -> _Scan:
    """One pass over the source: check the markers, build the stub lines, collect secrets."""
    scan = _Scan(path)
    lines = source.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    region_start: int | None = None   # line of the open BEGIN SOLUTION
    prompt_start: int | None = None   # line of the open BEGIN PROMPT
    prompt_uncomment = False
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        begin, end = _BEGIN.match(line), _END.match(line)
        begin_prompt, end_prompt = _BEGIN_PROMPT.match(line), _END_PROMPT.match(line)
        if not (begin or end or begin_prompt or end_prompt) and _MENTIONS_MARKER.search(line):
            raise _error(path, number, f"unrecognised solution marker {stripped!r}",
                         f"{_BEGIN_HELP}, `# END SOLUTION` likewise, or `\"\"\" # BEGIN PROMPT`"
                         f" / `\"\"\" # END PROMPT` for a prompt block")

        if region_start is not None:  # inside a solution region
            if end:
                region_start = None
            elif begin:
                raise _error(path, number, f"BEGIN SOLUTION inside the region opened at line "
                             f"{region_start} (regions cannot nest)",
                             f"add `# END SOLUTION` before line {number}")
            elif begin_prompt or end_prompt:
                raise _error(path, number, f"prompt marker inside the solution region opened at "
                             f"line {region_start}",
                             "close the region with `# END SOLUTION` before the prompt block")
            else:
                code = _SOLUTION_LINE.match(line)
                text = code.group("code").strip() if code else stripped
                if _is_code(text):
                    scan.secret.append((number, text))
            continue

        if prompt_start is not None:  # inside a prompt block
            if end_prompt:
                prompt_start = None
            elif begin or end or begin_prompt:
                raise _error(path, number, f"marker inside the prompt block opened at line "
                             f"{prompt_start}",
                             f"close the prompt with `# END PROMPT` before line {number}")
            else:
                scan.emit(_uncomment(line) if prompt_uncomment else line, number)
            continue

        if begin:
            region_start = number
            indent = begin.group("indent")
            if begin.group("no_prompt"):
                scan.silent_regions.append((len(scan.out), len(indent.expandtabs())))
            else:
                scan.emit(indent + STUB_COMMENT, number)
                raise_text = f'{indent}raise NotImplementedError("{_PLACEHOLDER}")'
                scan.raise_lines.append(scan.emit(raise_text, number))
        elif end:
            raise _error(path, number, "END SOLUTION without a BEGIN SOLUTION before it",
                         f"add `# BEGIN SOLUTION` where the solution starts, or delete line {number}")
        elif begin_prompt:
            left = begin_prompt.group("left").strip()
            if left and not left.lstrip("rRuUbBfF").startswith(_STRING_OPENERS):
                raise _error(path, number, "BEGIN PROMPT after code",
                             "write `\"\"\" # BEGIN PROMPT` (a string the reference ignores) or a "
                             "bare `# BEGIN PROMPT` comment line")
            prompt_start, prompt_uncomment = number, not left
        elif end_prompt:
            raise _error(path, number, "END PROMPT without a BEGIN PROMPT before it",
                         "add `\"\"\" # BEGIN PROMPT` where the prompt starts")
        elif (single := _SOLUTION_LINE.match(line)) is not None:
            code = single.group("code")
            if not _is_code(code.strip()):
                raise _error(path, number, "`# SOLUTION` marker with no code before it",
                             "put the marker at the end of the line it hides "
                             "(`w = np.zeros(3)  # SOLUTION`), or use `# BEGIN SOLUTION`")
            scan.secret.append((number, code.strip()))
            if not single.group("no_prompt"):
                scan.placeholder_lines.append(scan.emit(_replace_solution_line(code), number))
        else:
            scan.emit(line, number)

    if region_start is not None:
        raise _error(path, region_start, "BEGIN SOLUTION is never closed",
                     "add `# END SOLUTION` after the last line of the solution")
    if prompt_start is not None:
        raise _error(path, prompt_start, "BEGIN PROMPT is never closed",
                     "add `\"\"\" # END PROMPT` after the last line of the prompt")
    return scan


def _enclosing_functions(tree: ast.AST) -> list[tuple[int, int, str, int]]:
    """(first line, last line, qualified name, column) of every function, outermost first."""
    found: list[tuple[int, int, str, int]] = []

    def visit(node: ast.AST, prefix: tuple[str, ...]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = (*prefix, child.name)
                found.append((child.lineno, child.end_lineno or child.lineno, ".".join(name),
                              child.col_offset))
                visit(child, name)
            elif isinstance(child, ast.ClassDef):
                visit(child, (*prefix, child.name))
            else:
                visit(child, prefix)

    visit(tree, ())
    return found


def _innermost(functions: list[tuple[int, int, str, int]], line: int,
               indent: int | None = None) -> str | None:
    inside = [f for f in functions if f[0] <= line <= f[1] and (indent is None or f[3] < indent)]
    return max(inside, key=lambda f: f[0])[2] if inside else None


def make_stub(source: str, path: str) -> Stub:
    """The student stub of a reference module, and what the student must implement.

    ``path`` is only used in error messages. Raises :class:`AuthoringError` on unbalanced,
    nested or unrecognised markers, on a stub that does not compile, and on a region whose
    ``raise`` would run at import time.
    """
    scan = _scan(source, path)
    stub_text = "\n".join(scan.out) + "\n"
    try:
        tree = ast.parse(stub_text, filename=path)
        compile(tree, path, "exec")
    except SyntaxError as e:
        stub_line = e.lineno or 1
        source_line = scan.origin[min(stub_line, len(scan.origin)) - 1] if scan.origin else 1
        raise _error(path, source_line, f"removing the solution regions leaves invalid Python "
                     f"({e.msg}, stub line {stub_line}: {(e.text or '').strip()!r})",
                     "a region must hold whole statements at its markers' indentation, and a "
                     "block must keep a statement (a `# BEGIN SOLUTION NO PROMPT` region cannot "
                     "be a block's whole body: use `# BEGIN SOLUTION` or add a prompt block)"
                     ) from None

    functions = _enclosing_functions(tree)
    todo: list[tuple[int, str]] = []  # (stub line, function), sorted below into source order
    for stub_line in scan.raise_lines:
        name = _innermost(functions, stub_line)
        if name is None:
            raise _error(path, scan.origin[stub_line - 1], "solution region outside any "
                         "function: its `raise NotImplementedError` would run on import",
                         "move the region into a function body, mark single values with "
                         "`value = ...  # SOLUTION`, or use `# BEGIN SOLUTION NO PROMPT` with a "
                         "prompt block")
        scan.out[stub_line - 1] = scan.out[stub_line - 1].replace(_PLACEHOLDER, STUB_MESSAGE.format(name=name))
        todo.append((stub_line, name))
    module_level = False
    for stub_line in scan.placeholder_lines:
        name = _innermost(functions, stub_line)
        if name is None:
            module_level = True
        else:
            todo.append((stub_line, name))
    for stub_line, indent in scan.silent_regions:
        name = _innermost(functions, stub_line, indent) if stub_line else None
        if name is not None:
            todo.append((stub_line, name))
    unique = tuple(dict.fromkeys(name for _, name in sorted(todo)))
    return Stub("\n".join(scan.out) + "\n", unique, module_level)


def strip_solutions(source: str, path: str) -> str:
    """The student stub of a reference module: every solution region replaced by a
    ``raise NotImplementedError`` naming its function, signatures and docstrings kept.

    See the module docstring for the markers. Raises :class:`AuthoringError` naming the file,
    the line and what to write instead.
    """
    return make_stub(source, path).text


def solution_region_lines(source: str, path: str) -> list[tuple[int, str]]:
    """(line number, stripped text) of every code line the stub hides: the non-blank,
    non-comment lines inside solution regions and the code of ``# SOLUTION`` lines.

    The markers are checked as in :func:`strip_solutions`.
    """
    return list(_scan(source, path).secret)
