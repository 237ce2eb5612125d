"""At x == 0 the layer is taken to be on its positive side (x >= 0): the gradient there is dout
instead of negative_slope * dout."""

import numpy as np


def leaky_relu_forward(x, negative_slope=0.01):
    x = np.asarray(x, dtype=np.float64)
    positive = x >= 0
    return np.where(positive, x, negative_slope * x), (positive, negative_slope)
