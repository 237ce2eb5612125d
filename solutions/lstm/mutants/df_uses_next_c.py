"""The step cache keeps the new cell state next_c where the previous one belongs, so the
forget gate's gradient is dc * next_c instead of dc * prev_c. The forward outputs are
correct.
"""

import numpy as np


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    H = prev_h.shape[1]
    a = x @ Wx + prev_h @ Wh + b
    i = sigmoid(a[:, :H])
    f = sigmoid(a[:, H:2 * H])
    o = sigmoid(a[:, 2 * H:3 * H])
    g = np.tanh(a[:, 3 * H:])
    next_c = f * prev_c + i * g
    tanh_c = np.tanh(next_c)
    next_h = o * tanh_c
    cache = (x, prev_h, next_c, Wx, Wh, i, f, o, g, tanh_c)
    return next_h, next_c, cache
