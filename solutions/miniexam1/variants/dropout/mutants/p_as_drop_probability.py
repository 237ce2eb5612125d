"""p is taken as the probability of dropping a unit: keep where u < 1 - p, divide by 1 - p."""

import numpy as np


def dropout_forward(x, p, mode, seed=0):
    x = np.asarray(x, dtype=np.float64)
    if mode == "train":
        q = 1.0 - p
        keep = np.random.default_rng(seed).random(x.shape) < q
        mask = keep / q if q > 0 else np.zeros(x.shape)
        return x * mask, (mask, mode)
    if mode == "test":
        return x.copy(), (None, mode)
    raise ValueError(f"unknown mode {mode!r}")
