"""A plausible buggy submission: the loss values are right, but the gradients are not averaged
over the batch (no division by N) and the vectorized gradient leaves out the regularisation
term. It earns the loss-value points and loses the gradient points."""

import numpy as np


def softmax_loss(x, y):
    N = x.shape[0]
    shifted = x - np.max(x, axis=1, keepdims=True)
    probs = np.exp(shifted)
    probs /= np.sum(probs, axis=1, keepdims=True)
    loss = -np.mean(np.log(probs[np.arange(N), y]))
    dx = probs.copy()
    dx[np.arange(N), y] -= 1
    return loss, dx                      # bug: dx is not divided by N


def softmax_loss_vectorized(W, X, y, reg):
    loss, dscores = softmax_loss(X.dot(W), y)
    loss += reg * np.sum(W * W)
    dW = X.T.dot(dscores)                # bugs: inherits the missing 1/N, and no 2 * reg * W
    return loss, dW
