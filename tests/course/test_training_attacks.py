"""The training assignment's held-out tests cannot be passed without training.

Two attacks, graded through intake and the real process sandbox, each earn 0 on both held-out
tests (the accuracy and the loss decrease):

* a ``build_model()`` that is a lookup table: the 1,797 public digits and their labels, shipped
  in the submission as a data file, answering with the label of the nearest stored image (an
  exact-match table is weaker still: no held-out image is a public row);
* a ``train()`` that never trains and returns made-up, nicely decreasing epoch losses.

And without a sandbox: the held-out images are in no public data set, and they depend on the
staff-only seed.
"""

from __future__ import annotations

import importlib.util
import textwrap

import numpy as np
import pytest

from autograder.course import Course
from autograder.harness.grader import grade_uploads
from tests.conftest import REPO, as_root

TRAINING = Course(REPO).assignment("training")
HELD_OUT_TESTS = ("test_heldout_accuracy_reaches_threshold",
                  "test_training_lowers_the_held_out_loss")

LOOKUP_TABLE = '''

def build_model():
    """An attack: the public digits and their labels, and the label of the nearest one."""
    import os
    data = np.load(os.path.join(os.path.dirname(os.path.abspath(__file__)), "digits_table.npz"))

    class Lookup(nn.Module):
        def __init__(self):
            super().__init__()
            self.unused = nn.Parameter(torch.zeros(1))
            self.register_buffer("images", torch.tensor(data["images"], dtype=torch.float32))
            self.register_buffer("labels", torch.tensor(data["labels"], dtype=torch.int64))

        def forward(self, x):
            nearest = torch.cdist(x, self.images).argmin(dim=1)
            return nn.functional.one_hot(self.labels[nearest], 10).float() * 10 + self.unused

    return Lookup()
'''

FAKE_LOSSES = '''

def train(model, loader, optimizer, epochs, device):
    """An attack: no training at all, and losses that look like a good run."""
    return [2.3 * 0.8 ** epoch for epoch in range(epochs)]
'''


def _public_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.data / 16.0).astype(np.float32), digits.target.astype(np.int64)


def _hidden_tests():
    """The training assignment's hidden test module, loaded here (staff side) by path."""
    path = TRAINING.hidden_tests_dir / "test_training_hidden.py"
    spec = importlib.util.spec_from_file_location("training_hidden_for_tests", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _submission(folder, extra_source: str):
    """The reference train.py with one function replaced by ``extra_source`` (a later ``def``
    of the same name wins), as a folder upload."""
    folder.mkdir()
    reference = TRAINING.reference_files()["train"].read_text()
    (folder / "train.py").write_text(reference + "\n\nimport numpy as np\n"
                                     + textwrap.dedent(extra_source))
    return folder


@pytest.mark.skipif(not as_root(), reason="grades through the full process sandbox")
def test_lookup_table_and_fabricated_losses_earn_nothing_on_held_out_tests(sandbox, tmp_path):
    lookup = _submission(tmp_path / "lookup_table", LOOKUP_TABLE)
    images, labels = _public_digits()
    np.savez(lookup / "digits_table.npz", images=images, labels=labels)
    fake = _submission(tmp_path / "fake_losses", FAKE_LOSSES)
    results = grade_uploads(TRAINING, [lookup, fake], sandbox=sandbox)
    for result in results:
        scores = {t.name.split("::")[-1]: t for t in result.tests}
        for name in HELD_OUT_TESTS:
            test = scores[name]
            assert test.score == 0 and test.status != "passed", (
                f"{result.submission} earned {test.score} on {name}: {test.output}")
    lookup_result = next(r for r in results if r.submission == "lookup_table")
    accuracy_test = next(t for t in lookup_result.tests if HELD_OUT_TESTS[0] in t.name)
    # It failed for the right reason: it was accurate before training (so its own code ran).
    assert "before train() ran" in accuracy_test.output, accuracy_test.output


def test_held_out_images_are_in_no_public_data_set():
    hidden = _hidden_tests()
    public, _ = _public_digits()
    _, _, held_out, held_labels = hidden._digits()
    assert held_out.shape == (hidden.HELD_OUT, 64)
    # No held-out image is a row of the public digits: an exact lookup finds nothing.
    matches = (np.abs(held_out[:, None, :] - public[None, :, :]).sum(axis=2) == 0).any(axis=1)
    assert not matches.any(), f"{int(matches.sum())} held-out images are public digits"
    # Every class is there, in about equal numbers.
    assert np.bincount(held_labels, minlength=10).min() >= hidden.HELD_OUT // 20


def test_held_out_images_depend_on_the_staff_only_seed():
    hidden = _hidden_tests()
    assert hidden.HELD_OUT_SEED_FILE.is_relative_to(TRAINING.solution_dir), (
        "the held-out seed must live with the staff-only solutions")
    x, y = _public_digits()
    first, _ = hidden._held_out_images(x[:360], y[:360], 1)
    again, _ = hidden._held_out_images(x[:360], y[:360], 1)
    other, _ = hidden._held_out_images(x[:360], y[:360], 2)
    np.testing.assert_array_equal(first, again)
    assert np.mean(np.all(first == other, axis=1)) < 0.05
    # Nothing a student gets names the seed file or holds the generator.
    for path in TRAINING.release_dir.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert "heldout_seed" not in text and "_held_out_images" not in text, path
