"""Public checks for the training assignment: run them with `autograder check` in the release
folder. They test your code against itself and against values worked out here (a model with
known weights, a short training run on a validation split of the digits); the grader also runs
hidden tests on its own held-out images, so passing these is necessary but not sufficient.

Sizes: the learning check trains build_model() for 20 epochs on 1,000 of the digit images
(Adam, lr 3e-3, batches of 64; about half a second for a small MLP) and measures the accuracy
on 437 others; everything else uses a few hundred images at most.
"""

from pathlib import Path

import numpy as np
import pytest

from autograder.checks import assert_accuracy, assert_close, assert_shape
from autograder.harness.remote import ImportFailed

VALIDATION_SEED = 7
# scikit-learn's load_digits() as arrays (see the file's `provenance`); read here rather than
# from scikit-learn, whose import took two seconds of every check. These tests compute their
# expected values with numpy: torch runs in your process only.
DIGITS = Path(__file__).resolve().parent / "digits.npz"


def _digits():
    """The 1,797 digit images, pixels scaled to [0, 1] (float32), and their labels (int64)."""
    with np.load(DIGITS) as digits:
        x = (digits["pixels"].astype(np.float64) / 16.0).astype(np.float32)
        y = digits["labels"].astype(np.int64)
    return x, y


def _cross_entropy(logits, labels):
    """The mean cross-entropy of float64 ``logits`` (N, C) against ``labels`` (N,), computed as
    ``torch.nn.functional.cross_entropy`` does (log-softmax, then the mean negative log
    likelihood)."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(labels)), labels].mean())


def _type_name(value):
    # A tensor crosses from your process as an array: this process does not load torch.
    return "Tensor (or array)" if isinstance(value, np.ndarray) else type(value).__name__


def _support(submission):
    """training_support.py in the student process; when it is missing there (the grader always
    provides it), the same helpers built from torch directly, see _TorchHelpers."""
    support = submission.module("training_support")
    try:
        support.default_device()
    except ImportFailed:
        return _TorchHelpers(submission)
    return support


def _local_torch():
    """torch in this process: only _TorchHelpers needs it, to send tensors."""
    import torch

    return torch


class _TorchHelpers:
    """What these public tests need from training_support, made from torch's own classes in
    the student process: the fallback for a folder without training_support.py (then the
    optimizers are torch.optim's own, whose first use in a process takes a few seconds)."""

    def __init__(self, submission):
        self._torch = submission.module("torch")
        self._nn = submission.module("torch.nn")
        self._data = submission.module("torch.utils.data")
        self._optim = submission.module("torch.optim")
        self._builtins = submission.module("builtins")

    def default_device(self):
        return "cpu"

    def seed(self, value):
        self._torch.manual_seed(int(value))

    def is_module(self, value):
        return self._builtins.isinstance(value, self._nn.Module.get())

    def parameters(self, model):
        return [np.asarray(p) for p in self._builtins.list(model.parameters())]

    def count_parameters(self, model):
        return int(sum(p.size for p in self.parameters(model)))

    def predict(self, model, x, device="cpu"):
        model.eval()
        torch = _local_torch()
        out = model(torch.as_tensor(np.asarray(x), dtype=torch.float32))
        model.train()
        return np.asarray(out)

    def make_optimizer(self, model, name="adam", lr=1e-3):
        make = self._optim.Adam if name == "adam" else self._optim.SGD
        return make(model.parameters(), lr=lr)

    def make_loader(self, x, y, batch_size, shuffle=False, seed=0):
        torch = _local_torch()
        dataset = self._data.TensorDataset(torch.as_tensor(np.asarray(x), dtype=torch.float32),
                                           torch.as_tensor(np.asarray(y), dtype=torch.int64))
        generator = self._torch.Generator().manual_seed(int(seed)) if shuffle else None
        return self._data.DataLoader(dataset, batch_size=int(batch_size), shuffle=shuffle,
                                     generator=generator)

    def make_linear(self, weight, bias):
        linear = self._nn.Linear(weight.shape[1], weight.shape[0])
        torch = _local_torch()
        linear.load_state_dict({"weight": torch.from_numpy(weight),
                                "bias": torch.from_numpy(bias)})
        return linear


@pytest.mark.points(1)
def test_build_model_maps_64_features_to_10_logits(submission, student):
    support = _support(submission)
    x, _ = _digits()
    model = student.build_model()
    if not support.is_module(model):
        raise AssertionError(f"build_model() returned {model!r}; it should return a "
                             f"torch.nn.Module")
    out = support.predict(model, x[:5], "cpu")
    out = assert_shape(out, (5, 10), name="build_model()(x) for x of shape (5, 64)")
    if np.all(out == out[:1]):
        raise AssertionError("build_model() gives the same 10 outputs for 5 different images: "
                             "a network computes its logits from its input")
    if np.all(out == out[:, :1]):
        raise AssertionError("build_model() gives all 10 classes the same score for every "
                             "image, so it cannot tell them apart: return a freshly initialised "
                             "network (nn.Linear initialises its weights at random)")
    n = support.count_parameters(model)
    if not 0 < n <= 1_000_000:
        raise AssertionError(f"build_model() has {n} trainable parameters: a small MLP "
                             f"(a few thousand to a hundred thousand) is enough and trains in "
                             f"the time budget")


@pytest.mark.points(1)
def test_train_returns_one_float_per_epoch(submission, student, rng):
    # A linear model with known weights and SGD with lr = 0: the weights never change, so every
    # epoch's mean loss is exactly the loss of these weights on all 256 images, computed here.
    support = _support(submission)
    x, y = _digits()
    x, y = x[:256], y[:256]
    weight = (rng.normal(size=(10, 64)) * 0.3).astype(np.float32)
    bias = (rng.normal(size=10) * 0.1).astype(np.float32)
    model = support.make_linear(weight, bias)
    optimizer = support.make_optimizer(model, "sgd", lr=0.0)
    loader = support.make_loader(x, y, 32, shuffle=True, seed=0)
    losses = student.train(model, loader, optimizer, 3, "cpu")
    if not isinstance(losses, (list, tuple)) or len(losses) != 3:
        raise AssertionError(f"train(..., epochs=3, ...) returned {losses!r}; it should return "
                             f"a list of 3 floats, the mean loss of each epoch")
    for i, value in enumerate(losses):
        if not (type(value) is float or isinstance(value, np.floating)):
            raise AssertionError(f"epoch loss {i} is a {_type_name(value)}, not a Python "
                                 f"float: add loss.item() to the running sum, not loss")
    logits = x.astype(np.float64) @ weight.astype(np.float64).T + bias.astype(np.float64)
    expected = _cross_entropy(logits, y)
    assert_close(np.array(losses, dtype=np.float64), np.full(3, expected), rtol=1e-4,
                 name="epoch losses with lr = 0",
                 hint="with lr = 0 the weights never change, so each epoch's loss is the mean "
                      "per-example loss of the model on the whole loader: add "
                      "loss.item() * x.shape[0] for every batch, divide by the number of "
                      "examples, and start from 0 in every epoch")


@pytest.mark.points(1)
def test_train_changes_the_parameters(submission, student):
    support = _support(submission)
    x, y = _digits()
    support.seed(0)
    model = student.build_model()
    before = support.parameters(model)
    optimizer = support.make_optimizer(model, "sgd", lr=0.1)
    loader = support.make_loader(x[:128], y[:128], 32)
    student.train(model, loader, optimizer, 1, "cpu")
    after = support.parameters(model)
    changed = sum(not np.array_equal(a, b) for a, b in zip(before, after))
    if changed == 0:
        raise AssertionError("no parameter changed during training: call loss.backward() and "
                             "then optimizer.step() for every batch")


@pytest.mark.points(1)
def test_evaluate_on_known_predictions(submission, student, rng):
    # A linear model with known weights: its predictions are computed here, so the labels can
    # be chosen to make the accuracy exactly 1, then exactly 0.
    support = _support(submission)
    x, _ = _digits()
    x = x[:90]
    weight = (rng.normal(size=(10, 64)) * 0.5).astype(np.float32)
    bias = np.zeros(10, dtype=np.float32)
    pred = (x @ weight.T).argmax(axis=1)
    model = support.make_linear(weight, bias)
    right = student.evaluate(model, support.make_loader(x, pred, 32), "cpu")
    assert_close(right, 1.0, name="accuracy when every label is the model's prediction",
                 hint="the prediction is logits.argmax(dim=1); the accuracy is correct / total")
    wrong = student.evaluate(model, support.make_loader(x, (pred + 1) % 10, 32), "cpu")
    assert_close(wrong, 0.0, name="accuracy when no label is the model's prediction",
                 hint="count the examples whose argmax equals the label")


@pytest.mark.points(2)
@pytest.mark.time_limit(120)
def test_learns_digits_on_a_validation_split(submission, student):
    # Train on 1,000 images, measure the accuracy on 437 others here (not with your evaluate).
    support = _support(submission)
    x, y = _digits()
    order = np.random.default_rng(VALIDATION_SEED).permutation(len(y))
    train, valid = order[:1000], order[1000:1437]
    support.seed(0)
    model = student.build_model()
    optimizer = support.make_optimizer(model, "adam", lr=3e-3)
    loader = support.make_loader(x[train], y[train], 64, shuffle=True, seed=0)
    device = support.default_device()
    student.train(model, loader, optimizer, 20, device)
    logits = support.predict(model, x[valid], device)
    assert_accuracy(logits, y[valid], 0.93, name="validation accuracy after 20 epochs")
