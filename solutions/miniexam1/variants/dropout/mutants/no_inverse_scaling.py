"""The kept units are not divided by p (plain dropout in training, nothing at test time): the
expected value of the output is p * x."""

import numpy as np


def dropout_forward(x, p, mode, seed=0):
    x = np.asarray(x, dtype=np.float64)
    if mode == "train":
        mask = (np.random.default_rng(seed).random(x.shape) < p).astype(np.float64)
        return x * mask, (mask, mode)
    if mode == "test":
        return x.copy(), (None, mode)
    raise ValueError(f"unknown mode {mode!r}")
