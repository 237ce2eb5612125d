"""Uploads, stored by content: ``<data>/uploads/ab/abcdef...`` named by the SHA-256 of the
bytes. A file is written (and fsynced) before the transaction that refers to it commits, so an
acknowledged submission always finds its files; a file left behind by a transaction that did
not commit is harmless (nothing refers to it) and is written again identically if needed.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from autograder.errors import PlatformError
from autograder.harness.plugin import PreparedSubmission
from autograder.submissions import IntakeLimits, stage


class UploadStore:
    """Content-addressed files under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256

    def put(self, data: bytes) -> str:
        """Store ``data`` durably and return its SHA-256."""
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if target.is_file() and target.stat().st_size == len(data):
            return digest
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            dir_fd = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as e:
            raise PlatformError(f"cannot store an upload under {self.root}: {e}") from e
        return digest

    def get(self, sha256: str) -> bytes:
        """The bytes stored under ``sha256``, checked against it."""
        try:
            data = self.path(sha256).read_bytes()
        except OSError as e:
            raise PlatformError(f"stored upload {sha256[:12]}... is missing from "
                                f"{self.root}: {e}") from e
        if hashlib.sha256(data).hexdigest() != sha256:
            raise PlatformError(f"stored upload {sha256[:12]}... is damaged (its bytes no "
                                f"longer match their hash)")
        return data


def stage_uploads(uploads: Sequence[tuple[str, bytes]], dest: Path, modules: tuple[str, ...],
                  limits: IntakeLimits = IntakeLimits(), support_files: Sequence[Path] = ()) -> PreparedSubmission:
    """Stage uploaded files as the grader does: one file (a .py, .zip or .ipynb) as that file,
    several as the files themselves. The API and the workers call this, so both see the same
    staged submission (and the same content hash)."""
    if len(uploads) == 1:
        name, data = uploads[0]
        holder = dest.parent / (dest.name + "-upload")
        holder.mkdir(parents=True)
        path = holder / name
        path.write_bytes(data)
        return stage(path, dest, modules, list(support_files), limits=limits)
    return stage(dict(uploads), dest, modules, list(support_files),
                 limits=limits)
