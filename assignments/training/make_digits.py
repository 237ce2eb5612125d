"""Write ``tests/digits.npz``: scikit-learn's bundled digits, for the training assignment's tests.

Run once by a TA (the file is committed, and ``autograder release training`` copies it into the
release with the public tests); run it again only if the data should change:

    .venv/bin/python assignments/training/make_digits.py

Why a file of our own: the tests need the 1,797 digit images on the grader's side, and importing
scikit-learn to get them (``sklearn.datasets.load_digits``) took about 2 s of every student's
``autograder check``. The file holds the same numbers, so every split, seed and threshold of the
tests is unchanged; ``tests/course/test_training_digits.py`` proves they are equal.

What the file holds (all small integer arrays; ``numpy.load`` reads them without pickle):

* ``pixels``: uint8 (1797, 64), ``load_digits().data`` (whole numbers 0..16, stored as floats
  there);
* ``labels``: uint8 (1797,), ``load_digits().target`` (0..9);
* ``provenance``: a string saying where the numbers come from (the UCI "Optical Recognition of
  Handwritten Digits" test set, as bundled with scikit-learn) and how they were stored.

The bytes are the same on every run (fixed member order and zip timestamps), so regenerating an
unchanged data set leaves the release unchanged.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "tests" / "digits.npz"
#: A fixed zip timestamp: the file's bytes depend on the data only.
_EPOCH = (1980, 1, 1, 0, 0, 0)


def digit_arrays() -> dict[str, np.ndarray]:
    """The arrays of ``digits.npz``, from scikit-learn's bundled copy (no download)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = digits.data
    if not (np.array_equal(pixels, np.round(pixels)) and pixels.min() >= 0
            and pixels.max() <= 16):
        raise SystemExit("load_digits().data is not whole numbers 0..16 any more: the uint8 "
                         "storage of this script no longer fits; store floats instead")
    provenance = ("scikit-learn's load_digits(): the test set of the UCI 'Optical Recognition "
                  "of Handwritten Digits' data set, 1,797 images of 8x8 pixels with values "
                  "0..16 and their labels 0..9. "
                  "pixels = data as uint8, labels = target as uint8; written by "
                  "assignments/training/make_digits.py.")
    return {"pixels": pixels.astype(np.uint8), "labels": digits.target.astype(np.uint8),
            "provenance": np.array(provenance)}


def write_npz(arrays: dict[str, np.ndarray], path: Path) -> None:
    """An ``.npz`` that ``numpy.load`` reads, with the same bytes for the same arrays
    (``numpy.savez`` stamps each member with the current time)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(arrays):
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arrays[name]),
                                      allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, member.getvalue())
    path.write_bytes(buffer.getvalue())


if __name__ == "__main__":
    write_npz(digit_arrays(), OUT)
    print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes)")
