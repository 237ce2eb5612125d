"""Public checks for the batch normalization assignment: run them with `autograder check` in the
release folder. They test your code against itself and against properties you can work out by
hand (train-mode outputs have per-feature mean beta and standard deviation gamma, a single
example normalizes to beta, numerical gradients of your own forward pass). The grader also runs
hidden tests, so passing these is necessary but not sufficient.

Sizes: every input here is small (at most 4 x 8 x 3 x 5 numbers for the spatial checks); each
test runs in well under a second. The upstream gradient `dout` is always random: with
`dout = 1` everywhere the true dx is exactly zero, so a check with it proves nothing.
"""

import numpy as np
import pytest

from autograder.checks import (assert_close, assert_grad_close, assert_shape, call_keeping,
                               numerical_gradient_of)


def _features(rng, n, d):
    """A batch whose features have different means (around -5..5) and scales (0.5..3)."""
    return rng.normal(size=(n, d)) * rng.uniform(0.5, 3.0, size=d) + rng.uniform(-5, 5, size=d)


def _own_numerical_gradient(forward, args, wrt, dout):
    """The numerical gradient of the loss ``sum(out * dout)`` of your own forward pass (``out``
    its first output) with respect to ``args[wrt]``. A gradient check of a function that does
    not depend on its input proves nothing (both gradients are zero), so that fails here with
    its own message."""
    numeric = numerical_gradient_of(forward, args, wrt, {0: dout})
    if not np.any(numeric):
        raise AssertionError("your forward pass does not change at all when this input changes "
                             "(its numerical derivative is zero everywhere), so your gradient "
                             "cannot be checked: implement the forward pass first")
    return numeric


def _bn_forward(student, x, gamma, beta, **params):
    """Train-mode forward output of your batchnorm_forward (the cache is dropped)."""
    return call_keeping(student.batchnorm_forward, x, gamma, beta, {"mode": "train", **params},
                        keep=(1,))[0]


# -------------------------------------------------------------- batchnorm_forward, train mode


@pytest.mark.points(1)
def test_forward_train_shapes(student, rng):
    """N=6, D=4: out has the shape of x."""
    x = _features(rng, 6, 4)
    out, _ = call_keeping(student.batchnorm_forward,
                          x, np.ones(4), np.zeros(4), {"mode": "train"}, keep=(1,))
    out = assert_shape(out, (6, 4), name="out")
    # Values too: with gamma = 1 and beta = 0 every column is normalized to mean 0 and standard
    # deviation sqrt(var / (var + eps)), within 1e-3 of 1 for these features.
    assert_close(out.mean(axis=0), np.zeros(4), atol=1e-8, name="per-feature mean of out",
                 hint="subtract each feature's (column's) batch mean, the mean over axis 0")
    assert_close(out.std(axis=0), np.ones(4), rtol=1e-3, name="per-feature std of out",
                 hint="divide by sqrt(var + eps), var the variance of each column (axis 0)")


@pytest.mark.points(2)
def test_forward_train_means_are_beta_and_stds_are_gamma(student, rng):
    """N=200, D=5: each column of out has mean beta[j] and standard deviation |gamma[j]|."""
    n, d = 200, 5
    x = _features(rng, n, d)
    gamma = np.array([1.0, 2.0, 0.5, 3.0, 1.5])
    beta = np.array([0.0, -1.0, 2.0, 0.5, 4.0])
    out = assert_shape(_bn_forward(student, x, gamma, beta), (n, d), name="out")
    assert_close(out.mean(axis=0), beta, rtol=1e-6, atol=1e-8, name="per-feature mean of out",
                 hint="normalize each feature (column) with its own batch mean, mean over "
                      "axis 0, then add beta")
    # eps = 1e-5 shrinks the std by a factor sqrt(var / (var + eps)), far below this tolerance
    # for these variances (0.25 and more).
    assert_close(out.std(axis=0), gamma, rtol=1e-4, name="per-feature std of out",
                 hint="divide by sqrt(var + eps) with var the variance of each column "
                      "(axis 0), then multiply by gamma")


@pytest.mark.points(1)
def test_forward_train_single_example_gives_beta(student, rng):
    """N=1: the example is its own batch mean, so x_hat = 0 and out = beta exactly."""
    d = 4
    x = _features(rng, 1, d)
    gamma = rng.normal(size=d)
    beta = rng.normal(size=d)
    out = _bn_forward(student, x, gamma, beta)
    assert_close(out, beta[None, :], rtol=1e-9, atol=1e-9, name="out for N=1",
                 hint="with one example x - mu = 0 and the biased variance is 0, so the "
                      "output is beta; NaN here usually means dividing by N - 1 (the unbiased "
                      "variance) or forgetting eps inside the square root")


@pytest.mark.points(1)
def test_forward_invalid_mode_raises_value_error(student, rng):
    """mode='training' is not 'train' or 'test': batchnorm_forward must raise ValueError."""
    x = _features(rng, 4, 3)
    # The point is for a forward pass that checks its mode, not for one that raises on every
    # call or does nothing: mode 'train' must work (each column normalized to mean 0 and
    # standard deviation sqrt(var / (var + eps)), within 1e-3 of 1 for these features).
    out = assert_shape(_bn_forward(student, x, np.ones(3), np.zeros(3)), (4, 3), name="out")
    assert_close(out.mean(axis=0), np.zeros(3), atol=1e-8,
                 name="per-feature mean of out in mode 'train'",
                 hint="subtract each feature's (column's) batch mean, the mean over axis 0")
    assert_close(out.std(axis=0), np.ones(3), rtol=1e-3,
                 name="per-feature std of out in mode 'train'",
                 hint="divide by sqrt(var + eps), var the variance of each column (axis 0)")
    try:
        student.batchnorm_forward(x, np.ones(3), np.zeros(3), {"mode": "training"})
    except ValueError:
        return
    raise AssertionError("batchnorm_forward accepted bn_param['mode'] = 'training' without "
                         "raising ValueError: check the mode first and raise ValueError for "
                         "anything but 'train' and 'test'")


@pytest.mark.points(1)
def test_forward_running_stats_after_first_step(student, rng):
    """N=8, D=3, default momentum 0.9, no running statistics yet: after one train-mode call,
    bn_param['running_mean'] = 0.1 * mean(x) and bn_param['running_var'] = 0.1 * var(x)."""
    x = _features(rng, 8, 3)
    bn_param = {"mode": "train"}
    _, args_after, _ = student.batchnorm_forward.call_returning_args(
        x, np.ones(3), np.zeros(3), bn_param)
    written = args_after[3]
    for key, batch_stat in (("running_mean", x.mean(axis=0)), ("running_var", x.var(axis=0))):
        if key not in written:
            raise AssertionError(f"bn_param has no {key!r} after a train-mode call: store the "
                                 f"updated value in the dict, bn_param[{key!r}] = ...")
        assert_close(written[key], 0.1 * batch_stat, rtol=1e-9, name=f"bn_param[{key!r}]",
                     hint="start from zeros and update running = momentum * running + "
                          "(1 - momentum) * batch statistic, with momentum = 0.9: the batch "
                          "gets weight 0.1 (not 0.9), and the variance is the biased one")


# --------------------------------------------------------------------------- backward passes


def _gradient_problem(rng, n=4, d=3):
    x = _features(rng, n, d)
    gamma = rng.normal(size=d)
    beta = rng.normal(size=d)
    dout = rng.normal(size=(n, d))
    return x, gamma, beta, dout


@pytest.mark.points(2)
def test_backward_dx_gradient_check(student, rng):
    """N=4, D=3: dx agrees with a centred-difference derivative of your own forward pass."""
    x, gamma, beta, dout = _gradient_problem(rng)
    _, cache = call_keeping(student.batchnorm_forward, x, gamma, beta, {"mode": "train"}, keep=(1,))
    dx, _, _ = student.batchnorm_backward(dout, cache)
    numeric = _own_numerical_gradient(student.batchnorm_forward,
                                      (x, gamma, beta, {"mode": "train"}), 0, dout)
    assert_grad_close(dx, numeric, name="dx",
                      hint="x reaches the output three ways: directly, through the batch mean "
                           "mu and through the batch variance var; add the gradients of all "
                           "three paths")


@pytest.mark.points(1)
def test_backward_dgamma_dbeta_gradient_check(student, rng):
    """N=4, D=3: dgamma and dbeta agree with centred differences of your own forward pass."""
    x, gamma, beta, dout = _gradient_problem(rng)
    _, cache = call_keeping(student.batchnorm_forward, x, gamma, beta, {"mode": "train"}, keep=(1,))
    _, dgamma, dbeta = student.batchnorm_backward(dout, cache)
    args = (x, gamma, beta, {"mode": "train"})
    num_gamma = _own_numerical_gradient(student.batchnorm_forward, args, 1, dout)
    num_beta = _own_numerical_gradient(student.batchnorm_forward, args, 2, dout)
    assert_grad_close(dgamma, num_gamma, name="dgamma",
                      hint="dgamma = np.sum(dout * x_hat, axis=0)")
    assert_grad_close(dbeta, num_beta, name="dbeta", hint="dbeta = np.sum(dout, axis=0)")


@pytest.mark.points(1)
def test_backward_alt_matches_backward(student, rng):
    """N=10, D=6: batchnorm_backward_alt returns what your batchnorm_backward returns."""
    x, gamma, beta, dout = _gradient_problem(rng, n=10, d=6)
    _, cache = call_keeping(student.batchnorm_forward, x, gamma, beta, {"mode": "train"}, keep=(1,))
    dx, dgamma, dbeta = student.batchnorm_backward(dout, cache)
    dx_alt, dgamma_alt, dbeta_alt = student.batchnorm_backward_alt(dout, cache)
    hint = ("the two backward functions disagree, so (at least) one of them is wrong: run "
            "the gradient checks above on both")
    assert_close(dx_alt, dx, rtol=1e-6, atol=1e-9, name="dx of batchnorm_backward_alt",
                 hint=hint)
    assert_close(dgamma_alt, dgamma, rtol=1e-6, atol=1e-9,
                 name="dgamma of batchnorm_backward_alt", hint=hint)
    assert_close(dbeta_alt, dbeta, rtol=1e-6, atol=1e-9,
                 name="dbeta of batchnorm_backward_alt", hint=hint)
    # And one value worked out by hand, so that two functions that agree on nothing (zeros)
    # do not pass: beta is added to every row, so dbeta = np.sum(dout, axis=0).
    assert_close(dbeta_alt, dout.sum(axis=0), rtol=1e-6, atol=1e-9,
                 name="dbeta of batchnorm_backward_alt", hint="dbeta = np.sum(dout, axis=0)")


@pytest.mark.points(1)
def test_backward_alt_dx_gradient_check(student, rng):
    """N=4, D=3: dx of batchnorm_backward_alt agrees with centred differences of your
    forward pass."""
    x, gamma, beta, dout = _gradient_problem(rng)
    _, cache = call_keeping(student.batchnorm_forward, x, gamma, beta, {"mode": "train"}, keep=(1,))
    dx, _, _ = student.batchnorm_backward_alt(dout, cache)
    numeric = _own_numerical_gradient(student.batchnorm_forward,
                                      (x, gamma, beta, {"mode": "train"}), 0, dout)
    assert_grad_close(dx, numeric, name="dx of batchnorm_backward_alt",
                      hint="dx = (dx_hat - mean(dx_hat) - x_hat * mean(dx_hat * x_hat)) "
                           "/ sqrt(var + eps), means over axis 0, dx_hat = dout * gamma")


# ------------------------------------------------------------------------- spatial batchnorm


@pytest.mark.points(1)
def test_spatial_forward_channel_means_are_beta_and_stds_are_gamma(student, rng):
    """N=4, C=3, H=5, W=6 (all different, so a broadcast on the wrong axis cannot pass):
    over axes (0, 2, 3), channel c of out has mean beta[c] and std |gamma[c]|."""
    n, c, h, w = 4, 3, 5, 6
    x = rng.normal(size=(n, c, h, w)) * np.array([1.0, 3.0, 0.5])[:, None, None] + 2.0
    gamma = np.array([1.0, 2.0, 0.5])
    beta = np.array([-1.0, 0.0, 3.0])
    out, _ = call_keeping(student.spatial_batchnorm_forward,
                          x, gamma, beta, {"mode": "train"}, keep=(1,))
    out = assert_shape(out, (n, c, h, w), name="out")
    hint = ("each channel is one feature: take its statistics over axes (0, 2, 3), e.g. move "
            "the channel axis last with x.transpose(0, 2, 3, 1) before reshaping to (-1, C), "
            "and scale channel c by gamma[c]")
    assert_close(out.mean(axis=(0, 2, 3)), beta, rtol=1e-6, atol=1e-8,
                 name="per-channel mean of out", hint=hint)
    assert_close(out.std(axis=(0, 2, 3)), gamma, rtol=1e-4, name="per-channel std of out",
                 hint=hint)


@pytest.mark.points(2)
def test_spatial_backward_gradient_check(student, rng):
    """N=2, C=3, H=2, W=4: dx, dgamma, dbeta agree with centred differences of your own
    spatial forward pass (about 120 calls of it)."""
    n, c, h, w = 2, 3, 2, 4
    x = rng.normal(size=(n, c, h, w)) * 2.0 + 1.0
    gamma = rng.normal(size=c)
    beta = rng.normal(size=c)
    dout = rng.normal(size=(n, c, h, w))

    _, cache = call_keeping(student.spatial_batchnorm_forward,
                            x, gamma, beta, {"mode": "train"}, keep=(1,))
    dx, dgamma, dbeta = student.spatial_batchnorm_backward(dout, cache)
    hint = ("move the channel axis last in dout as you did in the forward pass "
            "(dout.transpose(0, 2, 3, 1).reshape(-1, C)), call your batchnorm backward, and "
            "undo the reshape and transpose for dx")
    args = (x, gamma, beta, {"mode": "train"})
    for name, analytic, k in (("dx", dx, 0), ("dgamma", dgamma, 1), ("dbeta", dbeta, 2)):
        assert_grad_close(analytic,
                          _own_numerical_gradient(student.spatial_batchnorm_forward, args, k,
                                                  dout),
                          name=name, hint=hint)
