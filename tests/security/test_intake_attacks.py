"""Malformed uploads, graded for real in one batch between honest ones (issue 11, finding 1).

Each upload below once made ``autograder grade`` exit with a traceback and write no
``results.json`` for anyone. Now each is that submission's own intake failure: 0 out of the
assignment's points, outcome ``intake``, a message naming the file and saying what to fix (never
"our side"), while the honest uploads before and after it are graded normally. Intake runs before
any sandbox, so the process backend is enough.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from autograder.course import Course
from autograder.harness.grader import grade_uploads
from autograder.results import Outcome
from tests.conftest import REPO, as_root, write

pytestmark = pytest.mark.skipif(not as_root(), reason="the full process sandbox needs root")

POINTS = 3
CORRECT = b"import numpy as np\ndef affine(x, w, b):\n    return x @ w + b\n"
SUPPORT = "toy_support.py"


def _zip(path: Path, entries: list[tuple[str, bytes]], method: int = zipfile.ZIP_STORED) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name": that is the point
        with zipfile.ZipFile(path, "w", compression=method) as zf:
            for name, data in entries:
                zf.writestr(name, data)
    return path


def _patch_all(path: Path, old: bytes, new: bytes) -> Path:
    """Replace bytes wherever they occur (a name sits in the local and central headers)."""
    data = path.read_bytes()
    assert old in data and len(old) == len(new)
    path.write_bytes(data.replace(old, new))
    return path


def encrypted_zip(d: Path) -> Path:
    path = _zip(d / "encrypted.zip", [("toy.py", CORRECT)])
    data = bytearray(path.read_bytes())
    data[6] |= 0x1  # local header: general purpose flag, bit 0 = encrypted
    central = data.find(b"PK\x01\x02")
    data[central + 8] |= 0x1  # central directory: the same flag
    path.write_bytes(bytes(data))
    return path


def utf8_flag_lies(d: Path) -> Path:
    path = _zip(d / "utf8_lies.zip", [("toy.py", CORRECT), ("caf\u00e9.py", b"")])
    return _patch_all(path, "caf\u00e9".encode(), b"caf\xff\xfe"[:5])


def file_then_folder(d: Path) -> Path:
    return _zip(d / "file_then_folder.zip",
                [("toy.py", CORRECT), ("helpers", b"x"), ("helpers/util.py", b"")])


def folder_then_file(d: Path) -> Path:
    return _zip(d / "folder_then_file.zip",
                [("toy.py", CORRECT), ("helpers/util.py", b""), ("helpers", b"x")])


def long_folder_name(d: Path) -> Path:
    return _zip(d / "long_name.zip", [("toy.py", CORRECT), ("d" * 300 + "/util.py", b"")])


def deep_path(d: Path) -> Path:
    return _zip(d / "deep.zip", [("toy.py", CORRECT), ("a/" * 40 + "util.py", b"")])


def surrogate_notebook(d: Path) -> Path:
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
          "cells": [{"cell_type": "code", "metadata": {}, "outputs": [],
                     "source": CORRECT.decode() + "s = '\ud800'\n"}]}
    path = d / "surrogate.ipynb"
    path.write_text(json.dumps(nb))  # ensure_ascii: the file holds the escape \ud800
    return path


def non_utf8_folder(d: Path) -> Path:
    folder = d / "non_utf8_folder"
    folder.mkdir()
    (folder / "toy.py").write_bytes(CORRECT)
    fd = os.open(os.fsencode(folder) + b"/caf\xff.py", os.O_WRONLY | os.O_CREAT, 0o644)
    os.close(fd)
    return folder


def corrupt_deflate(d: Path) -> Path:
    path = _zip(d / "corrupt_deflate.zip", [("toy.py", CORRECT * 50)], zipfile.ZIP_DEFLATED)
    data = bytearray(path.read_bytes())
    for offset in range(40, 60):  # inside the deflate stream of the only member
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def support_named_folder_zip(d: Path) -> Path:
    return _zip(d / "support_folder.zip", [("toy.py", CORRECT), (f"{SUPPORT}/x.py", b"")])


def support_named_folder_upload(d: Path) -> Path:
    folder = d / "support_folder_upload"
    (folder / SUPPORT).mkdir(parents=True)
    (folder / SUPPORT / "x.py").write_bytes(b"")
    (folder / "toy.py").write_bytes(CORRECT)
    return folder


def truncated_zip(d: Path) -> Path:
    path = _zip(d / "truncated.zip", [("toy.py", CORRECT), ("util.py", b"y = 2\n" * 100)])
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def duplicate_names(d: Path) -> Path:
    return _zip(d / "duplicates.zip", [("toy.py", CORRECT), ("toy.py", b"x = 1\n")])


def empty_zip_file(d: Path) -> Path:
    path = d / "empty.zip"
    path.write_bytes(b"")
    return path


def empty_py(d: Path) -> Path:
    path = d / "empty_module.py"
    path.write_bytes(b"")
    return path


def empty_archive(d: Path) -> Path:
    return _zip(d / "nothing_inside.zip", [])


def notebook_not_json(d: Path) -> Path:
    path = d / "not_json.ipynb"
    path.write_text('{"cells": [ oops')
    return path


def notebook_wrong_format(d: Path) -> Path:
    path = d / "wrong_format.ipynb"
    path.write_text(json.dumps({"nbformat": 99, "cells": []}))
    return path


def notebook_100_mb(d: Path) -> Path:
    path = d / "huge.ipynb"
    with open(path, "wb") as f:
        f.write(b'{"nbformat": 4, "cells": [], "metadata": {"x": "')
        f.truncate(100 * 2**20)  # sparse: 100 MB on paper, nothing on disk
    return path


# name -> (builder, a fragment the message must hold besides the file's name)
MALFORMED: dict[str, tuple[Callable[[Path], Path], str]] = {
    "encrypted": (encrypted_zip, "password"),
    "utf8_lies": (utf8_flag_lies, "UTF-8"),
    "file_then_folder": (file_then_folder, "both a file helpers and a folder helpers/"),
    "folder_then_file": (folder_then_file, "both a file helpers and a folder helpers/"),
    "long_name": (long_folder_name, "longer than 255 bytes"),
    "deep": (deep_path, "nested too deep"),
    "surrogate": (surrogate_notebook, "lone surrogate"),
    "non_utf8_folder": (non_utf8_folder, "not valid UTF-8"),
    "corrupt_deflate": (corrupt_deflate, "damaged"),
    "support_folder": (support_named_folder_zip, f"folder named {SUPPORT}"),
    "support_folder_upload": (support_named_folder_upload, f"folder named {SUPPORT}"),
    "truncated": (truncated_zip, "not a valid zip file"),
    "duplicates": (duplicate_names, "two entries named toy.py"),
    "empty": (empty_zip_file, "empty"),
    "empty_module": (empty_py, "empty"),
    "nothing_inside": (empty_archive, "holds no files"),
    "not_json": (notebook_not_json, "not JSON"),
    "wrong_format": (notebook_wrong_format, "notebook format 99"),
    "huge": (notebook_100_mb, "clear its outputs"),
}


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> tuple[Path, list[Path]]:
    """A toy course (3 points, one support file) and the batch: honest, malformed..., honest."""
    root = tmp_path_factory.mktemp("intake-course")
    write(root / "course.toml", 'name = "intake attacks"\n')
    write(root / "assignments/toy/assignment.toml",
          f'name = "toy"\nmodules = ["toy"]\npoints = {POINTS}\n'
          f'support_files = ["{SUPPORT}"]\n[resources]\ntest_time_limit_s = 5\n'
          f'time_limit_s = 60\nmemory_mb = 512\n')
    write(root / f"assignments/toy/{SUPPORT}", "SCALE = 1.0\n")
    write(root / "assignments/toy/tests/test_public.py", '''
        import numpy as np
        import pytest
        from autograder.checks import assert_close

        @pytest.mark.points(3)
        def test_affine(student):
            x, w, b = np.ones((2, 3)), np.ones((3, 4)), np.arange(4.0)
            assert_close(student.affine(x, w, b), np.full((2, 4), 3.0) + np.arange(4.0),
                         name="out")
        ''')
    uploads_dir = root / "uploads"
    uploads_dir.mkdir()
    first = uploads_dir / "honest_first.py"
    first.write_bytes(CORRECT)
    last = uploads_dir / "honest_last.zip"
    _zip(last, [("hw/toy.py", CORRECT), ("hw/util.py", b"")])
    batch = [first, *(build(uploads_dir) for build, _ in MALFORMED.values()), last]
    return root, batch


@pytest.fixture(scope="module")
def graded(course, sandbox) -> dict[str, dict]:
    root, batch = course
    results = grade_uploads(Course(root).assignment("toy"), batch, sandbox=sandbox)
    assert len(results) == len(batch)
    return {r.submission: r.to_json() for r in results}


def _check(results: dict[str, dict], batch: list[Path]) -> None:
    ids = list(results)
    assert ids[0] == "honest_first" and ids[-1] == "honest_last", ids
    for honest in ("honest_first", "honest_last"):
        r = results[honest]
        assert (r["score"], r["max_score"]) == (POINTS, POINTS), r
    for (name, (_, fragment)), upload, sub_id in zip(MALFORMED.items(), batch[1:-1], ids[1:-1]):
        r = results[sub_id]
        assert (r["score"], r["max_score"]) == (0, POINTS), (name, r)
        [test] = r["tests"]
        assert test["outcome"] == Outcome.INTAKE, (name, test)
        message = test["output"]
        assert upload.name in message, (name, message)
        assert fragment in message, (name, message)
        assert "our side" not in message and "Traceback" not in message, (name, message)


def test_each_malformed_upload_is_its_own_intake_failure(course, graded):
    _, batch = course
    _check(graded, batch)


def test_through_the_cli_everyone_gets_a_results_file(course, tmp_path):
    root, batch = course
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "autograder.cli", "grade", "toy", *map(str, batch),
         "--course", str(root), "--output", str(out), "--format", "json"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    printed = {r["submission"]: r for r in json.loads(done.stdout)}
    _check(printed, batch)
    for sub_id, r in printed.items():
        stored = json.loads((out / sub_id / "results.json").read_text())
        assert (stored["score"], stored["max_score"]) == (r["score"], r["max_score"])


def test_names_with_control_characters_are_shown_not_interpreted(tmp_path, sandbox):
    """A zip member name can carry terminal escapes or a forged line; the notes list it made
    visible (the zip has no toy.py, so the note lists what it does have)."""
    root = tmp_path / "course"
    write(root / "course.toml", 'name = "names"\n')
    write(root / "assignments/toy/assignment.toml",
          'name = "toy"\nmodules = ["toy"]\npoints = 1\n[resources]\ntest_time_limit_s = 5\n')
    write(root / "assignments/toy/tests/test_public.py",
          "def test_there(student):\n    assert student.affine(1, 1, 1) == 2\n")
    upload = _zip(tmp_path / "names.zip", [("\x1b]52;c;cGF5bG9hZA==\x07.py", b""),
                                           ("x\nscore 36 / 36\x1b[2J.py", b"")])
    [result] = grade_uploads(Course(root).assignment("toy"), [upload], sandbox=sandbox)
    text = result.output + "".join(t.output for t in result.tests)
    assert "no toy.py" in text
    assert "\x1b" not in text and "\x07" not in text
    assert "\nscore 36 / 36" not in text
    assert "x\\nscore 36 / 36\\e[2J.py" in text and "\\e]52;c;cGF5bG9hZA==\\x07.py" in text


def test_a_symlink_in_a_folder_upload_is_refused_not_followed(tmp_path, sandbox):
    """A folder holding a link to a grader file: refused, and nothing of the target is read."""
    from autograder.submissions import IntakeError, stage

    folder = tmp_path / "up"
    folder.mkdir()
    (folder / "toy.py").symlink_to(REPO / "autograder" / "submissions.py")
    with pytest.raises(IntakeError, match="symbolic link"):
        stage(folder, tmp_path / "s", ("toy",))
    assert not (tmp_path / "s" / "toy.py").exists()
    assert stat.S_ISDIR((tmp_path / "s").stat().st_mode)
