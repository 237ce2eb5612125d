"""The backward pass is ReLU's: the gradient is zero for x <= 0 instead of negative_slope * dout."""

import numpy as np


def leaky_relu_backward(dout, cache):
    positive, negative_slope = cache
    return np.where(positive, dout, 0.0)
