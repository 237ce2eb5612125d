"""The seed argument is not passed to the generator (np.random.default_rng()), so every call
draws a new mask and the backward pass cannot be reproduced."""

import numpy as np


def dropout_forward(x, p, mode, seed=0):
    x = np.asarray(x, dtype=np.float64)
    if mode == "train":
        mask = (np.random.default_rng().random(x.shape) < p) / p
        return x * mask, (mask, mode)
    if mode == "test":
        return x.copy(), (None, mode)
    raise ValueError(f"unknown mode {mode!r}")
