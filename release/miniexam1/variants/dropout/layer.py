"""Mini-exam 1, variant B: inverted dropout, forward and backward.

During training, dropout keeps each unit with probability ``p`` and zeroes the others; the kept
ones are divided by ``p`` ("inverted" dropout), so the expected value of every output equals its
input and the network needs no change at test time. At test time the layer does nothing.

Conventions (the tests check exactly these, so that grading is deterministic):

* ``p`` is the probability of **keeping** a unit, ``0 < p <= 1``;
* the random numbers come from ``rng = np.random.default_rng(seed)``, one uniform number per
  entry of ``x``: ``u = rng.random(x.shape)``, and an entry is kept where ``u < p``; so in train
  mode the mask is ``mask = (rng.random(x.shape) < p) / p`` and ``out = x * mask``;
* ``mode`` is ``"train"`` or ``"test"``; in test mode ``out`` equals ``x`` (no mask, no
  scaling); any other mode raises ``ValueError``;
* neither function modifies its arguments in place.

Only numpy is needed.
"""

import numpy as np


def dropout_forward(x, p, mode, seed=0):
    """Forward pass of inverted dropout.

    Inputs:
    - x: numpy array of any shape.
    - p: float in (0, 1], the probability of keeping each unit.
    - mode: "train" or "test".
    - seed: int, the seed of ``np.random.default_rng`` for the mask (train mode).

    Returns a tuple of:
    - out: numpy array of the shape of x.
    - cache: whatever your backward pass needs (for example ``(mask, mode)``).

    Raises ``ValueError`` for any other mode. Do not modify ``x`` in place.
    """
    # YOUR CODE HERE
    raise NotImplementedError("dropout_forward: replace this line with your implementation")


def dropout_backward(dout, cache):
    """Backward pass of inverted dropout.

    Inputs:
    - dout: numpy array, the upstream gradient, of the shape of the forward pass's ``x``.
    - cache: the cache your :func:`dropout_forward` returned.

    Returns:
    - dx: the gradient with respect to ``x``: in train mode ``dout`` times the same scaled mask
      the forward pass used; in test mode ``dout`` itself (a copy).

    Do not modify ``dout`` in place.
    """
    # YOUR CODE HERE
    raise NotImplementedError("dropout_backward: replace this line with your implementation")
