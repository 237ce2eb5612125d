"""Max pooling uses pool_width for the window's height and pool_height for its width.
Square windows are right.
"""

import numpy as np


def max_pool_forward_naive(x, pool_param):
    ph = pool_param["pool_width"]
    pw = pool_param["pool_height"]
    stride = pool_param["stride"]
    N, C, H, W = x.shape
    H_out = 1 + (H - ph) // stride
    W_out = 1 + (W - pw) // stride
    out = np.zeros((N, C, H_out, W_out))
    for n in range(N):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    hs = i * stride
                    ws = j * stride
                    out[n, c, i, j] = np.max(x[n, c, hs:hs + ph, ws:ws + pw])
    cache = (x, pool_param)
    return out, cache


def max_pool_backward_naive(dout, cache):
    x, pool_param = cache
    ph = pool_param["pool_width"]
    pw = pool_param["pool_height"]
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
                    k = np.argmax(window)
                    mask = np.zeros(window.size)
                    mask[k] = 1
                    mask = mask.reshape(window.shape)
                    dx[n, c, hs:hs + ph, ws:ws + pw] += mask * dout[n, c, i, j]
    return dx
