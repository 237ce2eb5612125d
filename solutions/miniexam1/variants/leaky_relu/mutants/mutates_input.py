"""The forward pass scales the negative entries of x in place (x[x <= 0] *= slope) and returns
x itself: the output is right, the caller's array is changed."""

import numpy as np


def leaky_relu_forward(x, negative_slope=0.01):
    positive = x > 0
    x[~positive] *= negative_slope
    return x, (positive, negative_slope)
