"""The backward pass scales dout in place (dout[~positive] *= slope) and returns it: dx is
right, the caller's upstream gradient is changed."""

import numpy as np


def leaky_relu_backward(dout, cache):
    positive, negative_slope = cache
    dout[~positive] *= negative_slope
    return dout
