"""Mini-exam 1, variant A: the leaky ReLU layer, forward and backward.

Leaky ReLU lets a small gradient through for negative inputs, so a unit whose input is negative
still learns (a plain ReLU's gradient there is exactly zero)::

    out = x                    where x > 0
    out = negative_slope * x   where x <= 0

Conventions (the tests check exactly these):

* ``negative_slope`` is an argument (default 0.01); use the value given, never a constant;
* at ``x == 0`` exactly the layer is on its negative side: the gradient there is
  ``negative_slope`` (like ``torch.nn.LeakyReLU``);
* neither function modifies its arguments in place.

Only numpy is needed.
"""

import numpy as np


def leaky_relu_forward(x, negative_slope=0.01):
    """Forward pass of leaky ReLU.

    Inputs:
    - x: numpy array of any shape.
    - negative_slope: float >= 0, the slope for x <= 0.

    Returns a tuple of:
    - out: numpy array of the shape of x, ``x`` where ``x > 0`` and ``negative_slope * x``
      elsewhere.
    - cache: whatever your backward pass needs (for example ``(x, negative_slope)``).

    Do not modify ``x`` in place.
    """
    # BEGIN SOLUTION
    x = np.asarray(x, dtype=np.float64)
    positive = x > 0
    out = np.where(positive, x, negative_slope * x)
    cache = (positive, negative_slope)
    # END SOLUTION
    return out, cache


def leaky_relu_backward(dout, cache):
    """Backward pass of leaky ReLU.

    Inputs:
    - dout: numpy array, the upstream gradient, of the shape of the forward pass's ``x``.
    - cache: the cache your :func:`leaky_relu_forward` returned.

    Returns:
    - dx: numpy array of the shape of dout, the gradient with respect to ``x``: ``dout`` where
      ``x > 0`` and ``negative_slope * dout`` where ``x <= 0``.

    Do not modify ``dout`` in place.
    """
    # BEGIN SOLUTION
    positive, negative_slope = cache
    dx = np.where(positive, dout, negative_slope * np.asarray(dout, dtype=np.float64))
    # END SOLUTION
    return dx
