"""The cache keeps the 0/1 mask and the backward pass multiplies by it without dividing by p:
the forward pass is right, dx is p times too small on the kept units."""

import numpy as np


def dropout_forward(x, p, mode, seed=0):
    x = np.asarray(x, dtype=np.float64)
    if mode == "train":
        keep = (np.random.default_rng(seed).random(x.shape) < p).astype(np.float64)
        return x * keep / p, (keep, mode)
    if mode == "test":
        return x.copy(), (None, mode)
    raise ValueError(f"unknown mode {mode!r}")


def dropout_backward(dout, cache):
    keep, mode = cache
    return dout * keep if mode == "train" else np.array(dout, dtype=np.float64)
