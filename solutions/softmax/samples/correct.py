"""A correct submission, written the way a student might: softmax_loss with explicit loops over
the examples, softmax_loss_vectorized with matrix operations and a one-hot matrix."""

import numpy as np


def softmax_loss(x, y):
    N, C = x.shape
    loss = 0.0
    dx = np.zeros((N, C))
    for i in range(N):
        scores = x[i] - np.max(x[i])          # stable: the largest score becomes 0
        log_norm = np.log(np.sum(np.exp(scores)))
        loss += log_norm - scores[y[i]]        # -log softmax(x[i])[y[i]]
        probs = np.exp(scores - log_norm)
        for j in range(C):
            dx[i, j] = probs[j] - (1.0 if j == y[i] else 0.0)
    return loss / N, dx / N


def softmax_loss_vectorized(W, X, y, reg):
    N = X.shape[0]
    C = W.shape[1]
    scores = X @ W
    scores = scores - scores.max(axis=1, keepdims=True)
    # log-sum-exp: never the log of a probability, which underflows to 0 far below the max
    log_probs = scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))
    probs = np.exp(log_probs)
    onehot = np.zeros((N, C))
    onehot[np.arange(N), y] = 1.0
    loss = -np.sum(onehot * log_probs) / N + reg * np.sum(W ** 2)
    dW = X.T @ (probs - onehot) / N + 2 * reg * W
    return loss, dW
