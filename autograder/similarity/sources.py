"""What the similarity report compares: each submission's code as one text (through the intake,
so a notebook counts by its code cells and a zip by its Python files), the shared starter code
(release stubs, handout, support files), and an optional reference set of earlier terms."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from autograder.course import Assignment
from autograder.errors import UserError
from autograder.similarity.detect import Document
from autograder.submissions import IntakeError, notebook_to_module, stage, submission_id
from autograder.text import neutralise, neutralise_name

#: One upload as the student sent it: (file name, bytes).
UploadFile = tuple[str, bytes]


@dataclass(frozen=True)
class Unreadable:
    """A submission that could not be turned into code, and why (shown in the report)."""

    name: str
    reason: str


def starter_code(assignment: Assignment) -> list[tuple[str, str]]:
    """The code every student starts from, as (label, text): the release's stub modules, its
    handout notebook's code cells and the assignment's Python support files, for every variant
    of an exam. A missing release is no error (nothing is then treated as starter code), but
    the report says so."""
    parts = [assignment, *assignment.variants()]
    found: list[tuple[str, str]] = []
    for part in parts:
        cfg = part.config
        candidates = [part.release_dir / f"{m}.py" for m in cfg.modules]
        if cfg.handout:
            candidates.append(part.release_dir / cfg.handout)
        candidates += [part.public_dir / f for f in cfg.support_files]
        for path in candidates:
            if not path.is_file():
                continue
            label = f"{part.label}: {path.name}"
            if path.suffix == ".ipynb":
                found.append((label, notebook_to_module(path)))
            elif path.suffix == ".py":
                found.append((label, path.read_text(encoding="utf-8", errors="replace")))
    return found


def _code_of(staged: Path, skip: set[str]) -> tuple[str, tuple[str, ...]]:
    """The Python of a staged submission: its .py files, and any notebook the intake did not
    already turn into a module, one text with each file's name in a comment (comments do not
    count in the comparison)."""
    parts, names = [], []
    for path in sorted(p for p in staged.rglob("*") if p.is_file()):
        rel = path.relative_to(staged).as_posix()
        if path.name in skip:
            continue
        if path.suffix == ".py":
            text = path.read_text(encoding="utf-8", errors="replace")
        elif path.suffix == ".ipynb" and not path.with_suffix(".py").exists():
            try:
                text = notebook_to_module(path)
            except IntakeError:
                continue
        else:
            continue
        names.append(rel)
        parts.append(f"# ===== {neutralise_name(rel)} =====\n{text}")
    return "\n\n".join(parts), tuple(names)


def read_document(name: str, upload: Path | Sequence[UploadFile] | Mapping[str, bytes],
                  modules: Sequence[str], *, skip: Sequence[str] = (),
                  reference: bool = False) -> Document:
    """One submission as a :class:`Document`, staged by the intake (a folder, a .zip, a .py or a
    .ipynb; uploaded files as the service stored them; or files by path). Raises
    :class:`~autograder.submissions.IntakeError` for an upload that cannot be read."""
    with tempfile.TemporaryDirectory(prefix="similarity-") as tmp:
        dest = Path(tmp) / "staged"
        if isinstance(upload, Path) or isinstance(upload, Mapping):
            stage(upload, dest, tuple(modules))
        else:
            from autograder.service.storage import stage_uploads  # the service's own rule

            stage_uploads(list(upload), dest, tuple(modules))
        text, files = _code_of(dest, set(skip))
    return Document(name=name, text=text, reference=reference, files=files)


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}-{seen[n]}")
    return out


def documents_from_paths(paths: Sequence[Path], modules: Sequence[str], *,
                         skip: Sequence[str] = (), reference: bool = False,
                         prefix: str = "") -> tuple[list[Document], list[Unreadable]]:
    """Uploads given by path, each named like ``grade`` names it (``alice_hw1.zip`` ->
    ``alice_hw1``)."""
    docs, bad = [], []
    for path, name in zip(paths, _unique([prefix + submission_id(Path(p)) for p in paths])):
        if not Path(path).exists():
            raise UserError(f"{path} does not exist; give submission folders, .zip, .py or "
                            f".ipynb files")
        try:
            docs.append(read_document(name, Path(path), modules, skip=skip, reference=reference))
        except IntakeError as e:
            bad.append(Unreadable(name, neutralise(str(e))))
    return docs, bad


def reference_documents(directory: Path, modules: Sequence[str], *,
                        skip: Sequence[str] = ()) -> tuple[list[Document], list[Unreadable]]:
    """An earlier term's submissions: every entry of ``directory`` (a folder, zip, .py or
    notebook per student) is one reference document named ``ref:<entry>``."""
    if not directory.is_dir():
        raise UserError(f"the reference set {directory} is not a folder; give a folder holding "
                        f"one folder, .zip, .py or .ipynb per earlier submission")
    entries = sorted(p for p in directory.iterdir() if not p.name.startswith("."))
    return documents_from_paths(entries, modules, skip=skip, reference=True, prefix="ref:")


def latest_uploads(gb, assignment: str, uploads_dir: Path | None) -> list[tuple[str, object]]:  # type: ignore[no-untyped-def]
    """The latest submission of each active student for ``assignment``, as stored: the files the
    gradebook kept (``grade --record``), else the uploads of the service's grading job (the
    content-addressed store under ``uploads_dir``). Returns (student id, files or uploads)."""
    from gradebook import models as m

    with sa.orm.Session(gb.engine) as s:
        newest = (sa.select(m.Submission.student_pk, sa.func.max(m.Submission.attempt).label("n"))
                  .join(m.Assignment, m.Assignment.id == m.Submission.assignment_pk)
                  .where(m.Assignment.course_id == gb.course_id, m.Assignment.name == assignment)
                  .group_by(m.Submission.student_pk).subquery())
        rows = list(s.execute(
            sa.select(m.Submission, m.Student.student_id)
            .join(m.Student, m.Student.id == m.Submission.student_pk)
            .join(m.Assignment, m.Assignment.id == m.Submission.assignment_pk)
            .join(newest, sa.and_(newest.c.student_pk == m.Submission.student_pk,
                                  newest.c.n == m.Submission.attempt))
            .where(m.Assignment.name == assignment, m.Assignment.course_id == gb.course_id,
                   m.Student.status == "active")
            .order_by(m.Student.student_id)))
        out: list[tuple[str, object]] = []
        for sub, student in rows:
            kept = {f.path: f.content for f in sub.files}
            if kept and all(v is not None for v in kept.values()):
                out.append((student, kept))
                continue
            out.append((student, _job_uploads(s, sub.id, uploads_dir)))
    return out


def _job_uploads(s: sa.orm.Session, submission_pk: int,
                 uploads_dir: Path | None) -> list[UploadFile] | Unreadable:
    try:
        from autograder.service.models import GradingJob
        from autograder.service.storage import UploadStore
    except ImportError:  # pragma: no cover - the service is part of the package
        return Unreadable("", "its files were not kept")
    job = s.scalar(sa.select(GradingJob).where(GradingJob.submission_id == submission_pk)
                   .order_by(GradingJob.id.desc()).limit(1))
    if job is None or uploads_dir is None:
        return Unreadable("", "its files were not kept in the gradebook and no upload store "
                              "holds them")
    store = UploadStore(uploads_dir)
    try:
        return [(u["name"], store.get(u["sha256"])) for u in job.uploads]
    except Exception as e:  # a missing or damaged stored upload: say so in the report
        return Unreadable("", f"its stored upload could not be read ({e})")


def gradebook_documents(gb, assignment: Assignment, uploads_dir: Path | None,  # type: ignore[no-untyped-def]
                        skip: Sequence[str] = ()) -> tuple[list[Document], list[Unreadable]]:
    """This term's documents from the gradebook and the service's uploads (see
    :func:`latest_uploads`), one per active student, named by student id."""
    docs, bad = [], []
    modules = assignment.config.modules
    for student, files in latest_uploads(gb, assignment.name, uploads_dir):
        if isinstance(files, Unreadable):
            bad.append(Unreadable(student, files.reason))
            continue
        try:
            docs.append(read_document(student, files, modules, skip=skip))  # type: ignore[arg-type]
        except IntakeError as e:
            bad.append(Unreadable(student, neutralise(str(e))))
    return docs, bad
