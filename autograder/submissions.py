"""Submission intake: the one way an upload becomes a staging directory that holds only the
student's files (plus the assignment's public support files). ``grade``, ``check``, ``verify``
and the service all stage through :func:`stage`.

Everything here treats the upload as hostile, and no byte sequence may make intake fail in any
other way than an :class:`IntakeError` of that one submission, whose message blames the file and
says what to fix:

* sizes and file counts are bounded while extracting (not from the zip's own claims), and the
  upload itself is size-checked before it is opened or parsed;
* names are checked before anything is written: no absolute paths or ``..``, valid UTF-8, no NUL,
  no component over 255 bytes, no path over 1024 bytes or 32 levels, no duplicates, no name that
  is both a file and a folder; symbolic links are refused; nested archives are kept as files and
  never opened;
* notebooks are parsed as plain JSON (``nbformat`` is never imported: it costs seconds) and their
  IPython syntax is turned into Python by IPython's own input transformer; what would run a
  magic or a shell command becomes ``None`` (see :func:`notebook_to_module`);
* every student-controlled name passes through :func:`autograder.text.neutralise_name` before it
  enters a message or a note.

Only a fault of the grading machine itself (its disk full or read-only, no file handles left) is
raised as a :class:`~autograder.errors.PlatformError`: it is not the student's doing.
"""

from __future__ import annotations

import ast
import errno
import hashlib
import json
import os
import re
import shutil
import stat
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from autograder.errors import PlatformError, UserError
from autograder.harness.spec import PreparedSubmission
from autograder.text import neutralise, neutralise_name

MAX_FILES = 200
MAX_TOTAL_BYTES = 20 * 2**20
MAX_FILE_BYTES = 10 * 2**20
MAX_NAME_BYTES = 255      # one path component: what Linux file systems accept
MAX_PATH_BYTES = 1024     # a path inside the submission (the sandbox adds its own prefix)
MAX_DEPTH = 32
# Never a student's work: editor, OS and tool litter, and virtual environments (a folder upload
# or `check` in a folder holding one must not trip the file-count limit).
_SKIP_NAMES = {"__pycache__", ".ipynb_checkpoints", "__MACOSX", ".DS_Store", ".git", ".venv",
               "venv", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
# Faults of the grading machine, not of the upload: the batch cannot go on, and no student is
# charged for them.
_PLATFORM_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EMFILE, errno.ENFILE}
# Cell magics whose body is ordinary Python: the body runs (once), only the magic is dropped.
_PYTHON_CELL_MAGICS = {"time", "timeit", "capture", "prun"}
_REZIP = "create it again from your files (e.g. `zip -r hw.zip softmax.py`) and resubmit"
_RESAVE = "open it in Jupyter, save it again (File > Save) and resubmit"


class IntakeError(UserError):
    """The upload cannot be graded as it is; the message names the file and says what to fix."""


@dataclass(frozen=True)
class IntakeLimits:
    """Bounds on what one upload may hold, enforced on what is really read."""

    max_files: int = MAX_FILES
    max_total_bytes: int = MAX_TOTAL_BYTES
    max_file_bytes: int = MAX_FILE_BYTES


def submission_id(path: Path) -> str:
    """A readable id from the upload's name: ``alice_hw1.zip`` -> ``alice_hw1``."""
    stem = path.name[: -len(path.suffix)] if path.suffix and path.is_file() else path.name
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._") or "submission"


def _show(name: str | bytes | PurePosixPath) -> str:
    """A student-chosen name as it may appear in a message, shortened to stay readable."""
    text = neutralise_name(name if isinstance(name, (str, bytes)) else str(name))
    return text if len(text) <= 80 else f"{text[:60]}...{text[-12:]} ({len(text)} characters)"


class _Budget:
    """Counts files and bytes really written, and refuses past the limits."""

    def __init__(self, limits: IntakeLimits, where: str) -> None:
        self.limits = limits
        self.where = where  # the upload, as messages name it
        self.files = 0
        self.bytes = 0

    def take_file(self, name: str) -> None:
        self.files += 1
        if self.files > self.limits.max_files:
            raise IntakeError(f"{self.where} has more than {self.limits.max_files} files; "
                              f"submit only your code")

    def take_bytes(self, name: str, size: int, file_size: int) -> None:
        self.bytes += size
        if file_size > self.limits.max_file_bytes:
            raise IntakeError(f"{_show(name)} in {self.where} is larger than "
                              f"{self.limits.max_file_bytes // 2**20} MiB; do not include data "
                              f"sets, checkpoints or notebook outputs")
        if self.bytes > self.limits.max_total_bytes:
            raise IntakeError(f"{self.where} is larger than "
                              f"{self.limits.max_total_bytes // 2**20} MiB in total; submit "
                              f"only your code")


def _skip(parts: Sequence[str]) -> bool:
    return any(p in _SKIP_NAMES or p.startswith("._") for p in parts)


def _checked_path(name: str, where: str, *, archive: bool) -> PurePosixPath:
    """The path of one entry inside the submission, or an :class:`IntakeError` that names it.
    ``archive``: the name comes from a zip (or a mapping), where ``\\`` separates folders and
    absolute or ``..`` paths would climb out."""
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:  # surrogates: bytes that were not UTF-8 in the first place
        raise IntakeError(f"{where} holds a file name that is not valid UTF-8 ({_show(name)}); "
                          f"rename it using plain letters, digits, '_' and '-'") from None
    if "\0" in name:
        raise IntakeError(f"{where} holds a file name with a NUL character ({_show(name)}); "
                          f"rename it and resubmit")
    if archive:
        name = name.replace("\\", "/")
        if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in name.split("/"):
            raise IntakeError(f"{where} contains the entry {_show(name)}, which points outside "
                              f"the archive; zip your files again without absolute or '..' "
                              f"paths")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    too_long = next((p for p in parts if len(p.encode("utf-8")) > MAX_NAME_BYTES), None)
    if too_long is not None:
        raise IntakeError(f"{where} holds a file or folder name longer than {MAX_NAME_BYTES} "
                          f"bytes ({_show(too_long)}); use short names and resubmit")
    if len(encoded) > MAX_PATH_BYTES or len(parts) > MAX_DEPTH:
        raise IntakeError(f"{where} holds a path nested too deep or too long ({_show(name)}; "
                          f"at most {MAX_DEPTH} folders and {MAX_PATH_BYTES} bytes); keep your "
                          f"files at the top or in one folder")
    return PurePosixPath(*parts)


def _check_tree(files: Sequence[PurePosixPath], folders: Sequence[PurePosixPath],
                where: str) -> None:
    """Refuse two entries with one name, and a name that is both a file and a folder
    (``helpers`` beside ``helpers/util.py``): either would overwrite or fail half-way."""
    seen: set[PurePosixPath] = set()
    for path in files:
        if path in seen:
            raise IntakeError(f"{where} holds two entries named {_show(path)}; keep one, "
                              f"{_REZIP}")
        seen.add(path)
    implied = {parent for path in files for parent in path.parents} | set(folders)
    clash = sorted(seen & implied)
    if clash:
        raise IntakeError(f"{where} holds both a file {_show(clash[0])} and a folder "
                          f"{_show(clash[0])}/; rename one of them and resubmit")


def _platform_fault(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in _PLATFORM_ERRNOS


def _write_stream(fin: IO[bytes], target: Path, name: str, budget: _Budget,
                  fix: str) -> None:
    """Copy ``fin`` to ``target`` counting what is really read. An error while reading is the
    upload's (``fix`` says what to do); one while writing is the grader's disk."""
    target.parent.mkdir(parents=True, exist_ok=True)
    budget.take_file(name)
    written = 0
    with open(target, "wb") as fout:
        while True:
            try:
                chunk = fin.read(1 << 16)
            except Exception as e:  # zlib.error, BadZipFile (CRC), EOFError, lzma/bz2 errors...
                if _platform_fault(e):
                    raise
                raise IntakeError(f"{_show(name)} in {budget.where} cannot be read "
                                  f"({type(e).__name__}: {neutralise(str(e))[:120]}): {fix}") \
                    from None
            if not chunk:
                break
            written += len(chunk)
            budget.take_bytes(name, len(chunk), written)
            fout.write(chunk)


def _copy_dir(src: Path, dest: Path, budget: _Budget) -> None:
    """A folder upload: regular files only, links refused, names checked, nothing followed."""
    where = f"the folder {_show(src.name)}"
    stack: list[tuple[Path, PurePosixPath]] = [(src, PurePosixPath())]
    visited = 0
    while stack:
        folder, rel = stack.pop()
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            visited += 1
            if visited > 20 * budget.limits.max_files:
                raise IntakeError(f"{where} holds more than {20 * budget.limits.max_files} "
                                  f"files and folders; submit only your code")
            if _skip([entry.name]):
                continue
            path = _checked_path(str(rel / entry.name), where, archive=False)
            if entry.is_symlink():
                raise IntakeError(f"{_show(path)} is a symbolic link; submit the file itself")
            if entry.is_dir(follow_symlinks=False):
                stack.append((Path(entry.path), path))
            elif entry.is_file(follow_symlinks=False):
                fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
                with os.fdopen(fd, "rb") as fin:
                    _write_stream(fin, dest / path, str(path), budget,
                                  "copy the file again and resubmit")
            # sockets, pipes and devices are not work: left out


def _extract_zip(src: Path, dest: Path, budget: _Budget) -> None:
    where = f"the zip file {_show(src.name)}"
    try:
        zf = zipfile.ZipFile(src)
    except UnicodeDecodeError:
        raise IntakeError(f"{where} marks its file names as UTF-8 but they are not; {_REZIP}") \
            from None
    except Exception as e:  # BadZipFile, EOFError, struct and value errors on damaged files
        if _platform_fault(e):
            raise
        raise IntakeError(f"{_show(src.name)} is not a valid zip file ({type(e).__name__}: "
                          f"{neutralise(str(e))[:120]}); {_REZIP}") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > 20 * budget.limits.max_files:
            raise IntakeError(f"{where} holds {len(infos)} entries; submit only your code")
        members: list[tuple[zipfile.ZipInfo, PurePosixPath]] = []
        folders: list[PurePosixPath] = []
        for info in infos:
            path = _checked_path(info.filename, where, archive=True)
            if _skip(path.parts) or not path.parts:
                continue
            if info.is_dir():
                folders.append(path)
                continue
            if stat.S_ISLNK(info.external_attr >> 16):
                raise IntakeError(f"{where} contains a symbolic link ({_show(path)}); submit "
                                  f"the file itself")
            if info.flag_bits & 0x1:
                raise IntakeError(f"{where} is protected by a password ({_show(path)} is "
                                  f"encrypted); zip your files again without a password")
            members.append((info, path))
        _check_tree([p for _, p in members], folders, where)
        for info, path in members:
            try:
                fin = zf.open(info)
            except Exception as e:  # unsupported compression, a header that does not match
                if _platform_fault(e):
                    raise
                raise IntakeError(f"{_show(path)} in {where} cannot be read "
                                  f"({type(e).__name__}: {neutralise(str(e))[:120]}); "
                                  f"{_REZIP}") from None
            with fin:
                _write_stream(fin, dest.joinpath(*path.parts), str(path), budget,
                              f"the zip file is damaged; {_REZIP}")


def _write_mapping(files: Mapping[str, bytes], dest: Path, budget: _Budget) -> None:
    """Files given by relative path (a stored submission, verify's reference and mutants)."""
    where = "the submission"
    paths = {name: _checked_path(name, where, archive=True) for name in files}
    _check_tree([p for p in paths.values() if p.parts], [], where)
    for name, data in files.items():
        path = paths[name]
        if not path.parts or _skip(path.parts):
            continue
        budget.take_file(str(path))
        budget.take_bytes(str(path), len(data), len(data))
        target = dest.joinpath(*path.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


# --- notebooks --------------------------------------------------------------------------------

def _cell_text(source: Any, where: str) -> str:
    """A cell's ``source`` (a string, or a list of strings) as text that can be written."""
    if isinstance(source, list) and all(isinstance(s, str) for s in source):
        source = "".join(source)
    if not isinstance(source, str):
        raise IntakeError(f"{where} has a cell whose source is not text; {_RESAVE}")
    try:
        source.encode("utf-8")
    except UnicodeEncodeError as e:
        raise IntakeError(f"{where} has a code cell holding a character that is not valid "
                          f"Unicode ({_show(source[e.start:e.end])}, a lone surrogate); delete "
                          f"it, save the notebook and resubmit") from None
    return source


def notebook_code_cells(data: bytes, name: str) -> list[tuple[int, str]]:
    """The code cells of a notebook file's bytes as (cell number, source): parsed as plain JSON
    and checked for the few fields used (formats 4 and 3). ``name`` is shown in errors."""
    where = f"the notebook {_show(name)}"
    try:
        nb = json.loads(data)
    except RecursionError:
        raise IntakeError(f"{where} is nested too deeply to be a notebook; {_RESAVE}") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, an over-long number
        raise IntakeError(f"{where} is not a readable Jupyter notebook (not JSON: "
                          f"{neutralise(str(e))[:120]}); {_RESAVE}") from None
    if not isinstance(nb, dict) or "nbformat" not in nb:
        raise IntakeError(f"{where} is not a Jupyter notebook (it has no nbformat field); "
                          f"{_RESAVE}")
    version = nb["nbformat"]
    if version == 4:
        cells = nb.get("cells")
        source_key = "source"
    elif version == 3:
        sheets = nb.get("worksheets")
        cells = ([c for s in sheets if isinstance(s, dict) for c in (s.get("cells") or [])]
                 if isinstance(sheets, list) else None)
        source_key = "input"
    else:
        raise IntakeError(f"{where} has notebook format {_show(repr(version)[:20])}, which "
                          f"cannot be read (formats 3 and 4 can); {_RESAVE}")
    if not isinstance(cells, list):
        raise IntakeError(f"{where} has no list of cells; {_RESAVE}")
    code = []
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict):
            raise IntakeError(f"{where}: cell {number} is not a cell; {_RESAVE}")
        if cell.get("cell_type") == "code":
            code.append((number, _cell_text(cell.get(source_key, ""), where)))
    return code


def _is_ipython_call(node: ast.AST) -> bool:
    """``get_ipython()`` or ``get_ipython().method(...)``: what IPython writes for a magic."""
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    if isinstance(func, ast.Attribute):
        func = func.value.func if isinstance(func.value, ast.Call) else func
    return isinstance(func, ast.Name) and func.id == "get_ipython"


def _timed_statement(call: ast.Call, statement: bool) -> str | None:
    """The code a ``%time``/``%timeit``/``%prun`` line magic times, to run once instead:
    ``%time model = train()`` must still define ``model``. None for any other call."""
    func = call.func
    if not (isinstance(func, ast.Attribute) and func.attr == "run_line_magic"
            and len(call.args) >= 2 and all(isinstance(a, ast.Constant)
                                            and isinstance(a.value, str) for a in call.args[:2])):
        return None
    name, line = call.args[0].value, call.args[1].value  # type: ignore[attr-defined]
    if name not in _PYTHON_CELL_MAGICS or "\n" in line:
        return None
    if name != "time":  # %timeit -n 10 -r 3 stmt, %prun -s cumulative stmt: drop the options
        line = re.sub(r"^(\s*-[nrps]\s*\S+|\s*-[tcqo])+\s", "", line)
    try:
        ast.parse(line, mode="exec" if statement else "eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    return line.strip() if statement else f"({line.strip()})"


def _without_ipython_calls(code: str) -> str | None:
    """``code`` with every ``get_ipython()...`` call replaced by ``None`` (or by the statement a
    ``%time`` times), a comment above saying what was not run; None when it is not Python."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    statements = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}
    calls = [n for n in ast.walk(tree) if _is_ipython_call(n)]
    spans = sorted(((n.lineno, n.col_offset, n.end_lineno or n.lineno, n.end_col_offset or 0,
                     _timed_statement(n, id(n) in statements) or "None")  # type: ignore[arg-type]
                    for n in calls), key=lambda s: (s[0], s[1], -s[2], -s[3]))
    outer: list[tuple[int, int, int, int, str]] = []
    for span in spans:  # outermost first: a span inside the previous outer one is dropped
        if outer and (span[0], span[1]) < (outer[-1][2], outer[-1][3]):
            continue
        outer.append(span)
    if not outer:
        return code
    lines = [line.encode("utf-8") for line in code.splitlines(keepends=True)]
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    blob = b"".join(lines)
    for line, col, end_line, end_col, text in reversed(outer):  # col offsets are UTF-8 bytes
        a, b = starts[line - 1] + col, starts[end_line - 1] + end_col
        blob = blob[:a] + text.encode("utf-8") + blob[b:]
    plain = blob.decode("utf-8")
    # Comments may sit at any indentation, so a note above each line keeps the code valid
    # (except after a backslash continuation: then the notes are left out).
    noted = plain.splitlines(keepends=True)
    originals = code.splitlines()
    for line, _, end_line, _, _ in reversed(outer):
        said = " ".join(s.strip() for s in originals[line - 1:end_line])
        noted.insert(line - 1, f"# (notebook-only: magics and shell commands do not run) {said}\n")
    for candidate in ("".join(noted), plain):
        try:
            compile(candidate, "<notebook cell>", "exec", dont_inherit=True)
            return candidate
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
    return None


def cell_to_python(source: str, transform: Any = None) -> str:
    """One code cell as Python. IPython's own input transformer turns magics (``%``, ``%%``),
    shell escapes (``!``) and help (``?``) into ``get_ipython()`` calls, so a line that only
    *starts* with ``%`` or ``!=`` inside an expression stays code. Those calls are then made
    ``None``: no shell command or magic runs when grading (``!pip install`` must not, and the
    runner has no IPython). A cell magic whose body is Python (``%%time``) keeps its body; any
    other (``%%bash``, ``%%writefile``) is commented out. A cell that is not valid Python is
    kept as written, so the student sees their own syntax error."""
    if transform is None:
        from IPython.core.inputtransformer2 import TransformerManager
        transform = TransformerManager().transform_cell
    header = ""
    if source.startswith("%%"):
        first, _, body = source.partition("\n")
        magic = re.match(r"%%(\w*)", first)
        if magic is None or magic.group(1) not in _PYTHON_CELL_MAGICS:
            return "\n".join(f"# (notebook-only cell, not run) {line}"
                             for line in source.splitlines())
        header, source = f"# (notebook-only, the cell runs once) {first}\n", body
    try:
        with warnings.catch_warnings():  # IPython warns about odd line endings; not our output
            warnings.simplefilter("ignore")
            transformed = transform(source if source.endswith("\n") else source + "\n")
    except Exception:  # tokenizer errors on code that is not Python: the import will say so
        return header + source
    if "get_ipython" not in transformed:
        return header + source
    return header + (_without_ipython_calls(transformed) or source)


def notebook_to_module(source: Path, max_bytes: int = MAX_FILE_BYTES) -> str:
    """The code cells of a notebook as one module, each marked by its cell number so errors
    can be located. The file is size-checked before it is parsed."""
    size = source.stat().st_size
    if size > max_bytes:
        raise IntakeError(f"the notebook {_show(source.name)} is {size / 2**20:.1f} MiB, more "
                          f"than the {max_bytes / 2**20:g} MiB allowed; clear its outputs "
                          f"(Edit > Clear Outputs of All Cells), save it and resubmit")
    cells = notebook_code_cells(source.read_bytes(), source.name)
    from IPython.core.inputtransformer2 import TransformerManager

    transform = TransformerManager().transform_cell
    parts = [f"# --- notebook cell {number} ---\n" + cell_to_python(code, transform)
             for number, code in cells]
    return "\n\n".join(parts) + "\n"


# --- staging ----------------------------------------------------------------------------------

def _place_modules(dest: Path, modules: Sequence[str], notes: list[str]) -> None:
    """Find the expected modules: at the top, or in one sub-folder (a zipped folder)."""
    expected = {f"{m}.py" for m in modules}
    if any((dest / name).is_file() for name in expected):
        return
    found = [p for p in dest.rglob("*.py") if p.name in expected and p.is_file()]
    parents = {p.parent for p in found}
    if len(parents) == 1:
        inner = parents.pop()
        notes.append(f"Found your files in the folder {_show(str(inner.relative_to(dest)))}/ "
                     f"and graded them from there.")
        for item in list(inner.iterdir()):
            target = dest / item.name
            if not target.exists():
                shutil.move(str(item), str(target))


def content_hash(directory: Path) -> str:
    """The hash of a staged submission's files (names and bytes); the gradebook computes the
    same from stored files (``gradebook.store.content_hash``)."""
    h = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(directory)).encode("utf-8", "surrogateescape") + b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def _stage_upload(upload: Path, dest: Path, modules: Sequence[str], budget: _Budget,
                  notes: list[str]) -> None:
    shown = _show(upload.name)
    main = modules[0]
    if upload.is_dir():
        _copy_dir(upload, dest, budget)
        return
    if not upload.is_file():
        raise IntakeError(f"{shown} is not a regular file or folder; submit a folder, a .zip, "
                          f"a .py file or a .ipynb notebook")
    size = upload.stat().st_size
    kind = upload.suffix.lower()
    if size == 0:
        raise IntakeError(f"{shown} is empty (0 bytes); submit the file with your work in it")
    if kind == ".zip":
        if size > budget.limits.max_total_bytes:
            raise IntakeError(f"{shown} is larger than {budget.limits.max_total_bytes // 2**20} "
                              f"MiB; submit only your code")
        _extract_zip(upload, dest, budget)
    elif kind == ".py":
        if len(modules) > 1 and upload.stem not in modules:
            raise IntakeError(f"{shown}: this assignment needs the modules "
                              f"{', '.join(m + '.py' for m in modules)}; submit a folder or a "
                              f"zip holding them")
        name = upload.name if upload.stem in modules else f"{main}.py"
        if name != upload.name:
            notes.append(f"Your file {shown} was graded as {name}.")
        with open(upload, "rb") as fin:
            _write_stream(fin, dest / name, upload.name, budget, "save it again and resubmit")
    elif kind == ".ipynb":
        if len(modules) > 1:
            raise IntakeError(f"{shown}: this assignment needs several modules; submit them as "
                              f".py files in a zip")
        module = notebook_to_module(upload, budget.limits.max_file_bytes)
        budget.take_file(f"{main}.py")
        (dest / f"{main}.py").write_text(module, encoding="utf-8")
        notes.append(f"The code cells of {shown} were graded as {main}.py.")
    else:
        raise IntakeError(f"{shown}: submit a folder, a .zip, a .py file or a .ipynb notebook")


def _upload_name(upload: Path | Mapping[str, bytes]) -> str:
    return "the submission" if isinstance(upload, Mapping) else _show(Path(upload).name)


def _stage(upload: Path | Mapping[str, bytes], dest: Path, modules: Sequence[str],
           support_files: Sequence[Path], limits: IntakeLimits) -> tuple[str, list[str]]:
    notes: list[str] = []
    budget = _Budget(limits, _upload_name(upload))
    if isinstance(upload, Mapping):
        _write_mapping(upload, dest, budget)
    else:
        _stage_upload(upload, dest, modules, budget, notes)
    if budget.files == 0:
        raise IntakeError(f"{budget.where} holds no files; submit your "
                          f"{', '.join(m + '.py' for m in modules)}")
    notebooks = sorted(p for p in dest.rglob("*.ipynb") if p.stem in modules and p.is_file()
                       and not (p.parent / f"{p.stem}.py").exists())
    for nb in notebooks:
        nb.with_suffix(".py").write_text(notebook_to_module(nb, limits.max_file_bytes),
                                         encoding="utf-8")
        notes.append(f"The code cells of {_show(nb.name)} were graded as {nb.stem}.py.")
    _place_modules(dest, modules, notes)
    digest = content_hash(dest)
    missing = [f"{m}.py" for m in modules if not (dest / f"{m}.py").is_file()]
    if missing:
        present = sorted(_show(str(p.relative_to(dest))) for p in dest.rglob("*")
                         if p.is_file())
        notes.append(f"Your submission has no {', '.join(missing)} (it has: "
                     f"{', '.join(present[:10]) or 'no files'}); every test that needs it fails.")
    for support in support_files:
        target = dest / support.name
        if target.is_dir() or target.is_symlink():
            raise IntakeError(f"{budget.where} holds a folder named {support.name}, the name "
                              f"of a file the assignment provides; rename or remove that folder "
                              f"and resubmit")
        if target.exists():
            notes.append(f"Your copy of {support.name} was replaced by the assignment's own.")
        shutil.copyfile(support, target)
    return digest, notes


def stage(upload: Path | Mapping[str, bytes], dest: Path, modules: Sequence[str],
          support_files: Sequence[Path] = (), *, sub_id: str | None = None,
          limits: IntakeLimits = IntakeLimits()) -> PreparedSubmission:
    """Stage one submission into ``dest`` (created; must not exist): the one way ``grade``,
    ``check``, ``verify`` and the service turn student work into what the sandbox sees.

    ``upload`` is a folder, a ``.zip``, a ``.py`` or a ``.ipynb`` file, or the files themselves
    by relative path. The expected ``modules`` are found at the top or in one sub-folder; every
    other file (a student's helper modules) is kept; the assignment's ``support_files`` are
    copied over the top. Raises :class:`IntakeError` for anything that cannot be graded, and
    nothing else for any upload (a full or read-only disk of the grader is a
    :class:`~autograder.errors.PlatformError`)."""
    dest.mkdir(parents=True)
    try:
        digest, notes = _stage(upload, dest, tuple(modules), list(support_files), limits)
    except IntakeError:
        raise
    except Exception as e:
        # The last line of defence: every malformed upload has its own message above; should
        # one still get through, it is this submission's intake failure, never the batch's.
        if _platform_fault(e):
            raise PlatformError(f"staging a submission failed on the grading machine: {e}") \
                from e
        raise IntakeError(f"{_upload_name(upload)} could not be read as a submission ({type(e).__name__}: "
                          f"{neutralise(str(e))[:120]}); check that your files open on your "
                          f"computer, then submit your .py files again, or a zip of them") \
            from None
    if sub_id is None:
        sub_id = "submission" if isinstance(upload, Mapping) else submission_id(Path(upload))
    return PreparedSubmission(id=sub_id, files=dest, content_hash=digest, notes=notes)
