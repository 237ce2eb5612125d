"""Property: for any bytes, zip, notebook or folder, intake either stages the upload or raises
this submission's :class:`IntakeError` (issue 11, finding 1). Nothing else ever comes out."""

from __future__ import annotations

import io
import itertools
import json
import os
import shutil
import tempfile
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autograder.submissions import IntakeError, IntakeLimits, stage

SETTINGS = settings(max_examples=80, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
LIMITS = IntakeLimits(max_files=20, max_total_bytes=2**20, max_file_bytes=2**18)
_counter = itertools.count()

# Names as a student (or a broken tool) might write them: plain, nested, climbing out, absolute,
# control characters, very long, empty, dots, backslashes.
NAME_PART = st.one_of(
    st.sampled_from(["toy.py", "toy_support.py", "helpers", "util.py", "..", ".", "",
                     "__MACOSX", "a" * 300, "toy.ipynb", "C:", "\\..\\x", "\x1b[2J", "\n"]),
    st.text(min_size=0, max_size=12))
MEMBER_NAME = st.lists(NAME_PART, min_size=1, max_size=4).map("/".join)


def _attempt(upload: Path) -> None:
    """Stage ``upload``; anything but success or IntakeError fails the property."""
    support = upload.parent / "toy_support.py"
    support.write_bytes(b"SUPPORT = 1\n")
    dest = upload.parent / f"staged-{next(_counter)}"
    try:
        prepared = stage(upload, dest, ("toy",), [support], limits=LIMITS)
    except IntakeError as e:
        assert str(e), "an IntakeError must say what to fix"
        return
    assert prepared.files == dest and (dest / "toy_support.py").is_file()


@contextmanager
def _scratch() -> Iterator[Path]:
    """A fresh folder per generated example (a fixture would be shared by all of them)."""
    path = Path(tempfile.mkdtemp(prefix="intake-property-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _zip_bytes(members: list[tuple[str, bytes]], method: int) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with zipfile.ZipFile(buf, "w", compression=method) as zf:
            for name, data in members:
                try:
                    zf.writestr(name, data)
                except (ValueError, UnicodeEncodeError, IndexError):
                    pass  # a name zipfile itself refuses to write
    return buf.getvalue()


def _mangle(data: bytes, flips: list[tuple[int, int]], cut: int | None) -> bytes:
    out = bytearray(data)
    for position, mask in flips:
        if out:
            out[position % len(out)] ^= mask or 1
    return bytes(out[:cut] if cut is not None else out)


def _raw_names(data: bytes, names: list[bytes]) -> bytes:
    """Overwrite the member names with raw bytes of the same length (invalid UTF-8 and all)."""
    out = bytearray(data)
    for i, header in enumerate([b"PK\x03\x04", b"PK\x01\x02"]):
        start, k = 0, 0
        while (start := out.find(header, start)) != -1 and k < len(names):
            name_len_at, name_at = (start + 26, start + 30) if i == 0 else (start + 28, start + 46)
            length = int.from_bytes(out[name_len_at:name_len_at + 2], "little")
            raw = (names[k] * (length // max(len(names[k]), 1) + 1))[:length]
            out[name_at:name_at + length] = raw
            start, k = start + 4, k + 1
    return bytes(out)


@SETTINGS
@given(data=st.binary(max_size=4096),
       suffix=st.sampled_from([".zip", ".py", ".ipynb", ".txt", ""]))
def test_random_bytes(data, suffix):
    with _scratch() as workdir:
        upload = workdir / f"up{next(_counter)}{suffix}"
        upload.write_bytes(data)
        _attempt(upload)


@SETTINGS
@given(members=st.lists(st.tuples(MEMBER_NAME, st.binary(max_size=300)), max_size=6),
       method=st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2,
                               zipfile.ZIP_LZMA]),
       flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4),
       cut=st.one_of(st.none(), st.integers(0, 2000)),
       raw_names=st.one_of(st.none(), st.lists(st.binary(min_size=1, max_size=8), min_size=1,
                                               max_size=3)),
       utf8_flag=st.booleans())
def test_mangled_zips(members, method, flips, cut, raw_names, utf8_flag):
    with _scratch() as workdir:
        data = _zip_bytes(members, method)
        if raw_names:
            data = _raw_names(data, raw_names)
        if utf8_flag:  # claim UTF-8 names whatever they are
            out = bytearray(data)
            for header, flag_at in ((b"PK\x03\x04", 7), (b"PK\x01\x02", 9)):
                start = 0
                while (start := out.find(header, start)) != -1:
                    if start + flag_at < len(out):
                        out[start + flag_at] |= 0x08  # bit 11 of the flags: names are UTF-8
                    start += 4
            data = bytes(out)
        upload = workdir / f"up{next(_counter)}.zip"
        upload.write_bytes(_mangle(data, flips, cut))
        _attempt(upload)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=20)
# Cell sources: code, IPython syntax, broken syntax, lone surrogates, NULs, deep nesting.
SOURCE = st.one_of(
    st.text(max_size=200),
    st.lists(st.sampled_from(["%matplotlib inline", "!ls", "x = !ls", "%%time", "%%bash",
                              "%time y = 1", "ok = (1", "  != 2)", "foo?", "def f():",
                              "    return 1", "\ud800", "\x00", "((((((((((", "get_ipython()",
                              "%timeit -n 1 -r 1 z = 2", "if True:", "    !pip install x",
                              "x = 1 + \\", "%%writefile a.py", "'''", "é = 1"]),
             max_size=8).map("\n".join))


@SETTINGS
@given(cells=st.lists(st.fixed_dictionaries(
           {"cell_type": st.sampled_from(["code", "markdown", "raw", 3]),
            "source": st.one_of(SOURCE, st.lists(SOURCE, max_size=3), JSON)}), max_size=5),
       version=st.sampled_from([4, 4, 4, 3, 5, "4", None]),
       noise=st.one_of(st.none(), JSON))
def test_random_notebooks(cells, version, noise):
    with _scratch() as workdir:
        nb = (noise if noise is not None and not cells
              else {"nbformat": version, "cells": cells, "metadata": {}})
        if version == 3 and isinstance(nb, dict):
            nb = {"nbformat": 3, "worksheets": [{"cells": [
                {"cell_type": c["cell_type"], "input": c["source"]} for c in cells]}]}
        upload = workdir / f"up{next(_counter)}.ipynb"
        upload.write_text(json.dumps(nb))  # ensure_ascii keeps lone surrogates as \udXXX escapes
        _attempt(upload)


@SETTINGS
@given(entries=st.lists(st.tuples(
           st.lists(st.one_of(st.binary(min_size=1, max_size=10), st.sampled_from(
               [b"toy.py", b"toy_support.py", b"helpers", b"d" * 260, b"caf\xff.py",
                b"__pycache__", b"\x1b[2J"])), min_size=1, max_size=3),
           st.sampled_from(["file", "dir", "symlink"]), st.binary(max_size=100)), max_size=8))
def test_random_folders(entries):
    with _scratch() as workdir:
        root = workdir / f"folder{next(_counter)}"
        root.mkdir()
        base = os.fsencode(root)
        # Symlinks point outside the upload, at a decoy in the scratch folder: never at a file
        # of this machine (a later "file" entry at the same path must not write through it).
        decoy = os.fsencode(workdir / f"outside{next(_counter)}.txt")
        with open(decoy, "wb") as f:
            f.write(b"not the student's")
        for parts, kind, data in entries:
            parts = [p.replace(b"/", b"_").replace(b"\0", b"_") for p in parts]
            parts = [p for p in parts if p not in (b".", b"..")]
            if not parts:
                continue
            path = base + b"/" + b"/".join(parts)
            try:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                if kind == "dir":
                    os.makedirs(path, exist_ok=True)
                elif kind == "symlink":
                    os.symlink(decoy, path)
                else:  # O_NOFOLLOW: a symlink already at this path is refused, not followed
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW,
                                 0o644)
                    with os.fdopen(fd, "wb") as f:
                        f.write(data)
            except OSError:
                continue  # a tree the file system itself refuses (a file where a folder is)
        _attempt(root)
