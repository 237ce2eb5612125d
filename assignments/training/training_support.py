"""Support code for the training assignment: data loaders, optimizers and probes.

This module is given to you (do not change it; the grader uses its own copy). The tests use it
to build the objects your functions receive: the data loaders, the optimizer, and small models
with known weights. It runs in the same process as your code.

Some helpers are *probes*: they record what your code does, so that the grader can tell you
about mistakes that accuracy alone does not show. :func:`spy_optimizer` records every
``zero_grad()`` and ``step()``, the loaders made here record every batch they hand out, and
:func:`probe` wraps a model to record ``model.training`` and ``torch.is_grad_enabled()`` at each
forward pass. They only observe: they change no result.

(A probe lives in your process, so code could tamper with it; that would only misreport your own
code's behaviour, and the accuracy, the weights and the losses are checked on the grader's side.)
"""

import math

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler, TensorDataset

__all__ = ["default_device", "seed", "make_loader", "make_optimizer", "SGD", "Adam",
           "spy_optimizer", "make_mlp", "make_linear", "probe", "predict", "parameters",
           "set_training", "count_parameters", "is_module", "LossRecorder", "EventLog"]


def default_device():
    """``"cuda"`` when a GPU is available, else ``"cpu"``: the device the tests pass to you."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def seed(value):
    """Seed torch's random number generators (model initialisation, dropout)."""
    torch.manual_seed(int(value))


class EventLog:
    """A list of what happened, in order: ``"batch"``, ``"zero_grad"``, ``"step"``, ..."""

    def __init__(self):
        self.events = []

    def add(self, event):
        self.events.append(event)

    def get(self):
        return list(self.events)

    def clear(self):
        self.events.clear()


class _Schedule(Sampler):
    """Indices in a fixed order per epoch: ``orders[k]`` on the k-th pass (the last one repeats).

    Shuffling is the loader's job: this is how a test knows which examples came in which batch.
    """

    def __init__(self, orders):
        self.orders = [list(map(int, o)) for o in orders]
        self.passes = 0

    def __iter__(self):
        order = self.orders[min(self.passes, len(self.orders) - 1)]
        self.passes += 1
        return iter(order)

    def __len__(self):
        return len(self.orders[0])


def make_loader(x, y, batch_size, shuffle=False, seed=0, orders=None, log=None):
    """A ``torch.utils.data.DataLoader`` over the arrays ``x`` (float32) and ``y`` (int64).

    - ``shuffle``: a new random order each epoch, from a generator seeded with ``seed``.
    - ``orders``: a list of index orders, one per epoch (overrides ``shuffle``).
    - ``log``: an :class:`EventLog`; the loader adds ``"batch"`` each time it hands out a batch.
    """
    dataset = TensorDataset(torch.as_tensor(np.asarray(x), dtype=torch.float32),
                            torch.as_tensor(np.asarray(y), dtype=torch.int64))
    sampler = None
    generator = None
    if orders is not None:
        sampler = _Schedule(orders)
        shuffle = False
    elif shuffle:
        generator = torch.Generator().manual_seed(int(seed))

    def collate(items):
        if log is not None:
            log.add("batch")
        xs = torch.stack([item[0] for item in items])
        ys = torch.stack([item[1] for item in items])
        return xs, ys

    return DataLoader(dataset, batch_size=int(batch_size), shuffle=bool(shuffle),
                      sampler=sampler, generator=generator, collate_fn=collate)


class SGD:
    """Stochastic gradient descent with momentum: the update rule of ``torch.optim.SGD``
    (no dampening, no Nesterov), for every parameter ``p`` with a gradient::

        d = p.grad + weight_decay * p
        buf = d                      (first step)
        buf = momentum * buf + d     (later steps)
        p = p - lr * buf             (p = p - lr * d without momentum)

    It has the interface your ``train`` uses: ``zero_grad()`` and ``step()``.

    (Why not ``torch.optim.SGD`` itself? Creating the first ``torch.optim`` optimizer in a fresh
    process imports torch's compiler, which takes seconds, and the grader starts a fresh process
    for every submission. The arithmetic is the same.)
    """

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
        self.param_groups = [{"params": list(params), "lr": float(lr),
                              "momentum": float(momentum), "weight_decay": float(weight_decay)}]
        self.state = {}

    def zero_grad(self, set_to_none=True):
        """Clear the gradients of all parameters (PyTorch *adds* new gradients to ``.grad``)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.detach_()
                    p.grad.zero_()

    @torch.no_grad()
    def step(self):
        """Update every parameter that has a gradient."""
        for group in self.param_groups:
            lr, momentum, decay = group["lr"], group["momentum"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                d = p.grad if decay == 0 else p.grad.add(p, alpha=decay)
                if momentum != 0:
                    buf = self.state.get(p)
                    if buf is None:
                        buf = self.state[p] = torch.clone(d).detach()
                    else:
                        buf.mul_(momentum).add_(d)
                    d = buf
                p.add_(d, alpha=-lr)


class Adam(SGD):
    """Adam: the update rule of ``torch.optim.Adam`` (no AMSGrad), with ``t`` the step count::

        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        p = p - lr / (1 - beta1**t) * m / (sqrt(v / (1 - beta2**t)) + eps)

    (See :class:`SGD` for why it is written out here.)
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.param_groups = [{"params": list(params), "lr": float(lr), "betas": tuple(betas),
                              "eps": float(eps), "weight_decay": float(weight_decay)}]
        self.state = {}

    @torch.no_grad()
    def step(self):
        """Update every parameter that has a gradient."""
        for group in self.param_groups:
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            decay = group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad if decay == 0 else p.grad.add(p, alpha=decay)
                state = self.state.get(p)
                if state is None:
                    state = self.state[p] = {"t": 0, "m": torch.zeros_like(p),
                                             "v": torch.zeros_like(p)}
                state["t"] += 1
                t, m, v = state["t"], state["m"], state["v"]
                m.lerp_(g, 1 - beta1)
                v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                denom = (v.sqrt() / math.sqrt(1 - beta2 ** t)).add_(eps)
                p.addcdiv_(m, denom, value=-lr / (1 - beta1 ** t))


def make_optimizer(model, name="adam", lr=1e-3, momentum=0.0, weight_decay=0.0):
    """An :class:`Adam` (``name="adam"``) or :class:`SGD` (``name="sgd"``) optimizer over
    ``model.parameters()``: the update rules of ``torch.optim.Adam`` and ``torch.optim.SGD``."""
    if name == "adam":
        return Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}: use 'adam' or 'sgd'")


def spy_optimizer(optimizer, log, model=None):
    """Record ``zero_grad`` and ``step`` calls of ``optimizer`` in ``log`` (and return it).

    ``model.zero_grad()`` clears the same gradients as ``optimizer.zero_grad()`` when the
    optimizer holds all the model's parameters, so it is recorded as ``"zero_grad"`` too.
    """
    opt_zero_grad, opt_step = optimizer.zero_grad, optimizer.step

    def zero_grad(*args, **kwargs):
        log.add("zero_grad")
        return opt_zero_grad(*args, **kwargs)

    def step(*args, **kwargs):
        log.add("step")
        return opt_step(*args, **kwargs)

    optimizer.zero_grad = zero_grad
    optimizer.step = step
    if model is not None:
        model_zero_grad = model.zero_grad

        def model_zero(*args, **kwargs):
            log.add("zero_grad")
            return model_zero_grad(*args, **kwargs)

        model.zero_grad = model_zero
    return optimizer


def make_mlp(weights):
    """``Linear(D, H) -> ReLU -> Linear(H, C)`` with the given weights.

    ``weights``: ``[W1 (H, D), b1 (H,), W2 (C, H), b2 (C,)]`` as arrays (torch's layout:
    ``Linear`` computes ``x @ W.T + b``).
    """
    w1, b1, w2, b2 = (torch.as_tensor(np.asarray(w), dtype=torch.float32) for w in weights)
    model = nn.Sequential(nn.Linear(w1.shape[1], w1.shape[0]), nn.ReLU(),
                          nn.Linear(w2.shape[1], w2.shape[0]))
    with torch.no_grad():
        for p, w in zip(model.parameters(), (w1, b1, w2, b2)):
            p.copy_(w)
    return model


def make_linear(weight, bias, dropout=0.0):
    """``Dropout(dropout) -> Linear`` with the given weight (C, D) and bias (C,)."""
    weight = torch.as_tensor(np.asarray(weight), dtype=torch.float32)
    bias = torch.as_tensor(np.asarray(bias), dtype=torch.float32)
    linear = nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        linear.weight.copy_(weight)
        linear.bias.copy_(bias)
    return nn.Sequential(nn.Dropout(dropout), linear)


class _Probe(nn.Module):
    """Wraps a model; records ``(self.training, torch.is_grad_enabled())`` at each forward."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.calls = []

    def forward(self, x):
        self.calls.append((bool(self.training), bool(torch.is_grad_enabled())))
        return self.inner(x)

    def records(self):
        """The recorded ``[training, grad_enabled]`` pairs, one per forward pass."""
        return [list(c) for c in self.calls]


def probe(model):
    """``model`` wrapped in a module that records its mode at every forward pass."""
    return _Probe(model)


def set_training(model, mode):
    """``model.train(mode)``: puts the model in training (True) or evaluation (False) mode."""
    model.train(bool(mode))
    return None


def predict(model, x, device="cpu", batch_size=256):
    """Logits (N, C) of ``model`` for the inputs ``x`` (N, D), as a float32 numpy array.

    Evaluation mode, no gradients, on ``device``; the model's mode is restored afterwards.
    """
    was_training = model.training
    model.to(device)
    model.eval()
    xs = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    outs = []
    with torch.no_grad():
        for start in range(0, len(xs), int(batch_size)):
            outs.append(model(xs[start:start + int(batch_size)].to(device)).float().cpu())
    model.train(was_training)
    return torch.cat(outs).numpy()


def parameters(model):
    """The model's parameters as a list of float32 numpy arrays, in ``model.parameters()`` order."""
    return [p.detach().float().cpu().numpy().copy() for p in model.parameters()]


def count_parameters(model):
    """Number of trainable parameters of ``model``."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


def is_module(value):
    """Whether ``value`` is a ``torch.nn.Module``."""
    return isinstance(value, nn.Module)


class LossRecorder:
    """Records the first argument (the scores) of every cross-entropy computed while installed:
    ``nn.CrossEntropyLoss`` and ``torch.nn.functional.cross_entropy``, however imported.

    ``install()`` / ``uninstall()``; ``inputs()`` gives the recorded scores as numpy arrays.
    """

    def __init__(self):
        self._inputs = []
        self._target = None
        self._original = None

    def install(self):
        if self._original is not None:
            return None
        # Both nn.CrossEntropyLoss and F.cross_entropy end in this one function; patching it
        # sees every route (F.cross_entropy looks it up at each call).
        import torch.nn.functional as F
        target = torch._C._nn if hasattr(torch._C._nn, "cross_entropy_loss") else F
        name = "cross_entropy_loss" if target is torch._C._nn else "cross_entropy"
        original = getattr(target, name)
        recorded = self._inputs

        def recording(input, *args, **kwargs):
            recorded.append(input.detach().float().cpu().numpy().copy())
            return original(input, *args, **kwargs)

        setattr(target, name, recording)
        self._target, self._name, self._original = target, name, original
        return None

    def uninstall(self):
        if self._original is not None:
            setattr(self._target, self._name, self._original)
            self._original = None
        return None

    def inputs(self):
        """The recorded scores, one (N, C) array per call."""
        return list(self._inputs)
