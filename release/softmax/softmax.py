"""Softmax classifier: the cross-entropy loss and its gradient.

You implement two functions:

* :func:`softmax_loss` takes a batch of class scores and returns the mean cross-entropy loss and
  its gradient with respect to the scores. It is the last layer of every classifier in this
  course.
* :func:`softmax_loss_vectorized` is a complete linear classifier: scores ``X @ W``, the same
  loss, plus L2 regularisation of the weights, and the gradient with respect to ``W``.

Conventions used everywhere in the course (the tests check exactly these):

* the data loss is the **mean** over the N examples, not the sum;
* the regularisation term is ``reg * np.sum(W * W)`` (no factor 1/2), so its gradient is
  ``2 * reg * W``;
* the loss is returned as a Python float (or a numpy scalar), never as an array.

Only numpy is needed. Neither function may modify its arguments.
"""

import numpy as np


def softmax_loss(x, y):
    """Mean softmax cross-entropy loss of a batch of scores, and its gradient.

    For one example with scores ``s`` (C,) and correct class ``k``, the softmax probabilities
    are ``p_j = exp(s_j) / sum_i exp(s_i)`` and the loss is ``-log p_k``. The batch loss is the
    mean of the per-example losses.

    Compute it in a numerically stable way: subtract each row's maximum score before ``exp``.
    Softmax does not change when the same constant is subtracted from every score of a row,
    so the result is exactly the same, but ``exp`` can no longer overflow (``np.exp(1000.0)``
    is ``inf``).

    And never take the log of a probability: when the correct class is hundreds of units below
    the row maximum, its probability underflows to 0 and ``-np.log(0)`` is ``inf``. Compute the
    log-probabilities directly with log-sum-exp,
    ``log p = (s - max) - log(sum(exp(s - max)))``, and the loss from them.

    Inputs:
    - x: numpy array of shape (N, C), x[i, j] is the score of class j for example i.
    - y: numpy integer array of shape (N,), y[i] in range(C) is the label of example i.

    Returns a tuple of:
    - loss: a float, the mean over the N examples of ``-log softmax(x[i])[y[i]]``.
    - dx: numpy array of shape (N, C), the gradient of ``loss`` with respect to ``x``:
      ``(softmax(x) - onehot(y)) / N``. The division by N comes from the mean.

    Do not modify ``x`` or ``y`` in place.
    """
    # YOUR CODE HERE
    raise NotImplementedError("softmax_loss: replace this line with your implementation")


def softmax_loss_vectorized(W, X, y, reg):
    """Loss and gradient of a linear softmax classifier, without explicit Python loops.

    The class scores are ``X @ W``, of shape (N, C). The loss is the mean softmax
    cross-entropy of these scores (as in :func:`softmax_loss`) plus the L2 penalty
    ``reg * np.sum(W * W)``.

    Inputs:
    - W: numpy array of shape (D, C), the weights.
    - X: numpy array of shape (N, D), a batch of N examples with D features each.
    - y: numpy integer array of shape (N,), y[i] in range(C) is the label of X[i].
    - reg: float, the regularisation strength.

    Returns a tuple of:
    - loss: a float, ``mean_i(-log softmax(X[i] @ W)[y[i]]) + reg * np.sum(W * W)``.
    - dW: numpy array of shape (D, C), the gradient of ``loss`` with respect to ``W``:
      ``X.T @ dscores + 2 * reg * W`` where ``dscores = (softmax(X @ W) - onehot(y)) / N``.

    Use matrix operations only (no ``for`` loop over examples or classes); you may call
    :func:`softmax_loss` on the scores. Do not modify the arguments in place.
    """
    # YOUR CODE HERE
    raise NotImplementedError("softmax_loss_vectorized: replace this line with your implementation")
