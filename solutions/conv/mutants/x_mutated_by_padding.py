"""The conv forward pads x in place (x.resize to the padded shape, then shifts the pixels),
so the caller's x comes back padded. The output and gradients are right.
"""

import numpy as np


def conv_forward_naive(x, w, b, conv_param):
    stride = conv_param["stride"]
    pad = conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    H_out = 1 + (H + 2 * pad - HH) // stride
    W_out = 1 + (W + 2 * pad - WW) // stride
    x_orig = x.copy()
    x.resize((N, C, H + 2 * pad, W + 2 * pad), refcheck=False)
    x[...] = 0
    x[:, :, pad:pad + H, pad:pad + W] = x_orig
    x_pad = x
    x = x_orig
    out = np.zeros((N, F, H_out, W_out))
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    hs = i * stride
                    ws = j * stride
                    window = x_pad[n, :, hs:hs + HH, ws:ws + WW]
                    out[n, f, i, j] = np.sum(window * w[f]) + b[f]
    cache = (x, w, b, conv_param)
    return out, cache
