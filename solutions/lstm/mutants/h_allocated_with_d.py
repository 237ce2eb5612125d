"""Sequence forward allocates h with the input size D instead of the hidden size H:
works only when D == H.
"""

import numpy as np


def lstm_forward(x, h0, Wx, Wh, b):
    N, T, _ = x.shape
    H = x.shape[2]
    h = np.zeros((N, T, H), dtype=np.result_type(x, h0, Wx, Wh, b))
    prev_h = h0
    prev_c = np.zeros_like(h0)
    caches = []
    for t in range(T):
        prev_h, prev_c, step_cache = lstm_step_forward(x[:, t, :], prev_h, prev_c, Wx, Wh, b)
        h[:, t, :] = prev_h
        caches.append(step_cache)
    return h, caches
