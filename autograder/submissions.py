"""Submission intake: a directory, a ``.zip``, a single ``.py`` or a ``.ipynb`` becomes a staging
directory that holds only the student's files (plus the assignment's public support files).

Everything here treats the upload as hostile: zip entries that are absolute, climb out with
``..``, or are symlinks are refused; sizes and file counts are bounded while extracting (not
from the zip's own claims); nested archives are stored as files, never opened. A problem is an
:class:`IntakeError` whose message tells the student what to fix.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import nbformat

from autograder.harness.plugin import PreparedSubmission

MAX_FILES = 200
MAX_TOTAL_BYTES = 20 * 2**20
MAX_FILE_BYTES = 10 * 2**20
_SKIP_NAMES = {"__pycache__", ".ipynb_checkpoints", "__MACOSX", ".DS_Store", ".git"}


class IntakeError(Exception):
    """The upload cannot be graded as it is; the message says what to fix."""


@dataclass(frozen=True)
class IntakeLimits:
    max_files: int = MAX_FILES
    max_total_bytes: int = MAX_TOTAL_BYTES
    max_file_bytes: int = MAX_FILE_BYTES


def submission_id(path: Path) -> str:
    """A readable id from the upload's name: ``alice_hw1.zip`` -> ``alice_hw1``."""
    stem = path.name[: -len(path.suffix)] if path.suffix and path.is_file() else path.name
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._") or "submission"


def _budget(limits: IntakeLimits):
    state = {"files": 0, "bytes": 0}

    def take(name: str, size: int) -> None:
        state["files"] += 1
        state["bytes"] += size
        if state["files"] > limits.max_files:
            raise IntakeError(f"the submission has more than {limits.max_files} files; "
                              f"submit only your code")
        if size > limits.max_file_bytes:
            raise IntakeError(f"{name} is larger than {limits.max_file_bytes // 2**20} MiB; "
                              f"do not include data sets or checkpoints")
        if state["bytes"] > limits.max_total_bytes:
            raise IntakeError(f"the submission is larger than "
                              f"{limits.max_total_bytes // 2**20} MiB in total")
    return take


def _skip(parts: tuple[str, ...]) -> bool:
    return any(p in _SKIP_NAMES or p.startswith("._") for p in parts)


def _copy_dir(src: Path, dest: Path, limits: IntakeLimits) -> None:
    take = _budget(limits)
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if _skip(rel.parts):
            continue
        if path.is_symlink():
            raise IntakeError(f"{rel} is a symbolic link; submit the file itself")
        if path.is_dir():
            continue
        if not path.is_file():
            continue
        take(str(rel), path.stat().st_size)
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest / rel)


def _safe_member_path(name: str) -> PurePosixPath:
    if "\\" in name:
        name = name.replace("\\", "/")
    p = PurePosixPath(name)
    if p.is_absolute() or any(part == ".." for part in p.parts) or re.match(r"^[A-Za-z]:", name):
        raise IntakeError(f"the zip file contains the entry {name!r}, which points outside "
                          f"the archive; zip your files again without absolute or '..' paths")
    return p


def _extract_zip(src: Path, dest: Path, limits: IntakeLimits) -> None:
    try:
        zf = zipfile.ZipFile(src)
    except (zipfile.BadZipFile, OSError) as e:
        raise IntakeError(f"{src.name} is not a valid zip file ({e}); create it again with "
                          f"your system's 'compress' or `zip -r`") from None
    take = _budget(limits)
    with zf:
        for info in zf.infolist():
            rel = _safe_member_path(info.filename)
            if _skip(rel.parts) or info.is_dir():
                continue
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise IntakeError(f"the zip file contains a symbolic link ({info.filename}); "
                                  f"submit the file itself")
            target = dest.joinpath(*rel.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            written = 0
            try:
                with zf.open(info) as fin, open(target, "wb") as fout:
                    while chunk := fin.read(1 << 16):
                        written += len(chunk)
                        # Count what is really extracted, not what the zip claims.
                        if written > limits.max_file_bytes:
                            take(info.filename, written)
                        fout.write(chunk)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError,
                    NotImplementedError) as e:
                raise IntakeError(f"{info.filename} in the zip file cannot be read ({e})") \
                    from None
            take(info.filename, written)


def notebook_to_module(source: Path) -> str:
    """The code cells of a notebook as one module. IPython magics (``%``, ``!``) cannot run
    outside Jupyter and are commented out; each cell is marked so errors can be located."""
    try:
        nb = nbformat.read(str(source), as_version=4)
    except Exception as e:  # nbformat raises several unrelated types for bad files
        raise IntakeError(f"{source.name} is not a readable Jupyter notebook ({e}); save it "
                          f"again from Jupyter (File > Save) and resubmit") from None
    parts = []
    for index, cell in enumerate(nb.cells, start=1):
        if cell.get("cell_type") != "code":
            continue
        lines = []
        for line in str(cell.get("source", "")).splitlines():
            stripped = line.lstrip()
            if stripped.startswith(("%", "!")) or stripped.endswith("?"):
                lines.append(f"# (notebook-only line, not run) {line}")
            else:
                lines.append(line)
        parts.append(f"# --- notebook cell {index} ---\n" + "\n".join(lines))
    return "\n\n".join(parts) + "\n"


def _place_modules(dest: Path, modules: tuple[str, ...], notes: list[str]) -> None:
    """Find the expected modules: at the top, or in one sub-folder (a zipped folder)."""
    expected = {f"{m}.py" for m in modules}
    if any((dest / name).is_file() for name in expected):
        return
    found = [p for p in dest.rglob("*.py") if p.name in expected]
    parents = {p.parent for p in found}
    if len(parents) == 1:
        inner = parents.pop()
        notes.append(f"Found your files in the folder {inner.relative_to(dest)}/ and graded "
                     f"them from there.")
        for item in list(inner.iterdir()):
            target = dest / item.name
            if not target.exists():
                shutil.move(str(item), str(target))


def content_hash(directory: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(directory)).encode() + b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def prepare(upload: Path, dest: Path, modules: tuple[str, ...], support_files: list[Path],
            sub_id: str | None = None, limits: IntakeLimits = IntakeLimits()
            ) -> PreparedSubmission:
    """Stage one upload into ``dest`` (created; must not exist)."""
    upload = Path(upload)
    dest.mkdir(parents=True)
    notes: list[str] = []
    main = modules[0]
    if not upload.exists():
        raise IntakeError(f"{upload}: no such file or directory")
    if upload.is_dir():
        _copy_dir(upload, dest, limits)
    elif upload.suffix == ".zip":
        _extract_zip(upload, dest, limits)
    elif upload.suffix == ".py":
        _budget(limits)(upload.name, upload.stat().st_size)
        name = upload.name if upload.stem in modules else f"{main}.py"
        if len(modules) > 1 and upload.stem not in modules:
            raise IntakeError(f"{upload.name}: this assignment needs the modules "
                              f"{', '.join(m + '.py' for m in modules)}; submit a folder or a "
                              f"zip holding them")
        if name != upload.name:
            notes.append(f"Your file {upload.name} was graded as {name}.")
        shutil.copyfile(upload, dest / name)
    elif upload.suffix == ".ipynb":
        if len(modules) > 1:
            raise IntakeError(f"{upload.name}: this assignment needs several modules; submit "
                              f"them as .py files in a zip")
        (dest / f"{main}.py").write_text(notebook_to_module(upload))
        notes.append(f"The code cells of {upload.name} were graded as {main}.py.")
    else:
        raise IntakeError(f"{upload.name}: submit a folder, a .zip, a .py file or a .ipynb "
                          f"notebook")
    for nb in [p for p in dest.rglob("*.ipynb") if p.stem in modules
               and not (p.parent / f"{p.stem}.py").exists()]:
        nb.with_suffix(".py").write_text(notebook_to_module(nb))
        notes.append(f"The code cells of {nb.name} were graded as {nb.stem}.py.")
    _place_modules(dest, modules, notes)
    digest = content_hash(dest)
    missing = [f"{m}.py" for m in modules if not (dest / f"{m}.py").is_file()]
    if missing:
        present = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
        notes.append(f"Your submission has no {', '.join(missing)} (it has: "
                     f"{', '.join(present[:10]) or 'no files'}); every test that needs it fails.")
    for support in support_files:
        shutil.copyfile(support, dest / support.name)
    return PreparedSubmission(id=sub_id or submission_id(upload), files=dest,
                              content_hash=digest, notes=notes)
