"""The similarity report: a copy stays found through renamed identifiers, reordered functions
and edited comments; starter code (the release's stubs and handout) is never evidence; notebooks
count by their code; clusters, the reference set, pairs.csv and the escaped report."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from autograder.course import Course
from autograder.similarity import clusters, compare, run_similarity
from autograder.similarity.detect import Document
from autograder.similarity.sources import read_document, starter_code

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "solutions" / "softmax" / "samples"
ORIGINAL = (SAMPLES / "correct.py").read_text()
INDEPENDENT = (SAMPLES / "buggy.py").read_text()
STUB = (REPO / "release" / "softmax" / "softmax.py").read_text()

# The same work again, written differently enough to be someone else's.
OTHER = '''
import numpy as np


def softmax_loss(x, y):
    n = len(y)
    z = x - x.max(axis=1)[:, None]
    lse = np.log(np.exp(z).sum(axis=1))
    loss = np.mean(lse - z[range(n), y])
    p = np.exp(z - lse[:, None])
    p[range(n), y] -= 1.0
    return loss, p / n


def softmax_loss_vectorized(W, X, y, reg):
    loss, dz = softmax_loss(np.dot(X, W), y)
    return loss + reg * (W ** 2).sum(), np.dot(X.T, dz) + 2.0 * reg * W
'''


def _renamed(code: str) -> str:
    """Every local name changed, as a student hiding a copy would."""
    for old, new in {"scores": "s", "log_norm": "lse", "onehot": "target", "probs": "p",
                     "loss": "total", "dx": "grad", "dW": "grad_w", "N": "batch",
                     "C": "classes"}.items():
        code = re.sub(rf"\b{old}\b", new, code)
    return code


def _reordered(code: str) -> str:
    head, first, second = re.split(r"\n(?=def )", code)
    return f"{head}\n{second.rstrip()}\n\n\n{first}"


def _recommented(code: str) -> str:
    code = re.sub(r"#.*", "", code)
    code = code.replace('"""', '"""My own notes on this.\n', 1)
    return code.replace("    N, C = x.shape\n", "    # shapes first\n    N, C = x.shape\n")


def _similarity(a: str, b: str, starter: tuple[str, ...] = (STUB,)) -> float:
    result = compare([Document("a", a), Document("b", b)], starter)
    return result.pairs[0].similarity


@pytest.mark.parametrize("disguise", [_renamed, _reordered, _recommented,
                                      lambda c: _recommented(_reordered(_renamed(c)))],
                         ids=["renamed", "reordered", "comments", "all three"])
def test_a_disguised_copy_is_still_found(disguise):
    copy = disguise(ORIGINAL)
    assert copy != ORIGINAL
    assert _similarity(ORIGINAL, copy) >= 0.9


def test_independent_work_is_not_flagged():
    assert _similarity(ORIGINAL, INDEPENDENT) < 0.3
    assert _similarity(ORIGINAL, OTHER) < 0.3


def _handout_with(code: str, path: Path) -> Path:
    """The release's handout notebook with the student's functions in a code cell, as a student
    submits it: every demo cell of the handout kept."""
    nb = json.loads((REPO / "release" / "softmax" / "softmax.ipynb").read_text())
    nb["cells"].insert(3, {"cell_type": "code", "metadata": {}, "outputs": [],
                           "execution_count": None, "source": code})
    path.write_text(json.dumps(nb))
    return path


def test_starter_code_is_not_evidence(tmp_path):
    """Two students who hand in the release's handout (its demo cells kept) with their own
    functions are not flagged; without the starter code left out they would be."""
    starter = [text for _, text in starter_code(Course(REPO).assignment("softmax"))]
    a = read_document("a", _handout_with(ORIGINAL, tmp_path / "a.ipynb"), ["softmax"])
    b = read_document("b", _handout_with(OTHER, tmp_path / "b.ipynb"), ["softmax"])
    assert "numerical_gradient" in a.text and "numerical_gradient" in b.text
    assert compare([a, b], starter).pairs[0].similarity < 0.3
    assert compare([a, b], []).pairs[0].similarity > 0.5  # the handout alone would flag them
    # Untouched stubs share nothing at all.
    assert _similarity(STUB, STUB) == 0.0


def test_the_release_stub_and_handout_are_the_starter_code():
    labels = [label for label, _ in starter_code(Course(REPO).assignment("softmax"))]
    assert labels == ["softmax: softmax.py", "softmax: softmax.ipynb"]


def _notebook(cells: list[str]) -> bytes:
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": "# My homework"},
        *({"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
           "source": c} for c in cells)]}).encode()


def test_a_notebook_counts_by_its_code(tmp_path):
    """A copy handed in as a notebook (split over cells, with a magic) is found; the notebook's
    JSON is not part of what is compared."""
    head, first, second = re.split(r"\n(?=def )", _renamed(ORIGINAL))
    nb = tmp_path / "dave.ipynb"
    nb.write_bytes(_notebook(["%matplotlib inline\n" + head, first, second]))
    doc = read_document("dave", nb, ["softmax"])
    assert "cell_type" not in doc.text and "def softmax_loss_vectorized" in doc.text
    result = compare([Document("alice", ORIGINAL), doc], [STUB])
    assert result.pairs[0].similarity >= 0.9


def test_clusters_of_three_or_more():
    docs = [Document("a", ORIGINAL), Document("b", _renamed(ORIGINAL)),
            Document("c", _reordered(ORIGINAL)), Document("d", OTHER),
            Document("e", INDEPENDENT)]
    result = compare(docs, [STUB])
    assert clusters(result.pairs, 0.5) == [["a", "b", "c"]]
    assert {frozenset((p.a, p.b)) for p in result.pairs[:3]} == {
        frozenset("ab"), frozenset("ac"), frozenset("bc")}


def test_code_shared_by_much_of_the_class_is_common():
    """A fragment in more than the common limit of submissions is the assignment's idiom: it
    no longer makes two otherwise different submissions similar."""
    idiom = "\n\ndef helper(v):\n    return v - np.max(v, axis=1, keepdims=True) + np.zeros_like(v) * 0.0\n"
    docs = [Document(f"s{i}", ("import numpy as np\n" + f"\n\ndef f{i}(x):\n    return x + {i}\n"
                               + idiom)) for i in range(12)]
    with_limit = compare(docs, [], common_min=10)
    without = compare(docs, [], common_min=100)
    assert with_limit.common_fingerprints > 0
    assert max(p.similarity for p in with_limit.pairs) < max(p.similarity for p in without.pairs)


def test_the_same_submissions_give_the_same_similarities_in_every_run():
    """copydetect hashes with Python's per-process salted hash(); ours does not, so two runs
    (two processes, two salts) rank and score every pair alike."""
    script = (
        "from autograder.similarity.detect import Document, compare\n"
        "import json, sys\n"
        "docs = [Document(n, t) for n, t in json.load(sys.stdin)]\n"
        "print(json.dumps([(p.a, p.b, p.similarity) for p in compare(docs, []).pairs]))\n")
    helper = "\n\ndef helper(v):\n    return v - np.max(v, axis=1) * 2\n"
    texts = json.dumps([[f"s{i}", f"import numpy as np\n\n\ndef f{i}(x):\n    return x + {i}\n"
                         + helper] for i in range(12)]
                       + [["alice", ORIGINAL], ["bob", _renamed(ORIGINAL)]])
    runs = [subprocess.run([sys.executable, "-c", script], input=texts, capture_output=True,
                           text=True, timeout=120, env={**os.environ, "PYTHONHASHSEED": seed},
                           cwd=REPO)
            for seed in ("1", "2", "3")]
    assert all(r.returncode == 0 for r in runs), [r.stderr[-500:] for r in runs]
    assert runs[0].stdout == runs[1].stdout == runs[2].stdout


def _uploads(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "uploads"
    folder.mkdir()
    files = {"alice.py": ORIGINAL, "bob.py": _renamed(_reordered(ORIGINAL)),
             "carol.py": OTHER + "\n# </pre><script>alert('x')</script>\n"
                                 "SHOUT = '<script>alert(1)</script>'\n",
             "dan.py": INDEPENDENT, "erin.py": STUB}
    for name, text in files.items():
        (folder / name).write_text(text)
    (folder / "frank.zip").write_bytes(b"not a zip")
    return sorted(folder.iterdir())


def test_cli_writes_pairs_csv_and_an_escaped_report(tmp_path):
    from autograder.cli import main

    out = tmp_path / "out"
    refs = tmp_path / "refs"
    (refs / "old_student").mkdir(parents=True)
    (refs / "old_student" / "softmax.py").write_text(_recommented(OTHER))
    (refs / "old_other.py").write_text(_recommented(ORIGINAL))
    r = CliRunner().invoke(main, ["similarity", "softmax", *map(str, _uploads(tmp_path)),
                                  "--output", str(out), "--reference-set", str(refs),
                                  "--course", str(REPO)])
    assert r.exit_code == 0, r.output
    with open(out / "pairs.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[:3] == ["a", "b", "similarity"]
    sims = [float(row["similarity"]) for row in rows]
    assert sims == sorted(sims, reverse=True) and all(0 <= s <= 1 for s in sims)
    top = {frozenset((row["a"], row["b"])) for row in rows if float(row["similarity"]) >= 0.9}
    assert top == {frozenset({"alice", "bob"}), frozenset({"carol", "ref:old_student"}),
                   frozenset({"alice", "ref:old_other"}), frozenset({"bob", "ref:old_other"})}
    names = {row["a"] for row in rows} | {row["b"] for row in rows}
    assert "frank" not in names  # unreadable: listed in the report, not compared
    assert not any(row["a"].startswith("ref:") and row["b"].startswith("ref:") for row in rows)
    html = (out / "report.html").read_text()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<strong>frank</strong>: " in html  # why it was not compared
    assert "Clusters of three or more" in html and "alice, bob, ref:old_other" in html
    assert "flags" in html and "<mark>" in html


def test_latest_submissions_come_from_the_gradebook(tmp_path):
    """Without paths: each active student's latest submission, files kept by the gradebook."""
    from autograder.config import load_course
    from gradebook.csvfiles import RosterRow
    from gradebook.store import Gradebook

    course = Course(REPO)
    now = dt.datetime(2026, 9, 1, tzinfo=dt.timezone.utc)
    with Gradebook.open(f"sqlite:///{tmp_path / 'gb.sqlite'}", load_course(REPO)) as gb:
        gb.sync_assignments(REPO)
        gb.import_roster([RosterRow(line=i + 2, student_id=s, name=s, email=f"{s}@x.edu")
                          for i, s in enumerate(("ann", "ben", "cat"))])
        gb.record_submission("ann", "softmax", {"softmax.py": ORIGINAL.encode()}, now)
        gb.record_submission("ben", "softmax", {"softmax.py": ORIGINAL.encode()}, now)
        # ben's latest attempt is his own work: that is the one compared
        gb.record_submission("ben", "softmax", {"softmax.py": OTHER.encode()},
                             now + dt.timedelta(hours=1))
        gb.record_submission("cat", "softmax", {"softmax.py": _renamed(ORIGINAL).encode()}, now)
        result = run_similarity(course.assignment("softmax"), tmp_path / "out", gradebook=gb)
    pairs = {frozenset((p.a, p.b)): p.similarity for p in result.comparison.pairs}
    assert pairs[frozenset({"ann", "cat"})] >= 0.9
    assert pairs[frozenset({"ann", "ben"})] < 0.3
