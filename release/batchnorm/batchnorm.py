"""Batch normalization: forward and backward passes, train and test modes, and the spatial
variant for convolutional feature maps.

You implement five functions:

* :func:`batchnorm_forward` normalizes each feature of a batch ``x`` of shape (N, D) with the
  batch's own mean and variance (train mode) or with running averages of them (test mode), then
  scales by ``gamma`` and shifts by ``beta``.
* :func:`batchnorm_backward` backpropagates through the train-mode forward pass step by step,
  following the computational graph.
* :func:`batchnorm_backward_alt` computes the same gradients with the simplified closed form
  for ``dx``; it must give the same result and be at least as fast.
* :func:`spatial_batchnorm_forward` / :func:`spatial_batchnorm_backward` do the same for
  feature maps of shape (N, C, H, W), with one mean, variance, ``gamma`` and ``beta`` per
  channel.

Conventions used everywhere in this assignment (the tests check exactly these):

* train mode normalizes with the **biased** batch variance ``mean((x - mu) ** 2)`` (divide by
  N, not N - 1), and ``eps`` goes **inside** the square root: ``(x - mu) / sqrt(var + eps)``;
* the running statistics are updated after every train-mode call as
  ``running = momentum * running + (1 - momentum) * batch_statistic``, with the biased batch
  variance. With the default ``momentum = 0.9`` the old running value keeps 90% of its weight.
  PyTorch's ``nn.BatchNorm1d(momentum=0.1)`` means the *same* weighting written the other way
  round (PyTorch's momentum is the weight of the new batch), and PyTorch also stores the
  unbiased variance in ``running_var``: do not copy either convention here;
* ``bn_param`` is updated in place: the grader reads ``bn_param["running_mean"]`` and
  ``bn_param["running_var"]`` after your function returns;
* no function modifies ``x`` (or ``dout``) in place.

Only numpy is needed.
"""

import numpy as np


def batchnorm_forward(x, gamma, beta, bn_param):
    """Forward pass of batch normalization.

    Train mode: compute the per-feature mean and (biased) variance of the batch,

        mu = mean(x, axis=0)                    (D,)
        var = mean((x - mu) ** 2, axis=0)       (D,)   divide by N, not N - 1
        x_hat = (x - mu) / sqrt(var + eps)      (N, D)
        out = gamma * x_hat + beta              (N, D)

    and update the running averages kept in ``bn_param``:

        running_mean = momentum * running_mean + (1 - momentum) * mu
        running_var = momentum * running_var + (1 - momentum) * var

    Test mode: normalize with the running averages instead of the batch statistics,

        out = gamma * (x - running_mean) / sqrt(running_var + eps) + beta

    and leave the running averages unchanged.

    Inputs:
    - x: numpy array of shape (N, D), a batch of N examples with D features.
    - gamma: numpy array of shape (D,), the scale of each feature.
    - beta: numpy array of shape (D,), the shift of each feature.
    - bn_param: dict with the keys
      - 'mode': 'train' or 'test' (required). Any other value raises ``ValueError`` with a
        message that names the invalid mode and the valid ones.
      - 'eps': small constant added to the variance inside the square root (default 1e-5).
      - 'momentum': weight of the old running value in the update above (default 0.9).
      - 'running_mean': numpy array of shape (D,); if the key is missing, start from zeros.
      - 'running_var': numpy array of shape (D,); if the key is missing, start from zeros.
      After a train-mode call, ``bn_param['running_mean']`` and ``bn_param['running_var']``
      must hold the updated values (store them in the dict: the caller reads them there).

    Returns a tuple of:
    - out: numpy array of shape (N, D).
    - cache: whatever :func:`batchnorm_backward` needs (for example a tuple of arrays). Only
      train-mode caches are passed to the backward functions.

    Do not modify ``x`` in place.
    """
    # YOUR CODE HERE
    raise NotImplementedError("batchnorm_forward: replace this line with your implementation")


def batchnorm_backward(dout, cache):
    """Backward pass of train-mode batch normalization, step by step.

    Write the forward pass as a chain of simple steps (mu, x - mu, its square, var,
    sqrt(var + eps), its inverse, x_hat, gamma * x_hat, + beta) and backpropagate through each
    step in reverse order, summing the gradients of every path that reaches a value. ``x``
    reaches the loss three ways: directly through ``x - mu``, through ``mu``, and through
    ``var``; dropping the paths through ``mu`` or ``var`` gives a wrong ``dx``.

    Inputs:
    - dout: numpy array of shape (N, D), the upstream gradient dL/dout.
    - cache: the cache returned by a train-mode :func:`batchnorm_forward`.

    Returns a tuple of:
    - dx: numpy array of shape (N, D), dL/dx.
    - dgamma: numpy array of shape (D,), dL/dgamma = sum over the batch of dout * x_hat,
      ``dgamma = np.sum(dout * x_hat, axis=0)``.
    - dbeta: numpy array of shape (D,), dL/dbeta = sum over the batch of dout,
      ``dbeta = np.sum(dout, axis=0)``.

    Do not modify ``dout`` in place.
    """
    # YOUR CODE HERE
    raise NotImplementedError("batchnorm_backward: replace this line with your implementation")


def batchnorm_backward_alt(dout, cache):
    """Backward pass of train-mode batch normalization in closed form.

    Work out dL/dx on paper first (the handout guides you): with ``dx_hat = dout * gamma``,
    the three paths collapse into one expression per feature,

        dx = (dx_hat - mean(dx_hat, axis=0) - x_hat * mean(dx_hat * x_hat, axis=0))
             / sqrt(var + eps)

    Implement it in a few vectorized lines (no Python loop over examples or features). It must
    return the same values as :func:`batchnorm_backward`, and it should be faster.

    Inputs and outputs: as :func:`batchnorm_backward`.
    """
    # YOUR CODE HERE
    raise NotImplementedError("batchnorm_backward_alt: replace this line with your implementation")


def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    """Forward pass of spatial batch normalization for convolutional feature maps.

    Every channel is one feature: its mean and variance are taken over the batch and over all
    spatial positions (axes 0, 2 and 3), and ``gamma[c]`` / ``beta[c]`` scale and shift
    channel ``c`` everywhere. The simplest implementation moves the channel axis last
    (``x.transpose(0, 2, 3, 1)``, shape (N, H, W, C)), reshapes to (N * H * W, C), calls
    :func:`batchnorm_forward`, and undoes the reshape and the transpose. Reshaping (N, C, H, W)
    directly to (-1, C) without moving the channel axis mixes channels and positions.

    Inputs:
    - x: numpy array of shape (N, C, H, W).
    - gamma: numpy array of shape (C,), the scale of each channel.
    - beta: numpy array of shape (C,), the shift of each channel.
    - bn_param: as in :func:`batchnorm_forward`; the running statistics have shape (C,).

    Returns a tuple of:
    - out: numpy array of shape (N, C, H, W).
    - cache: whatever :func:`spatial_batchnorm_backward` needs.

    Do not modify ``x`` in place.
    """
    # YOUR CODE HERE
    raise NotImplementedError("spatial_batchnorm_forward: replace this line with your implementation")


def spatial_batchnorm_backward(dout, cache):
    """Backward pass of spatial batch normalization.

    Transform ``dout`` exactly as the forward pass transformed ``x``
    (``dout.transpose(0, 2, 3, 1).reshape(-1, C)``), call a batchnorm backward function, and
    undo the reshape and the transpose for ``dx``.

    Inputs:
    - dout: numpy array of shape (N, C, H, W), the upstream gradient.
    - cache: the cache returned by a train-mode :func:`spatial_batchnorm_forward`.

    Returns a tuple of:
    - dx: numpy array of shape (N, C, H, W).
    - dgamma: numpy array of shape (C,).
    - dbeta: numpy array of shape (C,).

    Do not modify ``dout`` in place.
    """
    # YOUR CODE HERE
    raise NotImplementedError("spatial_batchnorm_backward: replace this line with your implementation")
