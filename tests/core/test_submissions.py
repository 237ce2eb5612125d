"""Intake treats every upload as hostile and says what to fix."""

from __future__ import annotations

import json
import stat
import zipfile
from pathlib import Path

import pytest

from autograder.submissions import IntakeError, IntakeLimits, notebook_to_module, stage


def _zip(path: Path, entries: dict[str, bytes], symlinks: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def test_zip_with_a_folder_is_unwrapped(tmp_path):
    up = _zip(tmp_path / "hw.zip", {"hw1/softmax.py": b"x = 1\n", "hw1/notes.txt": b"hi"})
    sub = stage(up, tmp_path / "s", ("softmax",), [])
    assert (sub.files / "softmax.py").read_text() == "x = 1\n"
    assert any("hw1" in n for n in sub.notes)
    assert sub.content_hash and sub.id == "hw"


@pytest.mark.parametrize("name", ["../evil.py", "/etc/evil.py", "a/../../evil.py",
                                  "..\\evil.py", "C:/evil.py"])
def test_zip_slip_is_refused(tmp_path, name):
    up = _zip(tmp_path / "slip.zip", {name: b"pwned", "softmax.py": b""})
    with pytest.raises(IntakeError, match="outside the archive"):
        stage(up, tmp_path / "s", ("softmax",), [])
    assert not (tmp_path / "evil.py").exists()


def test_symlink_in_zip_is_refused(tmp_path):
    up = _zip(tmp_path / "link.zip", {"softmax.py": b""}, {"secret.py": "/etc/shadow"})
    with pytest.raises(IntakeError, match="symbolic link"):
        stage(up, tmp_path / "s", ("softmax",), [])


def test_symlink_in_folder_is_refused(tmp_path):
    folder = tmp_path / "up"
    folder.mkdir()
    (folder / "softmax.py").symlink_to("/etc/passwd")
    with pytest.raises(IntakeError, match="symbolic link"):
        stage(folder, tmp_path / "s", ("softmax",), [])


def test_zip_bomb_is_stopped_by_what_is_extracted_not_what_is_claimed(tmp_path):
    up = _zip(tmp_path / "bomb.zip", {"softmax.py": b"", "zeros.bin": b"\0" * (8 * 2**20)})
    assert up.stat().st_size < 100_000  # highly compressed
    with pytest.raises(IntakeError, match="larger than"):
        stage(up, tmp_path / "s", ("softmax",), [],
                limits=IntakeLimits(max_file_bytes=2**20, max_total_bytes=4 * 2**20))


def test_too_many_files(tmp_path):
    up = _zip(tmp_path / "many.zip", {f"f{i}.py": b"" for i in range(30)})
    with pytest.raises(IntakeError, match="more than 20 files"):
        stage(up, tmp_path / "s", ("softmax",), [], limits=IntakeLimits(max_files=20))


def test_nested_zip_is_kept_as_a_file_never_opened(tmp_path):
    inner = _zip(tmp_path / "inner.zip", {"softmax.py": b"from inner"})
    up = _zip(tmp_path / "outer.zip", {"inner.zip": inner.read_bytes()})
    sub = stage(up, tmp_path / "s", ("softmax",), [])
    assert (sub.files / "inner.zip").is_file() and not (sub.files / "softmax.py").exists()
    assert any("no softmax.py" in n for n in sub.notes)


def test_not_a_zip(tmp_path):
    up = tmp_path / "x.zip"
    up.write_bytes(b"PK\x03\x04 garbage")
    with pytest.raises(IntakeError, match="not a valid zip"):
        stage(up, tmp_path / "s", ("softmax",), [])


def test_single_py_is_renamed_and_said(tmp_path):
    up = tmp_path / "alice_hw1.py"
    up.write_text("x = 1\n")
    sub = stage(up, tmp_path / "s", ("softmax",), [])
    assert (sub.files / "softmax.py").is_file() and "graded as softmax.py" in sub.notes[0]


def test_unsupported_file_type(tmp_path):
    up = tmp_path / "hw.pdf"
    up.write_bytes(b"%PDF")
    with pytest.raises(IntakeError, match="submit a folder, a .zip, a .py"):
        stage(up, tmp_path / "s", ("softmax",), [])


def _notebook(path: Path, *cells: tuple[str, str]) -> Path:
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {},
                                "cells": [{"cell_type": kind, "source": source, "metadata": {}}
                                          for kind, source in cells]}))
    return path


def test_notebook_magics_do_not_run_and_cells_are_marked(tmp_path):
    path = _notebook(tmp_path / "nb.ipynb",
                     ("code", "%matplotlib inline\n!pip install x\nimport numpy"),
                     ("markdown", "text"),
                     ("code", "def f():\n    files = !ls\n    return 1"))
    module = notebook_to_module(path)
    compile(module, "nb", "exec")
    code = [line for line in module.splitlines() if not line.startswith("#")]
    assert not any("pip" in line or "get_ipython" in line for line in code), module
    assert "files = None" in module and "# --- notebook cell 3 ---" in module
    namespace: dict = {}
    exec(module, namespace)  # no get_ipython is needed: nothing is left to call it
    assert namespace["f"]() == 1


def test_malformed_notebook_says_how_to_fix(tmp_path):
    path = tmp_path / "broken.ipynb"
    path.write_text("{ not json")
    with pytest.raises(IntakeError, match="not a readable Jupyter notebook.*save it again"):
        stage(path, tmp_path / "s", ("softmax",), [])


def test_support_files_override_student_copies(tmp_path):
    support = tmp_path / "helpers.py"
    support.write_text("TRUSTED = True\n")
    folder = tmp_path / "up"
    folder.mkdir()
    (folder / "softmax.py").write_text("")
    (folder / "helpers.py").write_text("TRUSTED = False\n")
    sub = stage(folder, tmp_path / "s", ("softmax",), [support])
    assert (sub.files / "helpers.py").read_text() == "TRUSTED = True\n"


def test_notebook_continuation_lines_starting_with_operators_stay_code(tmp_path):
    """A line that starts with `!=` or `%` inside an expression is Python, not a magic: the
    old rule commented such lines out and a correct notebook scored 0."""
    path = _notebook(tmp_path / "nb.ipynb",
                     ("code", "def differs(a, b):\n    return (a\n            != b)\n"),
                     ("code", "def wrap(i, n):\n    return (i\n            % n)\n"),
                     ("code", "%time ready = differs(1, 2)\n!echo should-not-run"))
    namespace: dict = {}
    exec(notebook_to_module(path), namespace)
    assert namespace["differs"](1, 2) is True and namespace["wrap"](7, 3) == 1
    assert namespace["ready"] is True  # %time's statement still runs, once


def test_files_given_by_path_are_staged_like_an_upload(tmp_path):
    """verify and the service stage files they hold in memory through the same function."""
    support = tmp_path / "helpers.py"
    support.write_text("TRUSTED = True\n")
    sub = stage({"softmax.py": b"x = 1\n", "lib/util.py": b"y = 2\n", "helpers.py": b"no"},
                tmp_path / "s", ("softmax",), [support], sub_id="ref")
    assert sub.id == "ref" and (sub.files / "lib" / "util.py").read_bytes() == b"y = 2\n"
    assert (sub.files / "helpers.py").read_text() == "TRUSTED = True\n"
    with pytest.raises(IntakeError, match="outside the archive"):
        stage({"../x.py": b""}, tmp_path / "t", ("softmax",))


def test_check_keeps_the_students_helper_modules_as_grade_does(tmp_path):
    """`check` stages the student's folder exactly as `grade` stages a folder upload: a helper
    module the student wrote is there for their module to import (check used to drop it)."""
    import subprocess
    import sys

    from tests.conftest import as_root

    if not as_root():
        pytest.skip("the full process sandbox needs root")
    mine = tmp_path / "my-toy"
    (mine / "tests").mkdir(parents=True)
    (mine / "assignment.toml").write_text('name = "toy"\nmodules = ["toy"]\n[resources]\n'
                                          'test_time_limit_s = 5\ntime_limit_s = 60\n')
    (mine / "tests" / "test_toy.py").write_text(
        "def test_double(student):\n    assert student.double(21) == 42\n")
    (mine / "toy.py").write_text("from mylib import twice\n\ndef double(x):\n"
                                 "    return twice(x)\n")
    (mine / "mylib.py").write_text("def twice(x):\n    return 2 * x\n")
    done = subprocess.run([sys.executable, "-m", "autograder.cli", "check"], cwd=mine,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 of 1 public tests pass" in done.stdout
