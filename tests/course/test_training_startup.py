"""What a student's `check` of the training assignment loads (issue 17): the digits come from
the file shipped with the tests, not from scikit-learn, and the trusted grader loads neither
scikit-learn nor torch (torch runs in the student's process, whose fork server imports it
while the grader collects the tests)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, as_root

TRAINING = REPO / "assignments" / "training"
DIGITS = TRAINING / "tests" / "digits.npz"


def _make_digits():
    spec = importlib.util.spec_from_file_location("make_digits", TRAINING / "make_digits.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_shipped_digits_are_scikit_learns_exactly():
    pytest.importorskip("sklearn", reason="scikit-learn is what the file is compared with")
    from sklearn.datasets import load_digits

    digits = load_digits()
    with np.load(DIGITS) as shipped:  # no allow_pickle: plain arrays only
        pixels, labels = shipped["pixels"], shipped["labels"]
        assert "load_digits" in str(shipped["provenance"])
    assert np.array_equal(pixels.astype(np.float64), digits.data)
    assert np.array_equal(labels.astype(np.int64), digits.target)
    # What the tests compute from it is what they computed from load_digits() before.
    ours = (pixels.astype(np.float64) / 16.0).astype(np.float32)
    assert np.array_equal(ours, (digits.data / 16.0).astype(np.float32))


def test_regenerating_the_digits_gives_the_same_bytes(tmp_path):
    pytest.importorskip("sklearn", reason="the file is generated from scikit-learn's copy")
    make_digits = _make_digits()
    out = tmp_path / "digits.npz"
    make_digits.write_npz(make_digits.digit_arrays(), out)
    assert out.read_bytes() == DIGITS.read_bytes()


def test_the_release_ships_the_same_digits_and_its_tests_read_them_without_sklearn():
    released = REPO / "release" / "training" / "tests"
    assert (released / "digits.npz").read_bytes() == DIGITS.read_bytes()
    for tests in (TRAINING / "tests", released):
        source = (tests / "test_training_public.py").read_text()
        assert "sklearn" not in source and "import torch\n" not in source.split("def ")[0]


# --- a real `check`, the grader's modules recorded as it exits --------------------------------
_RECORDING_CHECK = """
import json, os, sys
pid, real_exit = os.getpid(), os._exit

def record():
    if os.getpid() == pid:  # not a forked child of the grader
        with open({out!r}, "w") as f:
            json.dump(sorted(sys.modules), f)

def exit_recording(code):
    record()
    real_exit(code)

os._exit = exit_recording
sys.argv = ["autograder", *{argv!r}]
from autograder.cli import main
try:
    main()
finally:
    record()
"""


def _check_loads(folder: Path, tmp_path: Path, argv: tuple[str, ...] = ("check",)
                 ) -> tuple[set[str], subprocess.CompletedProcess]:
    """The modules the grader's process held when ``autograder ARGV`` (run in ``folder``)
    exited, and how the command ended."""
    out = tmp_path / "modules.json"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    code = _RECORDING_CHECK.format(out=str(out), argv=list(argv))
    result = subprocess.run([sys.executable, "-c", code],
                            cwd=folder, capture_output=True, text=True, timeout=300, env=env)
    assert out.exists(), result.stdout + result.stderr
    return set(json.loads(out.read_text())), result


def _tops(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


@pytest.mark.skipif(not as_root(), reason="check uses the full process sandbox")
def test_check_of_training_runs_torch_only_in_the_students_process(tmp_path):
    mine = tmp_path / "training"
    shutil.copytree(REPO / "release" / "training", mine)
    shutil.copy(REPO / "solutions" / "training" / "train.py", mine / "train.py")
    loaded, result = _check_loads(mine, tmp_path)
    assert "5 of 5 public tests pass" in result.stdout, result.stdout + result.stderr
    assert not _tops(loaded) & {"torch", "sklearn", "scipy", "pandas"}, \
        sorted(m for m in loaded if _tops({m}) & {"torch", "sklearn", "scipy", "pandas"})[:10]


@pytest.mark.skipif(not as_root(), reason="check uses the full process sandbox")
def test_check_of_softmax_loads_neither_torch_nor_sklearn(tmp_path):
    mine = tmp_path / "softmax"
    shutil.copytree(REPO / "release" / "softmax", mine)
    shutil.copy(REPO / "solutions" / "softmax" / "softmax.py", mine / "softmax.py")
    loaded, result = _check_loads(mine, tmp_path)
    assert "public tests pass" in result.stdout, result.stdout + result.stderr
    assert not _tops(loaded) & {"torch", "sklearn", "scipy", "pandas"}


@pytest.mark.skipif(not as_root(), reason="grading uses the full process sandbox")
def test_grading_training_with_its_hidden_tests_loads_no_sklearn(tmp_path):
    upload = tmp_path / "alice.py"
    shutil.copy(REPO / "solutions" / "training" / "train.py", upload)
    loaded, result = _check_loads(tmp_path, tmp_path, (
        "grade", "training", str(upload), "--output", str(tmp_path / "out"),
        "--course", str(REPO)))
    scores = json.loads((tmp_path / "out" / "alice" / "results.json").read_text())
    assert scores["score"] == scores["max_score"] > 0, result.stdout + result.stderr
    assert "torch" in _tops(loaded)  # the hidden tests replay the reference's training here
    assert not _tops(loaded) & {"sklearn", "scipy", "pandas"}


def test_the_recorder_sees_a_library_the_grader_loads(tmp_path):
    """The check above can fail: a public test that imports torch at its top shows up."""
    mine = tmp_path / "training"
    shutil.copytree(REPO / "release" / "training", mine)
    test = mine / "tests" / "test_training_public.py"
    test.write_text("import torch\n" + test.read_text())
    if not as_root():
        pytest.skip("check uses the full process sandbox")
    loaded, _ = _check_loads(mine, tmp_path)
    assert "torch" in _tops(loaded)


@pytest.mark.parametrize("source, compiler", [
    ("import torch\nopt = torch.optim.Adam(params)\n", True),
    ("from torch import optim\n", True),
    ("from torch.optim import SGD\n", True),
    ("import torch.optim.lr_scheduler\n", True),
    ("import torch\nfrom torch import nn\n", False),
])
def test_the_fork_server_imports_torchs_compiler_only_for_modules_using_torch_optim(
        tmp_path, source, compiler):
    from autograder.harness.session import runner_preload

    module = tmp_path / "train.py"
    module.write_text(source)
    preload = runner_preload([module])
    assert "torch" in preload
    assert ("torch._dynamo" in preload) is compiler


def test_training_preloads_torch_without_its_compiler():
    """training_support builds the optimizers without torch.optim, so no runner of training
    needs torch._dynamo (1.2 s of the fork server's start, on a check's critical path)."""
    from autograder.course import Course
    from autograder.harness.grader import preload_for
    from autograder.harness.session import runner_preload

    assert preload_for(Course(REPO).assignment("training")) == ("numpy", "torch")
    assert runner_preload((REPO / "release/training").glob("*.py")) == ("numpy", "torch")


@pytest.mark.skipif(not as_root(), reason="grades through the full process sandbox")
def test_a_submission_using_torch_optim_itself_imports_the_compiler_in_its_sandbox(tmp_path):
    """The fork server no longer preloads torch._dynamo for training: a student's module that
    makes a torch.optim optimizer imports it inside the sandbox, and is graded as before."""
    from autograder.course import Course
    from autograder.harness.grader import grade_uploads

    source = (REPO / "solutions" / "training" / "train.py").read_text()
    source = source.replace("import torch\n", "import torch\nimport torch.optim\n", 1).replace(
        "    mlp = nn.Sequential(",
        "    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)\n"
        "    mlp = nn.Sequential(", 1)
    assert "torch.optim.SGD" in source
    upload = tmp_path / "optim_user.py"
    upload.write_text(source)
    result, = grade_uploads(Course(REPO).assignment("training"), [upload], hidden=False)
    assert result.score == result.max_score > 0, [(t.name, t.output) for t in result.tests]
