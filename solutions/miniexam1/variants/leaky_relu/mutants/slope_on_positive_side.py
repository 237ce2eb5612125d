"""The slope is applied to the positive side: out = negative_slope * x where x > 0, x elsewhere."""

import numpy as np


def leaky_relu_forward(x, negative_slope=0.01):
    x = np.asarray(x, dtype=np.float64)
    positive = x > 0
    out = np.where(positive, negative_slope * x, x)
    return out, (positive, negative_slope)


def leaky_relu_backward(dout, cache):
    positive, negative_slope = cache
    return np.where(positive, negative_slope * dout, dout)
