"""conv_backward_fast writes each kernel offset's slice of dx_pad with = instead of += :
the slices of different offsets overlap, so only the last one survives.
"""

import numpy as np


def conv_backward_fast(dout, cache):
    x_shape, w, cols, conv_param = cache
    stride = conv_param["stride"]
    pad = conv_param["pad"]
    N, C, H, W = x_shape
    F, _, HH, WW = w.shape
    _, _, H_out, W_out = dout.shape
    d = dout.reshape(N, F, H_out * W_out)
    db = d.sum(axis=(0, 2))
    dw = np.matmul(d, cols.transpose(0, 2, 1)).sum(axis=0).reshape(w.shape)
    dcols = np.matmul(w.reshape(F, -1).T, d).reshape(N, C, HH, WW, H_out, W_out)
    dx_pad = np.zeros((N, C, H + 2 * pad, W + 2 * pad))
    for di in range(HH):
        for dj in range(WW):
            dx_pad[:, :, di:di + stride * H_out:stride,
                   dj:dj + stride * W_out:stride] = dcols[:, :, di, dj]
    dx = dx_pad[:, :, pad:pad + H, pad:pad + W]
    return dx, dw, db
