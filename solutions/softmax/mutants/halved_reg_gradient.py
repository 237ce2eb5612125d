"""dW adds reg * W instead of 2 * reg * W (the derivative of reg * sum(W * W)).
The usual slip when the course uses 0.5 * reg * sum(W * W) elsewhere; softmax_loss is
correct.
"""

import numpy as np


def softmax_loss_vectorized(W, X, y, reg):
    N = X.shape[0]
    scores = X.dot(W)
    scores = scores - np.max(scores, axis=1, keepdims=True)
    exp_scores = np.exp(scores)
    probs = exp_scores / np.sum(exp_scores, axis=1, keepdims=True)
    loss = -np.sum(np.log(probs[np.arange(N), y])) / N
    loss += reg * np.sum(W * W)
    dscores = probs.copy()
    dscores[np.arange(N), y] -= 1
    dscores /= N
    dW = X.T.dot(dscores)
    dW += reg * W
    return loss, dW
