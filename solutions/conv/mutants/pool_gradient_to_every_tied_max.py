"""The max-pool backward sends dout to every entry equal to the window's maximum
(mask = window == max) instead of the first one. Right without ties.
"""

import numpy as np


def max_pool_backward_naive(dout, cache):
    x, pool_param = cache
    ph = pool_param["pool_height"]
    pw = pool_param["pool_width"]
    stride = pool_param["stride"]
    N, C, H, W = x.shape
    _, _, H_out, W_out = dout.shape
    dx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    hs = i * stride
                    ws = j * stride
                    window = x[n, c, hs:hs + ph, ws:ws + pw]
                    mask = window == np.max(window)
                    dx[n, c, hs:hs + ph, ws:ws + pw] += mask * dout[n, c, i, j]
    return dx
