"""The mask comes from the legacy global generator (np.random.seed(seed); np.random.rand), not
from np.random.default_rng(seed): a different stream of numbers, so a different mask."""

import numpy as np


def dropout_forward(x, p, mode, seed=0):
    x = np.asarray(x, dtype=np.float64)
    if mode == "train":
        np.random.seed(seed)
        mask = (np.random.rand(*x.shape) < p) / p
        return x * mask, (mask, mode)
    if mode == "test":
        return x.copy(), (None, mode)
    raise ValueError(f"unknown mode {mode!r}")
