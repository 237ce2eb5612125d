"""Hidden tests for the training assignment.

The trust boundary: this (trusted) process loads scikit-learn's digits (the copy shipped with
the public tests, ``digits.npz``), fixes the split and the seeds, and sends the student process
only the training arrays and the held-out *inputs*. The held-out labels never leave this
process; the accuracy and the loss are computed here from the logits that come back.

The held-out images are in no public data set: they are new digits made here from the 360
public images kept out of training (see :func:`_held_out_images`), with randomness drawn from
the staff-only seed in ``solutions/training/heldout_seed.txt``. A submission that stores the
public digits and their labels finds none of these images in its table, and one that classifies
them without training (a nearest-neighbour table, pre-trained weights) is refused because the
model is measured before training too. "Training lowers the loss" is measured here, on the
held-out images, before and after training, never read from what ``train()`` returns. Loaders, optimizers and probes are built inside the
student process by the public support module ``training_support`` and reach the student's
functions as handles.

Sizes: the held-out test trains ``build_model()`` for 30 epochs (6 calls of 5 epochs) on
1,437 images of 64 features and measures 500 held-out images with Adam (lr 3e-3, batches of 64; training_support's Adam, which
is torch.optim.Adam's update), under a 60 s training budget measured here; a correct MLP needs
about half a second. The replay tests train a given ``64 -> 32 -> 10`` MLP for 3 epochs on 200
images (batches of 50, SGD with lr 0.1 and momentum 0.9) and compare with the reference
solution run here on the same weights and batch order; the evaluate tests use 103 images.

The probes (optimizer spy, recording loader, mode probe, loss recorder) live in the student
process, so a submission could tamper with them. That is acceptable: it could only misreport
its own behaviour, and every test that credits a behaviour also checks a result computed here.
"""

import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from autograder.checks import assert_accuracy, assert_close, assert_shape, accuracy

pytestmark = pytest.mark.visibility("after_due_date")

SPLIT_SEED = 20260918
KEPT_OUT = 360            # public images kept out of training: the material of the held-out set
HELD_OUT = 500            # held-out images made from them
HELD_OUT_SEED_FILE = Path(__file__).resolve().parents[1] / "heldout_seed.txt"  # staff only
# scikit-learn's load_digits() as arrays, shipped with the public tests (see its provenance and
# assignments/training/make_digits.py): importing scikit-learn cost seconds of every grading run.
DIGITS_FILE = (Path(__file__).resolve().parents[3] / "assignments" / "training" / "tests"
               / "digits.npz")
UNTRAINED_MAX_ACCURACY = 0.5   # a fresh network is near 0.10 before training
THRESHOLD = 0.95
EPOCHS = 30
CHUNK = 5                 # epochs per call of the student's train, so the budget is watched
BUDGET_S = 60.0           # training budget on one CPU thread
BATCH = 64
LR = 3e-3

REPLAY_N, REPLAY_BATCH, REPLAY_EPOCHS, REPLAY_HIDDEN = 200, 50, 3, 32
REPLAY_LR, REPLAY_MOMENTUM = 0.1, 0.9

HINT_LOOP = ("for each batch: optimizer.zero_grad(), logits = model(x), "
             "loss = nn.CrossEntropyLoss()(logits, y), loss.backward(), optimizer.step()")
HINT_EPOCH_LOSS = ("the loss of an epoch is the mean per-example loss over that epoch: "
                   "sum loss.item() * x.shape[0] over the batches, divide by the number of "
                   "examples, and reset the sum at the start of every epoch")


# ------------------------------------------------------------------------------ data, once
_DATA = {}


def _digits():
    """(x_train, y_train, x_held_out, y_held_out): pixels scaled to [0, 1]. Training uses 1,437
    public digits; the held-out images are made from the other 360 (see _held_out_images)."""
    if not _DATA:
        with np.load(DIGITS_FILE) as digits:
            x = (digits["pixels"].astype(np.float64) / 16.0).astype(np.float32)
            y = digits["labels"].astype(np.int64)
        order = np.random.default_rng(SPLIT_SEED).permutation(len(y))
        kept, train = order[:KEPT_OUT], order[KEPT_OUT:]
        x_held, y_held = _held_out_images(x[kept], y[kept], _held_out_seed())
        _DATA["split"] = (x[train], y[train], x_held, y_held)
    return _DATA["split"]


def _held_out_seed():
    """The staff-only secret the held-out images are drawn with."""
    try:
        return int(HELD_OUT_SEED_FILE.read_text().strip(), 16)
    except (OSError, ValueError) as e:
        raise RuntimeError(f"{HELD_OUT_SEED_FILE} (a hex number, staff only) is missing or "
                           f"unreadable: {e}") from None


def _held_out_images(x, y, seed, neighbours=4):
    """HELD_OUT new digit images, none of them in a public data set. Each blends a digit of
    ``x`` with one of its ``neighbours`` nearest digits of the same class (weights 0.25 to
    0.75), adds pixel noise, and rounds to the 1/16 grid of the originals. The digits of ``x``
    are kept out of training, so the model has seen neither source; all randomness comes from
    ``seed``, so without it nobody can make the same images."""
    rng = np.random.default_rng(seed)
    images = np.empty((HELD_OUT, x.shape[1]), dtype=np.float32)
    labels = np.empty(HELD_OUT, dtype=np.int64)
    for k in range(HELD_OUT):
        i = int(rng.integers(len(y)))
        same = np.flatnonzero(y == y[i])
        same = same[same != i]
        nearest = same[np.argsort(((x[same] - x[i]) ** 2).sum(axis=1))[:neighbours]]
        j = int(nearest[rng.integers(len(nearest))])
        blend = rng.uniform(0.25, 0.75)
        image = blend * x[i] + (1 - blend) * x[j] + rng.normal(scale=1 / 16, size=x.shape[1])
        images[k] = np.clip(np.round(image * 16), 0, 16) / 16
        labels[k] = y[i]
    return images, labels


# One full training run per submission, shared by the tests that look at it. Keyed by the
# submission's id (unique within a grading session) and cleared at the start and end of the
# session, so a later session in the same process never sees another run's results.
_FULL_RUNS = {}


@pytest.fixture(scope="module", autouse=True)
def _fresh_cache():
    _FULL_RUNS.clear()
    yield
    _FULL_RUNS.clear()


def _support(submission):
    return submission.module("training_support")


def _full_run(submission, student):
    """Train build_model() on the digits under the budget; the result is cached per submission.

    Returns dict(losses, elapsed, epochs_done, logits_before, logits): the held-out logits of
    the model as build_model() returned it and after training. A failure is cached too: a student
    error is raised again as it was; a timeout or crash becomes a plain failure of the later
    tests (their own time limit was not the one that ran out).
    """
    cached = _FULL_RUNS.get(submission.id)
    if isinstance(cached, BaseException):
        raise cached
    if cached is not None:
        return cached
    try:
        run = _train_on_digits(submission, student)
    except AssertionError as e:
        _FULL_RUNS[submission.id] = e
        raise
    except Exception as e:  # the student's code failed (error, timeout, crash)
        outcome = getattr(e, "outcome", "error")
        if outcome in ("error", "not_implemented"):
            _FULL_RUNS[submission.id] = e
            raise
        _FULL_RUNS[submission.id] = AssertionError(
            f"training build_model() on the digits failed ({outcome}: {e}), so this test "
            f"cannot check its results")
        raise
    _FULL_RUNS[submission.id] = run
    return run


def _train_on_digits(submission, student):
    support = _support(submission)
    x_train, y_train, x_test, _ = _digits()
    device = support.default_device()
    support.seed(0)
    model = student.build_model()
    if not support.is_module(model):
        raise AssertionError(f"build_model() returned {model!r}, not a torch.nn.Module")
    # The held-out inputs only (the labels stay here), before any training.
    logits_before = support.predict(model, x_test, device)
    optimizer = support.make_optimizer(model, "adam", lr=LR)
    loader = support.make_loader(x_train, y_train, BATCH, shuffle=True, seed=0)
    losses = []
    start = time.monotonic()
    done = 0
    while done < EPOCHS:
        chunk = student.train(model, loader, optimizer, CHUNK, device)
        if not isinstance(chunk, (list, tuple)):
            raise AssertionError(f"train(...) returned {type(chunk).__name__}; it should return "
                                 f"a list with one loss per epoch")
        losses.extend(chunk)
        done += CHUNK
        if time.monotonic() - start > BUDGET_S:
            break
    elapsed = time.monotonic() - start
    logits = support.predict(model, x_test, device)
    return {"losses": losses, "elapsed": elapsed, "epochs_done": done,
            "logits_before": logits_before, "logits": logits}


def _held_out_logits(run, key):
    return assert_shape(run[key], (HELD_OUT, 10), name="logits of the held-out images")


def _cross_entropy(logits, labels):
    """Mean cross-entropy of logits, computed here in float64."""
    return float(torch.nn.functional.cross_entropy(
        torch.from_numpy(np.asarray(logits, dtype=np.float64)), torch.from_numpy(labels)))


# ------------------------------------------------------------------------- held-out accuracy


@pytest.mark.points(8)
@pytest.mark.time_limit(150)
def test_heldout_accuracy_reaches_threshold(submission, student):
    """build_model() trained by train() for 30 epochs (Adam, lr 3e-3, batches of 64 from 1,437
    images) must reach 95% accuracy on 500 held-out images, within 60 s of training; the points
    are for what training achieves, so the model must not be accurate before training."""
    run = _full_run(submission, student)
    _, _, _, y_test = _digits()
    acc_before = accuracy(_held_out_logits(run, "logits_before"), y_test)
    if acc_before > UNTRAINED_MAX_ACCURACY:
        raise AssertionError(
            f"the model build_model() returned already classified {acc_before:.0%} of the "
            f"held-out images before train() ran (a freshly initialised network gets about "
            f"10%): build_model() must return a new, untrained network (no pre-trained weights, "
            f"no stored images or labels); the points are for what your training achieves")
    logits = _held_out_logits(run, "logits")
    acc = accuracy(logits, y_test)
    if run["epochs_done"] < EPOCHS and acc < THRESHOLD:
        raise AssertionError(
            f"the training budget of {BUDGET_S:g} s ran out after {run['epochs_done']} of "
            f"{EPOCHS} epochs ({run['elapsed']:.1f} s) with a held-out accuracy of {acc:.4f}, "
            f"below the required {THRESHOLD:.2f}. A small MLP needs about a second for all 30 "
            f"epochs: make the model smaller, and keep printing, .cpu() copies and Python loops "
            f"over examples out of the training loop")
    try:
        assert_accuracy(logits, y_test, THRESHOLD, name="held-out accuracy")
    except AssertionError as e:
        raise AssertionError(
            f"{e} after {run['epochs_done']} epochs. A loop without optimizer.zero_grad() lands "
            f"far below (0.5 to 0.8), one without optimizer.step() near 0.10; check "
            f"{HINT_LOOP}, and that build_model() returns logits for 10 classes") from None


@pytest.mark.points(1)
@pytest.mark.time_limit(150)
def test_training_lowers_the_held_out_loss(submission, student):
    """The grader's own measure of the held-out run: the mean cross-entropy of the held-out
    images, computed here from the model's logits before and after training, must fall below
    half its starting value (a correct loop takes it from about 2.3 to below 0.1). What train()
    returns is not used here."""
    run = _full_run(submission, student)
    _, _, _, y_test = _digits()
    before = _cross_entropy(_held_out_logits(run, "logits_before"), y_test)
    after = _cross_entropy(_held_out_logits(run, "logits"), y_test)
    if not np.isfinite(after):
        raise AssertionError("after training, the model's held-out loss is NaN or infinite: "
                             "the training diverged. " + HINT_LOOP)
    if abs(after - before) <= 1e-6 * max(abs(before), 1.0):
        raise AssertionError(
            f"the model's held-out loss is {before:.4g} before and after training: the "
            f"parameters never changed. Call loss.backward() and then optimizer.step() for every "
            f"batch, with optimizer.zero_grad() before the backward pass, not between it and the "
            f"step")
    if not after < 0.5 * before:
        raise AssertionError(
            f"training took the model's held-out loss only from {before:.3g} to {after:.3g} (a "
            f"correct loop gets below a tenth of it). A loss that stays above about "
            f"1.46 = log(1 + 9/e) means probabilities, not logits, reach CrossEntropyLoss: no "
            f"softmax in build_model() or before the loss; otherwise check " + HINT_LOOP)


# ------------------------------------------------------------- replay against the reference


class _Batches:
    """What the reference's train iterates in this process: the batches of ``orders[k]`` on
    the k-th pass, like the support module's loader."""

    def __init__(self, x, y, orders, batch_size):
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)
        self.orders, self.batch_size, self.passes = orders, batch_size, 0

    def __iter__(self):
        order = self.orders[min(self.passes, len(self.orders) - 1)]
        self.passes += 1
        for start in range(0, len(order), self.batch_size):
            idx = torch.as_tensor(order[start:start + self.batch_size])
            yield self.x[idx], self.y[idx]

    def __len__(self):
        return math.ceil(len(self.orders[0]) / self.batch_size)


def _torch_mlp(weights):
    """The same model as training_support.make_mlp, in this process."""
    w1, b1, w2, b2 = (torch.tensor(w, dtype=torch.float32) for w in weights)
    model = nn.Sequential(nn.Linear(w1.shape[1], w1.shape[0]), nn.ReLU(),
                          nn.Linear(w2.shape[1], w2.shape[0]))
    with torch.no_grad():
        for p, w in zip(model.parameters(), (w1, b1, w2, b2)):
            p.copy_(w)
    return model


def _replay_setup(rng, shuffled=True):
    x_train, y_train, _, _ = _digits()
    x, y = x_train[:REPLAY_N], y_train[:REPLAY_N]
    d, h, c = x.shape[1], REPLAY_HIDDEN, 10
    weights = [rng.uniform(-1, 1, size=(h, d)) / math.sqrt(d), rng.uniform(-1, 1, size=h) * 0.1,
               rng.uniform(-1, 1, size=(c, h)) / math.sqrt(h), rng.uniform(-1, 1, size=c) * 0.1]
    weights = [w.astype(np.float32) for w in weights]
    if shuffled:
        orders = [rng.permutation(REPLAY_N) for _ in range(REPLAY_EPOCHS)]
    else:
        orders = [np.arange(REPLAY_N)] * REPLAY_EPOCHS
    return x, y, weights, orders


class _MomentumSGD:
    """torch.optim.SGD's update with momentum (what training_support.SGD computes), written out
    because the first torch.optim optimizer of a process imports torch's compiler (seconds)."""

    def __init__(self, params, lr, momentum):
        self.params, self.lr, self.momentum, self.buffers = list(params), lr, momentum, {}

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self):
        for p in self.params:
            if p.grad is None:
                continue
            buf = self.buffers.get(p)
            if buf is None:
                buf = self.buffers[p] = torch.clone(p.grad).detach()
            else:
                buf.mul_(self.momentum).add_(p.grad)
            p.add_(buf, alpha=-self.lr)


def _expected(reference, x, y, weights, orders):
    """The reference's losses and final weights on this setup, computed here on the CPU."""
    model = _torch_mlp(weights)
    optimizer = _MomentumSGD(model.parameters(), lr=REPLAY_LR, momentum=REPLAY_MOMENTUM)
    losses = reference.train(model, _Batches(x, y, orders, REPLAY_BATCH), optimizer,
                             REPLAY_EPOCHS, "cpu")
    return losses, [p.detach().numpy().copy() for p in model.parameters()]


def _student_replay(submission, student, x, y, weights, orders, probe=False, eval_first=False):
    """The same training in the student process, with the optimizer spied on and the loader
    recording its batches. Returns (losses, weights after, events, probe records)."""
    support = _support(submission)
    device = support.default_device()
    model = support.make_mlp(weights)
    log = support.EventLog()
    optimizer = support.make_optimizer(model, "sgd", lr=REPLAY_LR, momentum=REPLAY_MOMENTUM)
    support.spy_optimizer(optimizer, log, model)
    trained = support.probe(model) if probe else model
    if eval_first:
        support.set_training(trained, False)
    loader = support.make_loader(x, y, REPLAY_BATCH, orders=orders, log=log)
    losses = student.train(trained, loader, optimizer, REPLAY_EPOCHS, device)
    records = trained.records() if probe else None
    return losses, support.parameters(model), log.get(), records


def _is_number(value):
    """A Python float or a numpy floating scalar (np.mean of floats gives one): no tensor,
    no array, no graph."""
    return type(value) is float or isinstance(value, np.floating)


def _assert_weights(actual, expected, hint):
    if not isinstance(actual, list) or len(actual) != len(expected):
        raise AssertionError("the model's parameters could not be read back")
    names = ["first layer weight", "first layer bias", "second layer weight",
             "second layer bias"]
    for a, e, name in zip(actual, expected, names):
        assert_close(a, e, rtol=1e-3, atol=1e-5, name=f"{name} after training", hint=hint)


def _assert_losses(losses, expected, hint=HINT_EPOCH_LOSS):
    if not isinstance(losses, (list, tuple)):
        raise AssertionError(f"train(...) returned {type(losses).__name__}; it should return a "
                             f"list with one loss per epoch")
    if len(losses) != len(expected):
        raise AssertionError(f"train(..., epochs={len(expected)}, ...) returned {len(losses)} "
                             f"losses; it should return one per epoch")
    values = [float(np.asarray(v)) if not isinstance(v, torch.Tensor) else float(v)
              for v in losses]
    assert_close(np.array(values), np.array(expected), rtol=1e-4, atol=1e-6,
                 name="epoch losses", hint=hint)


@pytest.mark.points(3)
def test_train_updates_weights_like_reference(submission, student, reference, rng):
    """A given 64-32-10 MLP trained for 3 epochs (SGD lr 0.1, momentum 0.9, batches of 50 of
    200 images, the same order each epoch): its final weights match the reference's."""
    x, y, weights, orders = _replay_setup(rng, shuffled=False)
    _, expected = _expected(reference, x, y, weights, orders)
    _, actual, _, _ = _student_replay(submission, student, x, y, weights, orders)
    _assert_weights(actual, expected,
                    hint=f"{HINT_LOOP}; the loss must be computed on the raw logits")


@pytest.mark.points(2)
def test_train_epoch_losses_match_reference(submission, student, reference, rng):
    """The 3 epoch losses of the same run match the reference's."""
    x, y, weights, orders = _replay_setup(rng, shuffled=False)
    expected, _ = _expected(reference, x, y, weights, orders)
    losses, _, _, _ = _student_replay(submission, student, x, y, weights, orders)
    _assert_losses(losses, expected)


@pytest.mark.points(1)
def test_train_returns_python_floats(submission, student, reference, rng):
    """The epoch losses are Python floats (loss.item()), not tensors, and correct."""
    x, y, weights, orders = _replay_setup(rng, shuffled=False)
    expected, _ = _expected(reference, x, y, weights, orders)
    losses, _, _, _ = _student_replay(submission, student, x, y, weights, orders)
    if isinstance(losses, (list, tuple)):
        wrong = [type(v).__name__ for v in losses if not _is_number(v)]
        if wrong:
            what = "tensor" if any(isinstance(v, torch.Tensor) for v in losses) else wrong[0]
            raise AssertionError(
                f"train(...) returned epoch losses of type {what}, not Python floats. Add "
                f"loss.item() (a float) to the running sum: adding the loss tensor keeps the "
                f"computation graph of every batch alive until the end of the epoch")
    _assert_losses(losses, expected)


@pytest.mark.points(1)
def test_train_iterates_loader_in_order(submission, student, reference, rng):
    """The loader hands out a different order each epoch; train() must use every batch in the
    order given (the final weights then match the reference's on that order)."""
    x, y, weights, orders = _replay_setup(rng, shuffled=True)
    _, expected = _expected(reference, x, y, weights, orders)
    _, actual, events, _ = _student_replay(submission, student, x, y, weights, orders)
    batches = REPLAY_EPOCHS * math.ceil(REPLAY_N / REPLAY_BATCH)
    got = events.count("batch")
    if got != batches:
        raise AssertionError(
            f"the loader handed out {got} batches over {REPLAY_EPOCHS} epochs, but it holds "
            f"{batches // REPLAY_EPOCHS} per epoch ({batches} in all): iterate over the loader "
            f"itself, `for x, y in loader`, once per epoch, without skipping batches")
    _assert_weights(actual, expected,
                    hint="the weights depend on the order of the batches: use the batches in "
                         "the order the loader gives them (do not shuffle, sort or collect "
                         "them yourself; shuffling is the loader's job)")


def _windows(events):
    """The events after each batch was handed out, up to the next batch."""
    windows, current = [], None
    for event in events:
        if event == "batch":
            current = []
            windows.append(current)
        elif current is not None:
            current.append(event)
    return windows


@pytest.mark.points(1)
def test_step_once_per_batch(submission, student, reference, rng):
    """optimizer.step() is called exactly once for each batch (spy on the optimizer)."""
    x, y, weights, orders = _replay_setup(rng, shuffled=False)
    _, expected = _expected(reference, x, y, weights, orders)
    _, actual, events, _ = _student_replay(submission, student, x, y, weights, orders)
    windows = _windows(events)
    steps = [w.count("step") for w in windows]
    if events.count("step") == 0:
        raise AssertionError("optimizer.step() was never called: the gradients are computed "
                             "but the parameters never change. Call optimizer.step() after "
                             "loss.backward(), once per batch")
    if not windows or any(s != 1 for s in steps) or events.count("step") != len(windows):
        bad = next((i for i, s in enumerate(steps) if s != 1), 0)
        raise AssertionError(
            f"optimizer.step() should be called once per batch; for batch {bad + 1} it was "
            f"called {steps[bad] if steps else 0} times ({events.count('step')} calls for "
            f"{len(windows)} batches). Call it inside the loop over batches, after "
            f"loss.backward()")
    _assert_weights(actual, expected, hint=HINT_LOOP)


@pytest.mark.points(1)
def test_zero_grad_once_per_batch(submission, student, reference, rng):
    """The gradients are cleared between any two optimizer steps (spy on the optimizer)."""
    x, y, weights, orders = _replay_setup(rng, shuffled=False)
    _, expected = _expected(reference, x, y, weights, orders)
    _, actual, events, _ = _student_replay(submission, student, x, y, weights, orders)
    steps = [i for i, e in enumerate(events) if e == "step"]
    if not steps:
        raise AssertionError("optimizer.step() was never called, so the zero_grad pattern "
                             "cannot be checked; " + HINT_LOOP)
    if "zero_grad" not in events:
        raise AssertionError(
            "optimizer.zero_grad() was never called: PyTorch adds each backward pass's "
            "gradients to .grad, so every step used the sum of all gradients so far. Call "
            "optimizer.zero_grad() once per batch, before loss.backward()")
    missing = [k + 1 for k, (a, b) in enumerate(zip(steps, steps[1:]))
               if "zero_grad" not in events[a + 1:b]]
    if missing:
        raise AssertionError(
            f"the gradients were not cleared between optimizer steps {missing[0]} and "
            f"{missing[0] + 1} ({len(missing)} of {len(steps) - 1} such pairs): call "
            f"optimizer.zero_grad() for every batch, inside the loop over batches, not once "
            f"per epoch")
    _assert_weights(actual, expected, hint=HINT_LOOP)


@pytest.mark.points(1)
def test_train_sets_training_mode(submission, student, reference, rng):
    """A model left in evaluation mode is put back in training mode by train() (a probe
    records model.training at every forward pass); the weights must also be right."""
    x, y, weights, orders = _replay_setup(rng, shuffled=False)
    _, expected = _expected(reference, x, y, weights, orders)
    _, actual, _, records = _student_replay(submission, student, x, y, weights, orders,
                                            probe=True, eval_first=True)
    if not records:
        raise AssertionError("the model was never called during training")
    in_eval = sum(1 for training, _ in records if not training)
    if in_eval:
        raise AssertionError(
            f"{in_eval} of {len(records)} forward passes during training ran in evaluation "
            f"mode: call model.train() at the start of train() (evaluate() switches the model "
            f"to evaluation mode, where dropout and batch norm behave differently)")
    if not all(grad for _, grad in records):
        raise AssertionError("some forward passes during training ran without gradient "
                             "tracking (inside torch.no_grad()), so nothing can be learned")
    _assert_weights(actual, expected, hint=HINT_LOOP)


@pytest.mark.points(2)
def test_raw_logits_reach_cross_entropy(submission, student, reference, rng):
    """The first input that reaches cross-entropy is the model's logits on the first batch,
    as computed here from the known weights (not softmax probabilities)."""
    x, y, weights, orders = _replay_setup(rng, shuffled=False)
    _, expected = _expected(reference, x, y, weights, orders)
    support = _support(submission)
    recorder = support.LossRecorder()
    recorder.install()
    try:
        _, actual, _, _ = _student_replay(submission, student, x, y, weights, orders)
        inputs = recorder.inputs()
    finally:
        recorder.uninstall()
    if not inputs:
        raise AssertionError(
            "torch.nn.CrossEntropyLoss (or torch.nn.functional.cross_entropy) was never "
            "called: use criterion = nn.CrossEntropyLoss() and loss = criterion(logits, y)")
    with torch.no_grad():
        first = _torch_mlp(weights)(torch.from_numpy(x[orders[0][:REPLAY_BATCH]])).numpy()
    got = inputs[0]
    is_probability = (np.all(np.asarray(got) >= 0) and
                      np.allclose(np.asarray(got).sum(axis=-1), 1.0, atol=1e-4))
    hint = ("pass the raw logits, model(x), to nn.CrossEntropyLoss: it applies log-softmax "
            "itself, so a softmax before it squashes the scores twice and slows learning"
            if is_probability else
            "nn.CrossEntropyLoss should receive model(x) for the batch, unchanged")
    assert_close(got, first, rtol=1e-4, atol=1e-5, name="input of CrossEntropyLoss", hint=hint)
    _assert_weights(actual, expected, hint=HINT_LOOP)


# ------------------------------------------------------------------------------- build_model


@pytest.mark.points(1)
def test_build_model_returns_logits(submission, student):
    """build_model()'s outputs on 20 digit images are logits, not probabilities."""
    support = _support(submission)
    x_train, _, _, _ = _digits()
    support.seed(1)
    model = student.build_model()
    out = assert_shape(support.predict(model, x_train[:20], "cpu"), (20, 10),
                       name="build_model()(x) for x of shape (20, 64)")
    out = np.asarray(out, dtype=np.float64)
    if np.all(out == out[:1]):
        raise AssertionError("build_model() gives the same 10 outputs for 20 different images: "
                             "a network computes its logits from its input")
    if np.all(out == out[:, :1]):
        raise AssertionError("build_model() gives all 10 classes the same score for every "
                             "image, so it cannot tell them apart: return a freshly initialised "
                             "network (nn.Linear initialises its weights at random)")
    rows = out.sum(axis=1)
    if np.all(out >= 0) and np.allclose(rows, 1.0, atol=1e-4):
        raise AssertionError("build_model() outputs probabilities (every row sums to 1): "
                             "remove the final softmax; nn.CrossEntropyLoss applies log-softmax "
                             "itself and predictions only need the argmax of the logits")
    if np.all(out <= 0) and np.allclose(np.log(np.exp(out).sum(axis=1)), 0.0, atol=1e-4):
        raise AssertionError("build_model() outputs log-probabilities (log-softmax): return "
                             "the raw logits; nn.CrossEntropyLoss applies log-softmax itself")


# ---------------------------------------------------------------------------------- evaluate


def _evaluate_setup(rng, n=103, batch=25):
    """A fixed linear model, 103 images in batches of 25 (the last holds 3) and labels such
    that the model is right on the first 100 and wrong on the last 3."""
    x_train, _, _, _ = _digits()
    x = x_train[-n:]
    weight = (rng.normal(size=(10, 64)) * 0.5).astype(np.float32)
    bias = (rng.normal(size=10) * 0.1).astype(np.float32)
    with torch.no_grad():
        pred = (torch.from_numpy(x) @ torch.from_numpy(weight).T
                + torch.from_numpy(bias)).argmax(dim=1).numpy()
    labels = pred.copy()
    labels[100:] = (pred[100:] + 1) % 10
    return x, labels.astype(np.int64), weight, bias, batch, float(np.mean(labels == pred))


def _student_evaluate(submission, student, rng, dropout=0.0, probe=False):
    x, labels, weight, bias, batch, expected = _evaluate_setup(rng)
    support = _support(submission)
    model = support.make_linear(weight, bias, dropout)
    if probe:
        model = support.probe(model)
    support.set_training(model, True)
    loader = support.make_loader(x, labels, batch)
    acc = student.evaluate(model, loader, support.default_device())
    return acc, expected, (model.records() if probe else None)


def _assert_accuracy_value(acc, expected):
    if isinstance(acc, (list, tuple, dict)) or acc is None:
        raise AssertionError(f"evaluate(...) returned {type(acc).__name__}; it should return "
                             f"the accuracy as a float")
    assert_close(acc, expected, rtol=1e-6, atol=1e-9, name="accuracy",
                 hint="the accuracy is (number of correct predictions) / (number of examples) "
                      "over the whole loader; here the last batch is smaller than the others, "
                      "so the mean of per-batch accuracies is not the same")


@pytest.mark.points(2)
def test_evaluate_accuracy_matches(submission, student, rng):
    """A fixed linear model on 103 images in batches of 25: the accuracy (100/103) is the
    fraction of correct predictions over the whole loader."""
    acc, expected, _ = _student_evaluate(submission, student, rng)
    _assert_accuracy_value(acc, expected)


@pytest.mark.points(1)
def test_evaluate_returns_python_float(submission, student, rng):
    """evaluate() returns a Python float (not a tensor), with the right value."""
    acc, expected, _ = _student_evaluate(submission, student, rng)
    if not _is_number(acc):
        what = "a tensor" if isinstance(acc, torch.Tensor) else f"a {type(acc).__name__}"
        raise AssertionError(f"evaluate(...) returned {what}, not a Python float: count the "
                             f"correct predictions with (pred == y).sum().item() and divide "
                             f"by the number of examples")
    _assert_accuracy_value(acc, expected)


@pytest.mark.points(1)
def test_evaluate_uses_eval_mode(submission, student, rng):
    """With a model holding dropout (p = 0.5) and left in training mode, evaluate() must switch
    to evaluation mode (a probe records model.training) and get the right accuracy."""
    acc, expected, records = _student_evaluate(submission, student, rng, dropout=0.5,
                                               probe=True)
    if not records:
        raise AssertionError("evaluate(...) never called the model")
    training = sum(1 for t, _ in records if t)
    if training:
        raise AssertionError(
            f"{training} of {len(records)} forward passes in evaluate() ran in training mode: "
            f"call model.eval() first (dropout drops half the features in training mode, so "
            f"the predictions are random)")
    _assert_accuracy_value(acc, expected)


@pytest.mark.points(1)
def test_evaluate_disables_gradients(submission, student, rng):
    """evaluate() runs the model without gradient tracking (a probe records
    torch.is_grad_enabled()) and gets the right accuracy."""
    acc, expected, records = _student_evaluate(submission, student, rng, probe=True)
    if not records:
        raise AssertionError("evaluate(...) never called the model")
    tracked = sum(1 for _, g in records if g)
    if tracked:
        raise AssertionError(
            f"{tracked} of {len(records)} forward passes in evaluate() tracked gradients: wrap "
            f"the loop in `with torch.no_grad():` (evaluation needs no computation graph; "
            f"building one costs memory and time)")
    _assert_accuracy_value(acc, expected)
