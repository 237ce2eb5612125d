"""The backward pass multiplies dout by the layer's output instead of its derivative."""

import numpy as np


def leaky_relu_forward(x, negative_slope=0.01):
    x = np.asarray(x, dtype=np.float64)
    out = np.where(x > 0, x, negative_slope * x)
    return out, out


def leaky_relu_backward(dout, cache):
    return dout * cache
