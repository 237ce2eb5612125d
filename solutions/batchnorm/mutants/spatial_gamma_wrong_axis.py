"""A direct spatial implementation (statistics over axes 0, 2, 3, right) that broadcasts
gamma and beta as (C, 1), which lines up with (H, W) instead of the channel axis: it
runs only when C equals H (or one of them is 1), and is wrong even then.
"""

import numpy as np


def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    N, C, H, W = x.shape
    running_mean = bn_param.get("running_mean", np.zeros(C, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.zeros(C, dtype=x.dtype))
    if mode == "train":
        mean = x.mean(axis=(0, 2, 3))
        var = x.var(axis=(0, 2, 3))
        running_mean = momentum * running_mean + (1 - momentum) * mean
        running_var = momentum * running_var + (1 - momentum) * var
    elif mode == "test":
        mean, var = running_mean, running_var
    else:
        raise ValueError('Invalid forward batchnorm mode "%s"' % mode)
    std = np.sqrt(var + eps)
    x_hat = (x - mean[None, :, None, None]) / std[None, :, None, None]
    out = gamma[:, None] * x_hat + beta[:, None]
    bn_param["running_mean"] = running_mean
    bn_param["running_var"] = running_var
    return out, (x_hat, gamma, std)
