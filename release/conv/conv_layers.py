"""Convolution and max-pooling layers: forward and backward passes.

You implement:

* :func:`conv_forward_naive` and :func:`conv_backward_naive`: a convolutional layer written with
  explicit loops, so that every index is visible;
* :func:`max_pool_forward_naive` and :func:`max_pool_backward_naive`: a max-pooling layer;
* (bonus) :func:`conv_forward_fast` and :func:`conv_backward_fast`: the same convolution,
  vectorised with im2col, at least 10 times faster than the naive loops.

Conventions used everywhere in this module (the tests check exactly these, and they are the
conventions of PyTorch's ``torch.nn.functional.conv2d`` and ``max_pool2d``):

* images are stored as ``(N, C, H, W)``: N examples, C channels, height H, width W;
  filters as ``(F, C, HH, WW)``: F filters of height HH and width WW;
* a "convolution" layer computes a **cross-correlation**: the filter is *not* flipped,
  ``out[n, f, i, j] = b[f] + sum_{c, di, dj} w[f, c, di, dj] * x_pad[n, c, i*S + di, j*S + dj]``;
* padding is **symmetric zero padding**: P rows of zeros above *and* below, P columns of zeros
  left *and* right, so the padded input has height ``H + 2P`` and width ``W + 2P``;
* output sizes are rounded **down**: ``H_out = 1 + (H + 2P - HH) // S`` and
  ``W_out = 1 + (W + 2P - WW) // S``; positions where a window would stick out of the padded
  input are dropped (PyTorch does the same);
* no function modifies its arguments (work on copies: ``np.pad`` returns a new array);
* every gradient has the shape of the value it is the gradient of.

Only numpy is needed.
"""

import numpy as np


def conv_forward_naive(x, w, b, conv_param):
    """Forward pass of a convolutional layer, with loops.

    The input has N examples, each with C channels, height H and width W. Each of the F filters
    spans all C channels and has height HH and width WW. Filter f slides over the zero-padded
    input with step S (the stride) in both directions; at each position the output is the sum
    of the elementwise products of the filter with the window of the input it covers, plus the
    filter's bias:

        out[n, f, i, j] = b[f] + sum over c, di, dj of
                          w[f, c, di, dj] * x_pad[n, c, i * S + di, j * S + dj]

    where ``x_pad`` is ``x`` with P zeros added on each of the four sides of every channel.
    The filter is not flipped (this is a cross-correlation, as in every deep-learning library).

    Inputs:
    - x: numpy array of shape (N, C, H, W), the input.
    - w: numpy array of shape (F, C, HH, WW), the filter weights. HH and WW may differ.
    - b: numpy array of shape (F,), the biases.
    - conv_param: dict with the keys
      - 'stride': int S >= 1, the step between neighbouring windows (the same along H and W);
      - 'pad': int P >= 0, the number of zero rows/columns added on *each* side.

    Returns a tuple of:
    - out: numpy array of shape (N, F, H_out, W_out) where
      ``H_out = 1 + (H + 2 * P - HH) // S`` and ``W_out = 1 + (W + 2 * P - WW) // S``
      (rounded down).
    - cache: whatever your backward pass needs, for example ``(x, w, b, conv_param)``.

    Do not modify ``x`` (``np.pad`` returns a new array). Plain loops over n, f, i and j with a
    vectorised sum over the window are fine here; only the bonus functions must be fast.
    """
    # YOUR CODE HERE
    raise NotImplementedError("conv_forward_naive: replace this line with your implementation")


def conv_backward_naive(dout, cache):
    """Backward pass of a convolutional layer, with loops.

    Every output value ``out[n, f, i, j]`` received the contribution
    ``w[f, c, di, dj] * x_pad[n, c, i*S + di, j*S + dj]`` from each weight and each input entry
    of its window. The chain rule, applied element by element, gives

    - ``db[f] = sum over n, i, j of dout[n, f, i, j]``;
    - ``dw[f] += dout[n, f, i, j] * x_pad[n, :, window]`` for every (n, i, j);
    - ``dx_pad[n, :, window] += dout[n, f, i, j] * w[f]`` for every (f, i, j).

    Accumulate with ``+=``: windows overlap when the stride is smaller than the filter, and
    every filter reads the same input, so one input entry receives gradient from many outputs.
    Finally crop the padding off ``dx_pad``: ``dx`` has the shape of ``x``. Careful with
    ``P = 0``: ``a[-0:]`` is not an empty crop.

    Inputs:
    - dout: numpy array of shape (N, F, H_out, W_out), the upstream gradient.
    - cache: what :func:`conv_forward_naive` returned.

    Returns a tuple of:
    - dx: gradient with respect to x, shape (N, C, H, W).
    - dw: gradient with respect to w, shape (F, C, HH, WW).
    - db: gradient with respect to b, shape (F,).
    """
    # YOUR CODE HERE
    raise NotImplementedError("conv_backward_naive: replace this line with your implementation")


def max_pool_forward_naive(x, pool_param):
    """Forward pass of a max-pooling layer, with loops.

    Each channel of each example is pooled separately: a window of height PH and width PW
    slides over it with step S (no padding), and the output is the maximum of the window:

        out[n, c, i, j] = max over di < PH, dj < PW of x[n, c, i * S + di, j * S + dj]

    Inputs:
    - x: numpy array of shape (N, C, H, W).
    - pool_param: dict with the keys 'pool_height' (PH), 'pool_width' (PW) and 'stride' (S).
      Windows may overlap (for example 3x3 windows with stride 2).

    Returns a tuple of:
    - out: numpy array of shape (N, C, H_out, W_out) where ``H_out = 1 + (H - PH) // S`` and
      ``W_out = 1 + (W - PW) // S`` (rounded down).
    - cache: whatever your backward pass needs, for example ``(x, pool_param)``.

    Do not modify ``x``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("max_pool_forward_naive: replace this line with your implementation")


def max_pool_backward_naive(dout, cache):
    """Backward pass of a max-pooling layer, with loops.

    The maximum of a window depends only on the entry that attains it, with derivative 1, so
    ``dout[n, c, i, j]`` goes to that one entry of the window and the others get nothing.
    Accumulate with ``+=``: when windows overlap, one entry can be the maximum of several
    windows and then receives the sum of their upstream gradients.

    Tie convention: when several entries of a window are equal to its maximum, the whole
    gradient goes to the **first** of them in row-major order (the one ``np.argmax`` of the
    flattened window picks, and the one PyTorch picks on the CPU), never to all of them.

    Inputs:
    - dout: numpy array of shape (N, C, H_out, W_out), the upstream gradient.
    - cache: what :func:`max_pool_forward_naive` returned.

    Returns:
    - dx: gradient with respect to x, shape (N, C, H, W).
    """
    # YOUR CODE HERE
    raise NotImplementedError("max_pool_backward_naive: replace this line with your implementation")


def conv_forward_fast(x, w, b, conv_param):
    """Bonus: the forward pass of :func:`conv_forward_naive`, vectorised with im2col.

    Same inputs, same conventions and the same ``out`` (up to rounding, 1e-8 relative) as
    :func:`conv_forward_naive`. The idea (im2col): gather every window of the padded input
    into one column of a matrix: ``cols`` of shape (N, C * HH * WW, H_out * W_out), where
    ``cols[n, :, i * W_out + j]`` is the window of output position (i, j), flattened in the
    order of ``w[f].ravel()``. Then the whole convolution is one (batched) matrix product,
    ``w.reshape(F, -1) @ cols`` of shape (N, F, H_out * W_out), plus the bias, reshaped to
    (N, F, H_out, W_out). ``cols`` can be filled with a loop over the HH * WW filter offsets
    (each step copies one strided slice of ``x_pad`` for every output position at once), not
    over output positions.

    Speed requirement: at least 10 times faster than the course's naive implementation (one
    Python iteration per output value) on x of shape (2, 3, 32, 32), w of shape (16, 3, 5, 5),
    stride 1, pad 2. No Python loop over n, f, i or j.

    Returns a tuple of:
    - out: numpy array of shape (N, F, H_out, W_out).
    - cache: whatever :func:`conv_backward_fast` needs.

    Do not modify ``x``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("conv_forward_fast: replace this line with your implementation")


def conv_backward_fast(dout, cache):
    """Bonus: the backward pass of :func:`conv_backward_naive`, vectorised (col2im).

    ``cache`` is what :func:`conv_forward_fast` returned. With ``cols`` and ``dout`` reshaped
    to (N, F, H_out * W_out), ``db`` is one sum and ``dw`` one matrix product
    (``dout @ cols.transpose(0, 2, 1)`` summed over n); ``dcols = w.reshape(F, -1).T @ dout``
    has the shape of ``cols`` and is scattered back into ``dx_pad`` with a loop over the
    HH * WW filter offsets (``+=`` on strided slices: windows overlap), and the padding is
    cropped off (col2im).

    Same outputs as :func:`conv_backward_naive`, and the same speed requirement as
    :func:`conv_forward_fast` (at least 10 times faster than the naive loops on the stated
    size).

    Returns a tuple ``(dx, dw, db)`` with the shapes of ``x``, ``w`` and ``b``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("conv_backward_fast: replace this line with your implementation")
