"""Mutant `log_of_underflowed_probability` (both functions).

The row maximum is subtracted (so nothing overflows), but the loss is -log of the probability
of the correct class. When that class is hundreds of units below the row maximum its
probability underflows to exactly 0 and the loss is inf. The gradient is right.
"""

import numpy as np


def softmax_loss(x, y):
    n = x.shape[0]
    shifted = x - np.max(x, axis=1, keepdims=True)
    exp_scores = np.exp(shifted)
    probs = exp_scores / np.sum(exp_scores, axis=1, keepdims=True)
    rows = np.arange(n)
    with np.errstate(divide="ignore"):
        loss = float(-np.mean(np.log(probs[rows, y])))
    dx = probs.copy()
    dx[rows, y] -= 1.0
    dx /= n
    return loss, dx


def softmax_loss_vectorized(W, X, y, reg):
    n = X.shape[0]
    scores = X @ W
    shifted = scores - np.max(scores, axis=1, keepdims=True)
    exp_scores = np.exp(shifted)
    probs = exp_scores / np.sum(exp_scores, axis=1, keepdims=True)
    rows = np.arange(n)
    with np.errstate(divide="ignore"):
        loss = float(-np.mean(np.log(probs[rows, y])) + reg * np.sum(W * W))
    dscores = probs.copy()
    dscores[rows, y] -= 1.0
    dscores /= n
    return loss, X.T @ dscores + 2.0 * reg * W
