"""Mutant `spatial_gamma_wrong_axis`.

A direct spatial implementation (statistics over axes 0, 2, 3, right) that broadcasts
gamma and beta as (C, 1), which lines up with (H, W) instead of the channel axis: it
runs only when C equals H (or one of them is 1), and is wrong even then.
Everything else in this module is correct.
"""

import numpy as np


def batchnorm_forward(x, gamma, beta, bn_param):
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)

    N, D = x.shape
    running_mean = bn_param.get("running_mean", np.zeros(D, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.zeros(D, dtype=x.dtype))

    out, cache = None, None
    if mode == "train":
        sample_mean = x.mean(axis=0)
        sample_var = x.var(axis=0)
        std = np.sqrt(sample_var + eps)
        x_centered = x - sample_mean
        x_hat = x_centered / std
        out = gamma * x_hat + beta
        cache = (x_centered, x_hat, gamma, std, sample_var, eps)
        running_mean = momentum * running_mean + (1 - momentum) * sample_mean
        running_var = momentum * running_var + (1 - momentum) * sample_var
    elif mode == "test":
        x_hat = (x - running_mean) / np.sqrt(running_var + eps)
        out = gamma * x_hat + beta
    else:
        raise ValueError('Invalid forward batchnorm mode "%s"' % mode)

    bn_param["running_mean"] = running_mean
    bn_param["running_var"] = running_var
    return out, cache


def batchnorm_backward(dout, cache):
    x_centered, x_hat, gamma, std, var, eps = cache
    N = dout.shape[0]
    dbeta = np.sum(dout, axis=0)
    dgamma = np.sum(dout * x_hat, axis=0)
    dx_hat = dout * gamma
    dx_centered = dx_hat / std
    dstd = -np.sum(dx_hat * x_centered, axis=0) / std ** 2
    dvar = dstd / (2 * std)
    dx_centered += 2 * x_centered * dvar / N
    dmean = -np.sum(dx_centered, axis=0)
    dx = dx_centered + dmean / N
    return dx, dgamma, dbeta


def batchnorm_backward_alt(dout, cache):
    x_centered, x_hat, gamma, std, var, eps = cache
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx_hat = dout * gamma
    dx = (dx_hat - dx_hat.mean(axis=0) - x_hat * (dx_hat * x_hat).mean(axis=0)) / std
    return dx, dgamma, dbeta


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


def spatial_batchnorm_backward(dout, cache):
    x_hat, gamma, std = cache
    axes = (0, 2, 3)
    dbeta = dout.sum(axis=axes)
    dgamma = (dout * x_hat).sum(axis=axes)
    dx_hat = dout * gamma[:, None]
    dx = (dx_hat - dx_hat.mean(axis=axes, keepdims=True)
          - x_hat * (dx_hat * x_hat).mean(axis=axes, keepdims=True)) / std[None, :, None, None]
    return dx, dgamma, dbeta
