"""Hidden tests for the batch normalization assignment.

Train-mode outputs and all gradients are compared with ``torch.nn.functional.batch_norm`` and
its autograd, computed here on the trusted side in float64. Running statistics and test-mode
outputs are compared with values computed here from the stated convention
(``running = momentum * running + (1 - momentum) * batch``, biased batch variance; PyTorch's
own running statistics use the unbiased variance, so they are not used). The running
statistics are read back from ``bn_param`` with ``call_returning_args``, because the student's
function updates the dict in the student process.

Every upstream gradient is random: with ``dout`` all ones the true ``dx`` is exactly zero, and
a backward pass that returns zeros would pass. Spatial inputs have C, H and W all different,
so a gamma broadcast on the wrong axis or a reshape without moving the channel axis cannot
pass by accident. Each function gets separate tests per output (forward value, running mean,
running variance, test mode, dx, dgamma/dbeta), so a correct forward pass keeps its points
when the backward pass is wrong.

Sizes: at most 16384 x 4 numbers (the speed comparison), otherwise a few hundred; the whole
file runs in a few seconds.
"""

import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from autograder.checks import assert_close, assert_inputs_unchanged, assert_shape, call_keeping

pytestmark = pytest.mark.visibility("after_due_date")

HINT_FORWARD = ("normalize each feature (column, axis 0) with its batch mean and its biased "
                "variance mean((x - mu) ** 2) (divide by N, not N - 1), as "
                "(x - mu) / sqrt(var + eps), then compute gamma * x_hat + beta")
HINT_EPS = ("eps belongs inside the square root, (x - mu) / np.sqrt(var + eps), not "
            "(x - mu) / (np.sqrt(var) + eps); it matters when a feature's variance is "
            "comparable to eps")
HINT_EPS_PARAM = "read eps from bn_param (bn_param.get('eps', 1e-5)) instead of a constant"
HINT_TEST_MODE = ("in test mode normalize with bn_param['running_mean'] and "
                  "bn_param['running_var'], not with the statistics of the test batch")
HINT_DX = ("x reaches the output three ways: directly through x - mu, through the batch mean "
           "mu and through the batch variance var; the gradient dx is the sum over all three "
           "paths (check the paths through mu and var)")
HINT_DGAMMA = "dgamma = np.sum(dout * x_hat, axis=0), dbeta = np.sum(dout, axis=0)"
HINT_ALT = ("dx = (dx_hat - mean(dx_hat, axis=0) - x_hat * mean(dx_hat * x_hat, axis=0)) "
            "/ sqrt(var + eps) with dx_hat = dout * gamma")
HINT_SPATIAL = ("each channel is one feature: its statistics are taken over axes (0, 2, 3). "
                "Move the channel axis last (x.transpose(0, 2, 3, 1)) before reshaping to "
                "(-1, C), undo both afterwards, and give channel c the scale gamma[c] and "
                "shift beta[c]")
HINT_SPATIAL_BACKWARD = ("transform dout exactly as x in the forward pass "
                         "(dout.transpose(0, 2, 3, 1).reshape(-1, C)), call your batchnorm "
                         "backward, and undo the reshape and the transpose for dx")

SPATIAL_SHAPE = (2, 5, 3, 4)  # N, C, H, W: C, H and W all different


# ------------------------------------------------------------------------------- helpers


def _features(rng, n, d, low=0.5, high=3.0):
    """Features with different means (-5..5) and standard deviations (low..high)."""
    return rng.normal(size=(n, d)) * rng.uniform(low, high, size=d) + rng.uniform(-5, 5, size=d)


def _torch_train(x, gamma, beta, dout=None, eps=1e-5):
    """Train-mode batch norm in float64 by torch: (out, dx, dgamma, dbeta); the gradients are
    None without ``dout``."""
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    gt = torch.tensor(gamma, dtype=torch.float64, requires_grad=True)
    bt = torch.tensor(beta, dtype=torch.float64, requires_grad=True)
    out = F.batch_norm(xt, None, None, gt, bt, training=True, eps=eps)
    if dout is None:
        return out.detach().numpy(), None, None, None
    out.backward(torch.tensor(dout, dtype=torch.float64))
    return out.detach().numpy(), xt.grad.numpy(), gt.grad.numpy(), bt.grad.numpy()


def _test_mode_output(x, gamma, beta, running_mean, running_var, eps=1e-5, channel_axis=1):
    shape = [1] * x.ndim
    shape[channel_axis] = -1
    r = (lambda v: np.reshape(v, shape))
    return r(gamma) * (x - r(running_mean)) / np.sqrt(r(running_var) + eps) + r(beta)


def _running(bn_param_after, key, size, when="a train-mode call"):
    """``bn_param[key]`` as the student's code left it, or a failure saying it is missing."""
    if not isinstance(bn_param_after, dict) or key not in bn_param_after:
        raise AssertionError(
            f"bn_param has no {key!r} after {when}: store the running statistics in the dict "
            f"(bn_param[{key!r}] = ...); the caller reads them there")
    return assert_shape(bn_param_after[key], (size,), name=f"bn_param[{key!r}]")


def _matching(actual, candidates):
    """The hint of the first candidate value that ``actual`` equals, if any."""
    for value, hint in candidates:
        if np.shape(actual) == np.shape(value) and np.allclose(actual, value, rtol=1e-9,
                                                               atol=1e-12):
            return hint
    return None


def _run_train_steps(student, batches, gamma, beta, bn_param):
    """Call the student's forward on each batch in train mode, passing on the bn_param that the
    previous call left; returns the last bn_param."""
    for x in batches:
        _, args_after, _ = student.batchnorm_forward.call_returning_args(
            x, gamma, beta, bn_param)
        bn_param = args_after[3]
        if not isinstance(bn_param, dict):
            raise AssertionError("bn_param is no longer a dict after batchnorm_forward")
    return bn_param


def _expected_running(batches, momentum, mean0, var0, *, reversed_=False, ddof=0):
    mean, var = mean0.copy(), var0.copy()
    for x in batches:
        m = momentum if not reversed_ else 1.0 - momentum
        mean = m * mean + (1 - m) * x.mean(axis=0)
        var = m * var + (1 - m) * x.var(axis=0, ddof=ddof)
    return mean, var


def _training_run(rng, n=10, d=4, steps=4):
    """Batches whose means and spreads change from step to step, so that every weighting of
    old and new statistics gives a different result."""
    return [_features(rng, n, d) + 3.0 * k for k in range(steps)]


RUNNING_MEAN_HINT = ("update running_mean = momentum * running_mean + (1 - momentum) * "
                     "batch_mean, starting from the value already in bn_param (zeros only when "
                     "the key is missing), and read momentum from bn_param")
RUNNING_VAR_HINT = ("update running_var = momentum * running_var + (1 - momentum) * batch_var "
                    "with the biased batch variance, starting from the value already in "
                    "bn_param, and read momentum from bn_param")
REVERSED_HINT = ("your running average gives the new batch the weight momentum and the old "
                 "value 1 - momentum: it is the other way round here, running = momentum * "
                 "running + (1 - momentum) * batch (PyTorch's momentum=0.1 is the weight of "
                 "the batch; ours, 0.9, is the weight of the old value)")
UNCHANGED_HINT = ("bn_param still holds the values it had before training: compute the "
                  "updated running statistics and store them in bn_param (bn_param['running_"
                  "mean'] = ...) before returning")
UNBIASED_HINT = ("the running variance uses the unbiased batch variance (N - 1): this "
                 "assignment uses the biased one, mean((x - mu) ** 2), for both the "
                 "normalization and the running average (PyTorch differs here)")


# ------------------------------------------------------------ batchnorm_forward, train mode


@pytest.mark.points(2)
def test_forward_train_matches_torch(student, rng):
    """N=16, D=7, default eps: out equals torch's train-mode batch_norm."""
    x = _features(rng, 16, 7)
    gamma, beta = rng.normal(size=7), rng.normal(size=7)
    out, _ = call_keeping(student.batchnorm_forward, x, gamma, beta, {"mode": "train"}, keep=(1,))
    expected, _, _, _ = _torch_train(x, gamma, beta)
    assert_close(out, expected, rtol=1e-7, atol=1e-9, name="out", hint=HINT_FORWARD)


@pytest.mark.points(1)
def test_forward_train_small_variance(student, rng):
    """N=12, D=5, feature standard deviations 1e-3 (variance 1e-6, below eps = 1e-5): out
    equals torch's, which needs eps inside the square root."""
    x = rng.normal(size=(12, 5)) * 1e-3 + rng.uniform(-1, 1, size=5)
    gamma, beta = rng.normal(size=5), rng.normal(size=5)
    out, _ = call_keeping(student.batchnorm_forward, x, gamma, beta, {"mode": "train"}, keep=(1,))
    expected, _, _, _ = _torch_train(x, gamma, beta)
    assert_close(out, expected, rtol=1e-6, atol=1e-9, name="out", hint=HINT_EPS)


@pytest.mark.points(1)
def test_forward_train_uses_eps_from_bn_param(student, rng):
    """N=10, D=4, bn_param['eps'] = 0.5: out equals torch's with eps = 0.5."""
    x = rng.normal(size=(10, 4))
    gamma, beta = rng.normal(size=4), rng.normal(size=4)
    out, _ = call_keeping(student.batchnorm_forward,
                          x, gamma, beta, {"mode": "train", "eps": 0.5}, keep=(1,))
    expected, _, _, _ = _torch_train(x, gamma, beta, eps=0.5)
    assert_close(out, expected, rtol=1e-7, atol=1e-9, name="out with eps = 0.5",
                 hint=f"{HINT_EPS_PARAM}; {HINT_EPS}")


@pytest.mark.points(1)
def test_forward_train_single_example_gives_beta(student, rng):
    """N=1, D=6: out is exactly beta."""
    x = _features(rng, 1, 6)
    gamma, beta = rng.normal(size=6), rng.normal(size=6)
    out, _ = call_keeping(student.batchnorm_forward, x, gamma, beta, {"mode": "train"}, keep=(1,))
    assert_close(out, beta[None, :], rtol=1e-9, atol=1e-9, name="out for N=1",
                 hint="with a single example x - mu = 0 and the biased variance is 0, so out "
                      "= beta; NaN means a division by N - 1 or by sqrt(var) without eps")


@pytest.mark.points(1)
def test_forward_does_not_modify_x(student, rng):
    """N=6, D=3: x is the same after the call, and out is right."""
    x = _features(rng, 6, 3)
    gamma, beta = rng.normal(size=3), rng.normal(size=3)
    out, _ = assert_inputs_unchanged(student.batchnorm_forward, x, gamma, beta,
                                     {"mode": "train"})
    assert_close(out, _torch_train(x, gamma, beta)[0], rtol=1e-7, atol=1e-9, name="out",
                 hint=HINT_FORWARD)


def _assert_train_mode_works(student, reference, x):
    """The invalid-mode points are for a forward pass that checks its mode, not for one that
    raises on every call or returns zeros: mode 'train' must give the right output first."""
    gamma, beta = np.ones(x.shape[1]), np.zeros(x.shape[1])
    expected, _ = reference.batchnorm_forward(x.copy(), gamma, beta, {"mode": "train"})
    out, _ = call_keeping(student.batchnorm_forward, x, gamma, beta, {"mode": "train"}, keep=(1,))
    assert_close(out, expected, rtol=1e-6, atol=1e-8, name="out in mode 'train'",
                 hint="normalize each feature (column) with its batch mean and variance "
                      "(axis 0) before checking anything else")


@pytest.mark.points(1)
def test_forward_invalid_mode_raises_value_error(student, reference, rng):
    """N=4, D=3, mode 'eval' and mode 'inference': both raise ValueError."""
    x = _features(rng, 4, 3)
    _assert_train_mode_works(student, reference, x)
    for mode in ("eval", "inference"):
        try:
            student.batchnorm_forward(x, np.ones(3), np.zeros(3), {"mode": mode})
        except ValueError:
            continue
        raise AssertionError(
            f"batchnorm_forward accepted bn_param['mode'] = {mode!r} without raising "
            f"ValueError: anything but 'train' and 'test' is the caller's "
            f"mistake, so raise ValueError naming the mode instead of running either branch")


@pytest.mark.points(1)
def test_forward_invalid_mode_message_names_the_mode(student, reference, rng):
    """N=4, D=3, mode 'eval': the ValueError's message names the invalid mode."""
    x = _features(rng, 4, 3)
    _assert_train_mode_works(student, reference, x)
    with pytest.raises(ValueError) as info:
        student.batchnorm_forward(x, np.ones(3), np.zeros(3), {"mode": "eval"})
    message = getattr(info.value, "student_message", str(info.value))
    assert "eval" in message, (
        f"the ValueError's message {message!r} does not say which mode was wrong: name it and "
        f"the valid ones, e.g. f\"invalid mode {{mode!r}}: expected 'train' or 'test'\"")


# ---------------------------------------------------------------------- running statistics


@pytest.mark.points(2)
def test_running_mean_after_several_steps(student, rng):
    """D=4, momentum 0.7, running statistics given, four train batches of N=10 with shifting
    means: bn_param['running_mean'] after each step follows the stated update exactly."""
    d, momentum = 4, 0.7
    batches = _training_run(rng, d=d)
    mean0, var0 = rng.normal(size=d), rng.uniform(0.5, 2.0, size=d)
    gamma, beta = rng.normal(size=d), rng.normal(size=d)
    bn_param = {"mode": "train", "momentum": momentum, "running_mean": mean0.copy(),
                "running_var": var0.copy()}
    after = _run_train_steps(student, batches, gamma, beta, bn_param)
    actual = _running(after, "running_mean", d)
    expected, _ = _expected_running(batches, momentum, mean0, var0)
    reversed_mean, _ = _expected_running(batches, momentum, mean0, var0, reversed_=True)
    hint = _matching(actual, [(reversed_mean, REVERSED_HINT), (mean0, UNCHANGED_HINT),
                              (np.zeros(d), UNCHANGED_HINT)]) or RUNNING_MEAN_HINT
    assert_close(actual, expected, rtol=1e-9, atol=1e-12,
                 name="bn_param['running_mean'] after 4 steps", hint=hint)


@pytest.mark.points(2)
def test_running_var_after_several_steps(student, rng):
    """D=4, momentum 0.7, running statistics given, four train batches of N=10 with changing
    spreads: bn_param['running_var'] follows the stated update with the biased variance."""
    d, momentum = 4, 0.7
    batches = [b * (1 + k) for k, b in enumerate(_training_run(rng, d=d))]
    mean0, var0 = rng.normal(size=d), rng.uniform(0.5, 2.0, size=d)
    gamma, beta = rng.normal(size=d), rng.normal(size=d)
    bn_param = {"mode": "train", "momentum": momentum, "running_mean": mean0.copy(),
                "running_var": var0.copy()}
    after = _run_train_steps(student, batches, gamma, beta, bn_param)
    actual = _running(after, "running_var", d)
    _, expected = _expected_running(batches, momentum, mean0, var0)
    _, reversed_var = _expected_running(batches, momentum, mean0, var0, reversed_=True)
    _, unbiased_var = _expected_running(batches, momentum, mean0, var0, ddof=1)
    hint = _matching(actual, [(reversed_var, REVERSED_HINT), (unbiased_var, UNBIASED_HINT),
                              (var0, UNCHANGED_HINT), (np.zeros(d), UNCHANGED_HINT)])
    assert_close(actual, expected, rtol=1e-9, atol=1e-12,
                 name="bn_param['running_var'] after 4 steps", hint=hint or RUNNING_VAR_HINT)


@pytest.mark.points(1)
def test_running_stats_from_scratch_with_defaults(student, rng):
    """D=3, bn_param = {'mode': 'train'} only (momentum 0.9, running statistics start at
    zeros), three train batches of N=8: both running statistics are exact after each step."""
    d = 3
    batches = _training_run(rng, n=8, d=d, steps=3)
    gamma, beta = np.ones(d), np.zeros(d)
    bn_param = {"mode": "train"}
    for step in range(1, len(batches) + 1):
        bn_param = _run_train_steps(student, batches[step - 1:step], gamma, beta, bn_param)
        exp_mean, exp_var = _expected_running(batches[:step], 0.9, np.zeros(d), np.zeros(d))
        rev_mean, rev_var = _expected_running(batches[:step], 0.9, np.zeros(d), np.zeros(d),
                                              reversed_=True)
        for key, expected, rev in (("running_mean", exp_mean, rev_mean),
                                   ("running_var", exp_var, rev_var)):
            actual = _running(bn_param, key, d)
            hint = _matching(actual, [(rev, REVERSED_HINT), (np.zeros(d), UNCHANGED_HINT)])
            assert_close(actual, expected, rtol=1e-9, atol=1e-12,
                         name=f"bn_param[{key!r}] after step {step}",
                         hint=hint or ("the defaults are momentum = 0.9 and zeros for missing "
                                       "running statistics; create them only when the key is "
                                       "missing and keep updating the stored values"))


# -------------------------------------------------------------- batchnorm_forward, test mode


@pytest.mark.points(2)
def test_test_mode_uses_running_statistics(student, rng):
    """N=5, D=4, test mode with given running statistics, on a batch whose own statistics are
    far from them: out = gamma * (x - running_mean) / sqrt(running_var + eps) + beta."""
    d = 4
    x = _features(rng, 5, d) + 10.0
    gamma, beta = rng.normal(size=d), rng.normal(size=d)
    running_mean, running_var = rng.normal(size=d), rng.uniform(0.5, 2.0, size=d)
    bn_param = {"mode": "test", "running_mean": running_mean, "running_var": running_var}
    out, _ = call_keeping(student.batchnorm_forward, x, gamma, beta, bn_param, keep=(1,))
    expected = _test_mode_output(x, gamma, beta, running_mean, running_var)
    assert_close(out, expected, rtol=1e-7, atol=1e-9, name="test-mode out", hint=HINT_TEST_MODE)


@pytest.mark.points(1)
def test_test_mode_single_example_with_eps(student, rng):
    """N=1, D=5, test mode, bn_param['eps'] = 0.1: one example is normalized with the running
    statistics (not to beta) and eps is read from bn_param."""
    d = 5
    x = _features(rng, 1, d)
    gamma, beta = rng.normal(size=d), rng.normal(size=d)
    running_mean, running_var = rng.normal(size=d), rng.uniform(0.5, 2.0, size=d)
    bn_param = {"mode": "test", "eps": 0.1, "running_mean": running_mean,
                "running_var": running_var}
    out, _ = call_keeping(student.batchnorm_forward, x, gamma, beta, bn_param, keep=(1,))
    expected = _test_mode_output(x, gamma, beta, running_mean, running_var, eps=0.1)
    assert_close(out, expected, rtol=1e-7, atol=1e-9, name="test-mode out for N=1",
                 hint=f"{HINT_TEST_MODE}; {HINT_EPS_PARAM}")


@pytest.mark.points(1)
def test_test_mode_leaves_running_statistics_unchanged(student, rng):
    """N=6, D=3, test mode: bn_param's running statistics are the same after the call, and out
    is right."""
    d = 3
    x = _features(rng, 6, d)
    gamma, beta = rng.normal(size=d), rng.normal(size=d)
    running_mean, running_var = rng.normal(size=d), rng.uniform(0.5, 2.0, size=d)
    bn_param = {"mode": "test", "running_mean": running_mean, "running_var": running_var}
    (out, _), args_after, _ = student.batchnorm_forward.call_returning_args(
        x, gamma, beta, bn_param)
    assert_close(out, _test_mode_output(x, gamma, beta, running_mean, running_var), rtol=1e-7,
                 atol=1e-9, name="test-mode out", hint=HINT_TEST_MODE)
    for key, before in (("running_mean", running_mean), ("running_var", running_var)):
        assert_close(_running(args_after[3], key, d, "a test-mode call"), before, rtol=0, atol=0,
                     name=f"bn_param[{key!r}] after a test-mode call",
                     hint="test mode must not update the running statistics")


@pytest.mark.points(1)
def test_train_then_test(student, rng):
    """D=4: five train batches of N=16 from bn_param = {'mode': 'train'}, then test mode on a
    new batch of N=3 with the bn_param that training left: out uses the learned statistics."""
    d = 4
    batches = _training_run(rng, n=16, d=d, steps=5)
    gamma, beta = rng.normal(size=d), rng.normal(size=d)
    bn_param = _run_train_steps(student, batches, gamma, beta, {"mode": "train"})
    bn_param = dict(bn_param, mode="test")
    x = _features(rng, 3, d)
    out, _ = call_keeping(student.batchnorm_forward, x, gamma, beta, bn_param, keep=(1,))
    mean, var = _expected_running(batches, 0.9, np.zeros(d), np.zeros(d))
    assert_close(out, _test_mode_output(x, gamma, beta, mean, var), rtol=1e-7, atol=1e-9,
                 name="test-mode out after training",
                 hint="after training, test mode normalizes with the running averages the "
                      "train-mode calls stored in bn_param (momentum 0.9 on the old value)")


# ------------------------------------------------------------------------ batchnorm_backward


def _backward_problem(rng, n=12, d=5, eps=1e-5):
    x = _features(rng, n, d)
    gamma, beta = rng.normal(size=d), rng.normal(size=d)
    dout = rng.normal(size=(n, d))
    return x, gamma, beta, dout, _torch_train(x, gamma, beta, dout, eps=eps)


@pytest.mark.points(3)
def test_backward_dx_matches_torch(student, rng):
    """N=12, D=5, random dout: dx equals torch's autograd."""
    x, gamma, beta, dout, (_, dx_t, _, _) = _backward_problem(rng)
    _, cache = call_keeping(student.batchnorm_forward, x, gamma, beta, {"mode": "train"}, keep=(1,))
    dx, _, _ = student.batchnorm_backward(dout, cache)
    assert_close(dx, dx_t, rtol=1e-6, atol=1e-9, name="dx", hint=HINT_DX)


@pytest.mark.points(1)
def test_backward_dgamma_matches_torch(student, rng):
    """N=12, D=5, random dout: dgamma equals torch's autograd."""
    x, gamma, beta, dout, (_, _, dgamma_t, _) = _backward_problem(rng)
    _, cache = call_keeping(student.batchnorm_forward, x, gamma, beta, {"mode": "train"}, keep=(1,))
    _, dgamma, _ = student.batchnorm_backward(dout, cache)
    assert_close(dgamma, dgamma_t, rtol=1e-6, atol=1e-9, name="dgamma", hint=HINT_DGAMMA)


@pytest.mark.points(1)
def test_backward_dbeta_matches_torch(student, rng):
    """N=12, D=5, random dout: dbeta equals torch's autograd."""
    x, gamma, beta, dout, (_, _, _, dbeta_t) = _backward_problem(rng)
    _, cache = call_keeping(student.batchnorm_forward, x, gamma, beta, {"mode": "train"}, keep=(1,))
    _, _, dbeta = student.batchnorm_backward(dout, cache)
    assert_close(dbeta, dbeta_t, rtol=1e-6, atol=1e-9, name="dbeta", hint=HINT_DGAMMA)


@pytest.mark.points(1)
def test_backward_dx_with_large_eps_and_small_batch(student, rng):
    """N=3, D=4, bn_param['eps'] = 0.5, random dout: dx equals torch's; the backward pass must
    use the eps of the forward pass (keep it, or sqrt(var + eps), in the cache)."""
    x, gamma, beta, dout, (_, dx_t, _, _) = _backward_problem(rng, n=3, d=4, eps=0.5)
    _, cache = call_keeping(student.batchnorm_forward,
                            x, gamma, beta, {"mode": "train", "eps": 0.5}, keep=(1,))
    dx, _, _ = student.batchnorm_backward(dout, cache)
    assert_close(dx, dx_t, rtol=1e-6, atol=1e-9, name="dx with eps = 0.5",
                 hint="use the eps of the forward pass in the backward pass (store it, or "
                      f"sqrt(var + eps), in the cache); {HINT_DX}")


@pytest.mark.points(1)
def test_backward_does_not_modify_dout(student, rng):
    """N=6, D=3: dout is the same after batchnorm_backward, and dx is right."""
    x, gamma, beta, dout, (_, dx_t, _, _) = _backward_problem(rng, n=6, d=3)
    _, cache = call_keeping(student.batchnorm_forward, x, gamma, beta, {"mode": "train"}, keep=(1,))
    dx, _, _ = assert_inputs_unchanged(student.batchnorm_backward, dout, cache)
    assert_close(dx, dx_t, rtol=1e-6, atol=1e-9, name="dx", hint=HINT_DX)


# -------------------------------------------------------------------- batchnorm_backward_alt


@pytest.mark.points(2)
def test_backward_alt_dx_matches_torch(student, rng):
    """N=12, D=5, random dout: dx of batchnorm_backward_alt equals torch's autograd."""
    x, gamma, beta, dout, (_, dx_t, _, _) = _backward_problem(rng)
    _, cache = call_keeping(student.batchnorm_forward, x, gamma, beta, {"mode": "train"}, keep=(1,))
    dx, _, _ = student.batchnorm_backward_alt(dout, cache)
    assert_close(dx, dx_t, rtol=1e-6, atol=1e-9, name="dx of batchnorm_backward_alt",
                 hint=HINT_ALT)


@pytest.mark.points(1)
def test_backward_alt_dgamma_dbeta_match_torch(student, rng):
    """N=12, D=5, random dout: dgamma and dbeta of batchnorm_backward_alt equal torch's."""
    x, gamma, beta, dout, (_, _, dgamma_t, dbeta_t) = _backward_problem(rng)
    _, cache = call_keeping(student.batchnorm_forward, x, gamma, beta, {"mode": "train"}, keep=(1,))
    _, dgamma, dbeta = student.batchnorm_backward_alt(dout, cache)
    assert_close(dgamma, dgamma_t, rtol=1e-6, atol=1e-9, name="dgamma of batchnorm_backward_alt",
                 hint=HINT_DGAMMA)
    assert_close(dbeta, dbeta_t, rtol=1e-6, atol=1e-9, name="dbeta of batchnorm_backward_alt",
                 hint=HINT_DGAMMA)


SPEED_REPEATS = 5
SPEED_RATIO = 3.0


@pytest.mark.points(1)
@pytest.mark.time_limit(60)
def test_backward_alt_is_not_slower_than_backward(student, rng):
    """N=16384, D=4, random dout: batchnorm_backward_alt is right and takes at most 3 times as
    long as your own batchnorm_backward (best of 5 interleaved calls each, both timed the same
    way: the arrays stay in your process, so what is timed is the computation). A vectorized
    closed form is faster than the step-by-step pass; a Python loop over the examples is far
    slower."""
    n, d = 16384, 4
    x, gamma, beta, dout, (_, dx_t, _, _) = _backward_problem(rng, n=n, d=d)
    out, cache = call_keeping(student.batchnorm_forward, x, gamma, beta, {"mode": "train"},
                              keep=(0, 1))
    dx, _, _ = student.batchnorm_backward_alt(dout, cache)
    assert_close(dx, dx_t, rtol=1e-6, atol=1e-9, name="dx of batchnorm_backward_alt",
                 hint=HINT_ALT)
    # For the timing, the forward pass's output (kept in your process) serves as the upstream
    # gradient, and the gradients stay there too: 16384 x 4 doubles do not cross 20 times.
    times = {"batchnorm_backward": [], "batchnorm_backward_alt": []}
    for _ in range(SPEED_REPEATS):
        for name in times:
            fn = getattr(student, name)
            start = time.perf_counter()
            call_keeping(fn, out, cache, keep=(0, 1, 2))
            times[name].append(time.perf_counter() - start)
    staged, alt = min(times["batchnorm_backward"]), min(times["batchnorm_backward_alt"])
    assert alt <= SPEED_RATIO * staged, (
        f"batchnorm_backward_alt took {alt * 1e3:.1f} ms, more than {SPEED_RATIO:g} times "
        f"your batchnorm_backward ({staged * 1e3:.1f} ms) on N={n}, D={d}: compute dx with "
        f"whole-array operations (means over axis 0), without a Python loop")


# ---------------------------------------------------------------------- spatial batchnorm


def _spatial_problem(rng, shape=SPATIAL_SHAPE):
    n, c, h, w = shape
    x = (rng.normal(size=shape) * rng.uniform(0.5, 3.0, size=c)[:, None, None]
         + rng.uniform(-5, 5, size=c)[:, None, None])
    gamma, beta = rng.normal(size=c), rng.normal(size=c)
    dout = rng.normal(size=shape)
    return x, gamma, beta, dout, _torch_train(x, gamma, beta, dout)


@pytest.mark.points(2)
def test_spatial_forward_train_matches_torch(student, rng):
    """N=2, C=5, H=3, W=4: out equals torch's train-mode batch_norm (per-channel statistics)."""
    x, gamma, beta, _, (out_t, _, _, _) = _spatial_problem(rng)
    out, _ = call_keeping(student.spatial_batchnorm_forward,
                          x, gamma, beta, {"mode": "train"}, keep=(1,))
    assert_close(out, out_t, rtol=1e-7, atol=1e-9, name="out", hint=HINT_SPATIAL)


@pytest.mark.points(1)
def test_spatial_forward_running_statistics(student, rng):
    """N=2, C=5, H=3, W=4, two train steps from bn_param = {'mode': 'train'}: the running
    statistics have shape (C,) and follow the update with per-channel batch statistics."""
    n, c, h, w = SPATIAL_SHAPE
    batches = [_spatial_problem(rng)[0] + 2.0 * k for k in range(2)]
    gamma, beta = np.ones(c), np.zeros(c)
    bn_param = {"mode": "train"}
    for x in batches:
        _, args_after, _ = student.spatial_batchnorm_forward.call_returning_args(
            x, gamma, beta, bn_param)
        bn_param = args_after[3]
    flat = [x.transpose(0, 2, 3, 1).reshape(-1, c) for x in batches]
    exp_mean, exp_var = _expected_running(flat, 0.9, np.zeros(c), np.zeros(c))
    rev_mean, rev_var = _expected_running(flat, 0.9, np.zeros(c), np.zeros(c), reversed_=True)
    _, unbiased_var = _expected_running(flat, 0.9, np.zeros(c), np.zeros(c), ddof=1)
    hint = (f"{HINT_SPATIAL}; the running statistics are updated as in batchnorm_forward, "
            f"with the per-channel batch statistics")
    for key, expected, candidates in (
            ("running_mean", exp_mean, [(rev_mean, REVERSED_HINT)]),
            ("running_var", exp_var, [(rev_var, REVERSED_HINT), (unbiased_var, UNBIASED_HINT)])):
        actual = _running(bn_param, key, c)
        candidates = candidates + [(np.zeros(c), UNCHANGED_HINT)]
        assert_close(actual, expected, rtol=1e-9, atol=1e-12,
                     name=f"bn_param[{key!r}] after 2 spatial steps",
                     hint=_matching(actual, candidates) or hint)


@pytest.mark.points(1)
def test_spatial_forward_test_mode(student, rng):
    """N=2, C=5, H=3, W=4, test mode with given per-channel running statistics."""
    x, gamma, beta, _, _ = _spatial_problem(rng)
    c = x.shape[1]
    running_mean, running_var = rng.normal(size=c), rng.uniform(0.5, 2.0, size=c)
    bn_param = {"mode": "test", "running_mean": running_mean, "running_var": running_var}
    out, _ = call_keeping(student.spatial_batchnorm_forward, x, gamma, beta, bn_param, keep=(1,))
    assert_close(out, _test_mode_output(x, gamma, beta, running_mean, running_var), rtol=1e-7,
                 atol=1e-9, name="test-mode out", hint=f"{HINT_SPATIAL}; {HINT_TEST_MODE}")


@pytest.mark.points(2)
def test_spatial_backward_dx_matches_torch(student, rng):
    """N=2, C=5, H=3, W=4, random dout: dx equals torch's autograd."""
    x, gamma, beta, dout, (_, dx_t, _, _) = _spatial_problem(rng)
    _, cache = call_keeping(student.spatial_batchnorm_forward,
                            x, gamma, beta, {"mode": "train"}, keep=(1,))
    dx, _, _ = student.spatial_batchnorm_backward(dout, cache)
    assert_close(dx, dx_t, rtol=1e-6, atol=1e-9, name="dx", hint=HINT_SPATIAL_BACKWARD)


@pytest.mark.points(1)
def test_spatial_backward_dgamma_dbeta_match_torch(student, rng):
    """N=2, C=5, H=3, W=4, random dout: dgamma and dbeta (shape (C,)) equal torch's."""
    x, gamma, beta, dout, (_, _, dgamma_t, dbeta_t) = _spatial_problem(rng)
    _, cache = call_keeping(student.spatial_batchnorm_forward,
                            x, gamma, beta, {"mode": "train"}, keep=(1,))
    _, dgamma, dbeta = student.spatial_batchnorm_backward(dout, cache)
    assert_close(dgamma, dgamma_t, rtol=1e-6, atol=1e-9, name="dgamma",
                 hint=HINT_SPATIAL_BACKWARD)
    assert_close(dbeta, dbeta_t, rtol=1e-6, atol=1e-9, name="dbeta", hint=HINT_SPATIAL_BACKWARD)
