"""Hidden tests for the LSTM assignment.

Every expected value is computed here, on the trusted side, by PyTorch in float64:
``torch.nn.LSTMCell`` for one step and ``torch.nn.LSTM`` for a sequence, with autograd for the
gradients. PyTorch stacks the gates i, f, g, o while this assignment uses i, f, o, g, and it has
two biases; so its weight rows are our columns permuted (:data:`_to_torch`) and our one bias is
split into two parts whose sum it is (torch adds ``bias_ih + bias_hh``). A submission that
copies torch's gate order therefore fails here even though its own gradient checks pass.

Credit is per function and per output or gradient: the forward tests never call a backward
function, and every gradient has its own test, so a correct forward pass keeps its points when
a backward pass is wrong.

Sizes: one step N=4, D=3, H=5; a sequence N=3, T=6, D=4, H=5 (H != D everywhere), plus the edge
cases N = 1 and T = 1, and pre-activations around +-1000. Values are compared elementwise with
rtol = 1e-6, atol = 1e-9: both sides compute in float64, so a correct answer agrees with torch to
about 1e-14, and every mistake listed in ``solutions/lstm/mutants`` is off by far more.
"""

import numpy as np
import pytest
import torch

from autograder.checks import assert_close, assert_inputs_unchanged, assert_shape, call_keeping

pytestmark = pytest.mark.visibility("after_due_date")

RTOL, ATOL = 1e-6, 1e-9

HINT_ORDER = ("the pre-activation's blocks of H columns are i, f, o, g in this order (torch's "
              "LSTMCell uses i, f, g, o: do not copy it); sigmoid for i, f, o and tanh for g")
HINT_CELL = "next_c = f * prev_c + i * g; " + HINT_ORDER
HINT_HIDDEN = "next_h = o * tanh(next_c), with the tanh; " + HINT_ORDER
HINT_STEP_BACK = {
    "dx": "dx = da @ Wx.T, with da the gradient of the (N, 4H) pre-activation",
    "dprev_h": "dprev_h = da @ Wh.T, with da the gradient of the (N, 4H) pre-activation",
    "dprev_c": "dprev_c = dc * f, where dc = dnext_c + dnext_h * o * (1 - tanh(next_c)**2)",
    "dWx": "dWx = x.T @ da (prev_c is the cell state *before* the step: df = dc * prev_c)",
    "dWh": "dWh = prev_h.T @ da (prev_c is the cell state *before* the step: df = dc * prev_c)",
    "db": "db = da.sum(axis=0): a sum over the batch, not a mean",
}
HINT_DC = (" If several gradients fail, check dc first: next_c reaches the loss directly and "
           "through next_h, dc = dnext_c + dnext_h * o * (1 - tanh(next_c)**2), and the "
           "derivative of the gates (s * (1 - s) for sigmoid, 1 - t**2 for tanh)")
HINT_SEQ_BACK = ("go through the steps in reverse order; step t gets dh[:, t] + dprev_h from step "
                 "t+1 and dprev_c from step t+1 (zero at the last step); dWx, dWh and db are the "
                 "sums over all steps of the step gradients")
HINT_LARGE = ("with pre-activations around +-1000, np.exp overflows unless you use the given "
              "sigmoid (exp(x) / (1 + exp(x)) is inf / inf = NaN for x = 1000)")


# ------------------------------------------------------------------------ torch, in float64


def _to_torch(H):
    """Our column indices in torch's gate order i, f, g, o (ours is i, f, o, g)."""
    return np.concatenate([np.arange(0, 2 * H), np.arange(3 * H, 4 * H), np.arange(2 * H, 3 * H)])


def _load(module, Wx, Wh, b, rng, suffix=""):
    """Copy our (Wx, Wh, b) into a torch LSTMCell / LSTM layer; b is split into two biases."""
    H = Wh.shape[0]
    perm = _to_torch(H)
    b_ih = rng.normal(size=b.shape)
    with torch.no_grad():
        getattr(module, "weight_ih" + suffix).copy_(torch.from_numpy(Wx.T[perm]))
        getattr(module, "weight_hh" + suffix).copy_(torch.from_numpy(Wh.T[perm]))
        getattr(module, "bias_ih" + suffix).copy_(torch.from_numpy(b_ih[perm]))
        getattr(module, "bias_hh" + suffix).copy_(torch.from_numpy((b - b_ih)[perm]))


def _from_torch_weights(module, H, suffix=""):
    """Our (dWx, dWh, db) from the gradients torch accumulated in the module's parameters."""
    perm = _to_torch(H)
    dWx = np.zeros((getattr(module, "weight_ih" + suffix).shape[1], 4 * H))
    dWh = np.zeros((H, 4 * H))
    db = np.zeros(4 * H)
    dWx[:, perm] = getattr(module, "weight_ih" + suffix).grad.numpy().T
    dWh[:, perm] = getattr(module, "weight_hh" + suffix).grad.numpy().T
    # torch's two biases both enter the pre-activation with weight 1: each gets the whole db.
    db[perm] = getattr(module, "bias_ih" + suffix).grad.numpy()
    return dWx, dWh, db


def _leaf(a):
    return torch.from_numpy(np.array(a, dtype=np.float64)).requires_grad_(True)


def torch_step(x, prev_h, prev_c, Wx, Wh, b, dnext_h=None, dnext_c=None, rng=None):
    """(next_h, next_c) of torch's LSTMCell, and with upstream gradients also
    {name: gradient} for dx, dprev_h, dprev_c, dWx, dWh, db."""
    D, H = Wx.shape[0], Wh.shape[0]
    cell = torch.nn.LSTMCell(D, H, dtype=torch.float64)
    _load(cell, Wx, Wh, b, rng if rng is not None else np.random.default_rng(0))
    xt, ht, ct = _leaf(x), _leaf(prev_h), _leaf(prev_c)
    next_h, next_c = cell(xt, (ht, ct))
    if dnext_h is None:
        return next_h.detach().numpy(), next_c.detach().numpy()
    torch.autograd.backward([next_h, next_c], [torch.from_numpy(dnext_h),
                                               torch.from_numpy(dnext_c)])
    dWx, dWh, db = _from_torch_weights(cell, H)
    return {"dx": xt.grad.numpy(), "dprev_h": ht.grad.numpy(), "dprev_c": ct.grad.numpy(),
            "dWx": dWx, "dWh": dWh, "db": db}


def torch_sequence(x, h0, Wx, Wh, b, dh=None, rng=None):
    """h (N, T, H) of torch's LSTM from (h0, c0 = 0), and with dh also
    {name: gradient} for dx, dh0, dWx, dWh, db."""
    N, _, D = x.shape
    H = Wh.shape[0]
    lstm = torch.nn.LSTM(D, H, batch_first=True, dtype=torch.float64)
    _load(lstm, Wx, Wh, b, rng if rng is not None else np.random.default_rng(0), suffix="_l0")
    xt, h0t = _leaf(x), _leaf(h0)
    h, _ = lstm(xt, (h0t[None], torch.zeros(1, N, H, dtype=torch.float64)))
    if dh is None:
        return h.detach().numpy()
    h.backward(torch.from_numpy(dh))
    dWx, dWh, db = _from_torch_weights(lstm, H, suffix="_l0")
    return {"dx": xt.grad.numpy(), "dh0": h0t.grad.numpy(), "dWx": dWx, "dWh": dWh, "db": db}


# ------------------------------------------------------------------------------- problems


def _weights(rng, D, H, scale=0.5):
    return (rng.normal(size=(D, 4 * H)) * scale, rng.normal(size=(H, 4 * H)) * scale,
            rng.normal(size=4 * H) * scale)


def step_problem(rng, N=4, D=3, H=5, scale=0.5):
    return (rng.normal(size=(N, D)), rng.normal(size=(N, H)), rng.normal(size=(N, H)),
            *_weights(rng, D, H, scale))


def seq_problem(rng, N=3, T=6, D=4, H=5, scale=0.5):
    return (rng.normal(size=(N, T, D)), rng.normal(size=(N, H)), *_weights(rng, D, H, scale))


# Pre-activations around +-1000: x ~ N(0, 1) and Wx ~ N(0, 300^2) give |x @ Wx| up to ~2000;
# the gates saturate at exactly 0 or 1 and every value stays finite.
LARGE_SCALE = 300.0


def _assert_finite(value, name):
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return  # not numeric: assert_close says what came back
    if not np.all(np.isfinite(arr)):
        raise AssertionError(f"{name} contains NaN or infinity. {HINT_LARGE}")


def _large_step_problem(rng, N=4, D=3, H=5):
    x, prev_h, prev_c, Wx, Wh, b = step_problem(rng, N, D, H)
    return x, prev_h, prev_c, Wx * LARGE_SCALE / 0.5, Wh, b


# ------------------------------------------------------------------------ lstm_step_forward


STEP_OUTPUTS = ["next_h", "next_c"]
HINTS_FORWARD = {"next_h": HINT_HIDDEN, "next_c": HINT_CELL}


@pytest.mark.points(2)
@pytest.mark.parametrize("k", range(2), ids=STEP_OUTPUTS)
def test_step_forward_matches_torch_lstmcell(student, rng, k):
    args = step_problem(rng)
    expected = torch_step(*args, rng=rng)[k]
    actual = call_keeping(student.lstm_step_forward, *args, keep=(2,))[k]
    assert_close(actual, expected, rtol=RTOL, atol=ATOL, name=STEP_OUTPUTS[k],
                 hint=HINTS_FORWARD[STEP_OUTPUTS[k]])


@pytest.mark.points(1)
def test_step_forward_single_example(student, rng):
    args = step_problem(rng, N=1, D=6, H=2)
    expected_h, expected_c = torch_step(*args, rng=rng)
    next_h, next_c, _ = call_keeping(student.lstm_step_forward, *args, keep=(2,))
    hint = "if only this case fails, look for code that drops the batch axis when N = 1"
    assert_close(next_c, expected_c, rtol=RTOL, atol=ATOL, name="next_c (N=1)", hint=hint)
    assert_close(next_h, expected_h, rtol=RTOL, atol=ATOL, name="next_h (N=1)", hint=hint)


@pytest.mark.points(1)
def test_step_forward_large_preactivations(student, rng):
    args = _large_step_problem(rng)
    expected_h, expected_c = torch_step(*args, rng=rng)
    next_h, next_c, _ = call_keeping(student.lstm_step_forward, *args, keep=(2,))
    _assert_finite(next_c, "next_c")
    _assert_finite(next_h, "next_h")
    assert_close(next_c, expected_c, rtol=RTOL, atol=ATOL, name="next_c", hint=HINT_CELL)
    assert_close(next_h, expected_h, rtol=RTOL, atol=ATOL, name="next_h", hint=HINT_HIDDEN)


@pytest.mark.points(1)
def test_step_forward_does_not_modify_inputs(student, rng):
    args = step_problem(rng)
    next_h, _, _ = assert_inputs_unchanged(student.lstm_step_forward, *args)
    # The point is for a working function that leaves its inputs alone, not for any function.
    assert_close(next_h, torch_step(*args, rng=rng)[0], rtol=RTOL, atol=ATOL, name="next_h",
                 hint=HINT_HIDDEN)


# ----------------------------------------------------------------------- lstm_step_backward


STEP_GRADS = ["dx", "dprev_h", "dprev_c", "dWx", "dWh", "db"]


def _step_backward(student, args, rng):
    N, H = args[1].shape
    dnext_h, dnext_c = rng.normal(size=(N, H)), rng.normal(size=(N, H))
    expected = torch_step(*args, dnext_h=dnext_h, dnext_c=dnext_c, rng=rng)
    _, _, cache = call_keeping(student.lstm_step_forward, *args, keep=(2,))
    grads = student.lstm_step_backward(dnext_h, dnext_c, cache)
    if not isinstance(grads, (tuple, list)) or len(grads) != 6:
        raise AssertionError("lstm_step_backward should return a tuple of 6 arrays "
                             "(dx, dprev_h, dprev_c, dWx, dWh, db)")
    return dict(zip(STEP_GRADS, grads)), expected


@pytest.mark.points(1)
@pytest.mark.parametrize("name", STEP_GRADS)
def test_step_backward_matches_torch(student, rng, name):
    actual, expected = _step_backward(student, step_problem(rng), rng)
    assert_close(actual[name], expected[name], rtol=RTOL, atol=ATOL, name=name,
                 hint=HINT_STEP_BACK[name] + "." + HINT_DC)


@pytest.mark.points(1)
def test_step_backward_only_through_next_c(student, rng):
    # dnext_h = 0: the loss sees the step only through next_c, so o gets no gradient and dc is
    # exactly dnext_c. Checks all six gradients at once.
    args = step_problem(rng)
    N, H = args[1].shape
    dnext_h, dnext_c = np.zeros((N, H)), rng.normal(size=(N, H))
    expected = torch_step(*args, dnext_h=dnext_h, dnext_c=dnext_c, rng=rng)
    _, _, cache = call_keeping(student.lstm_step_forward, *args, keep=(2,))
    grads = student.lstm_step_backward(dnext_h, dnext_c, cache)
    for name, grad in zip(STEP_GRADS, grads):
        assert_close(grad, expected[name], rtol=RTOL, atol=ATOL, name=f"{name} (dnext_h = 0)",
                     hint=HINT_STEP_BACK[name])


HINT_UPSTREAM = ("dnext_h and dnext_c belong to the caller (lstm_backward passes on arrays "
                 "it still uses): do not add into them with dnext_c += ... or dnext_h *= ...; "
                 "write dc = dnext_c + dnext_h * o * (1 - tanh(next_c)**2) into a new variable")


@pytest.mark.points(1)
def test_step_backward_does_not_modify_upstream_gradients(student, rng):
    args = step_problem(rng)
    N, H = args[1].shape
    dnext_h, dnext_c = rng.normal(size=(N, H)), rng.normal(size=(N, H))
    expected = torch_step(*args, dnext_h=dnext_h, dnext_c=dnext_c, rng=rng)
    _, _, cache = call_keeping(student.lstm_step_forward, *args, keep=(2,))
    try:
        grads = assert_inputs_unchanged(student.lstm_step_backward, dnext_h, dnext_c, cache)
    except AssertionError as e:
        which = {"argument 1": "dnext_h (argument 1)", "argument 2": "dnext_c (argument 2)"}
        named = next((v for k, v in which.items() if k in str(e)), "an upstream gradient")
        raise AssertionError(f"lstm_step_backward changed {named} in place. "
                             f"{HINT_UPSTREAM}") from None
    # The point is for a working backward pass that leaves them alone: dprev_c depends on both.
    if not isinstance(grads, (tuple, list)) or len(grads) != 6:
        raise AssertionError("lstm_step_backward should return a tuple of 6 arrays "
                             "(dx, dprev_h, dprev_c, dWx, dWh, db)")
    assert_close(grads[2], expected["dprev_c"], rtol=RTOL, atol=ATOL, name="dprev_c",
                 hint=HINT_STEP_BACK["dprev_c"])


@pytest.mark.points(1)
def test_step_backward_single_example(student, rng):
    args = step_problem(rng, N=1, D=6, H=2)
    actual, expected = _step_backward(student, args, rng)
    for name in STEP_GRADS:
        assert_close(actual[name], expected[name], rtol=RTOL, atol=ATOL, name=f"{name} (N=1)",
                     hint="if only this case fails, look for code that drops the batch axis "
                          "when N = 1")


@pytest.mark.points(1)
def test_step_backward_large_preactivations(student, rng):
    actual, expected = _step_backward(student, _large_step_problem(rng), rng)
    for name in STEP_GRADS:
        _assert_finite(actual[name], name)
        assert_close(actual[name], expected[name], rtol=RTOL, atol=ATOL, name=name,
                     hint="saturated gates have zero derivative; " + HINT_STEP_BACK[name])


# ----------------------------------------------------------------------------- lstm_forward


HINT_SEQ_FORWARD = ("h[:, t] is the hidden state next_h of step t (not the cell state); the cell "
                    "state starts at zero (c0 = np.zeros_like(h0), not h0) and is carried from "
                    "step to step; " + HINT_ORDER)


@pytest.mark.points(3)
def test_forward_matches_torch_lstm(student, rng):
    args = seq_problem(rng)
    h, _ = call_keeping(student.lstm_forward, *args, keep=(1,))
    assert_close(h, torch_sequence(*args, rng=rng), rtol=RTOL, atol=ATOL, name="h",
                 hint=HINT_SEQ_FORWARD)


@pytest.mark.points(1)
@pytest.mark.parametrize("N, T", [pytest.param(3, 1, id="single_step"),
                                  pytest.param(1, 5, id="single_example")])
def test_forward_edge_shapes(student, rng, N, T):
    args = seq_problem(rng, N=N, T=T, D=2, H=3)
    h, _ = call_keeping(student.lstm_forward, *args, keep=(1,))
    assert_close(h, torch_sequence(*args, rng=rng), rtol=RTOL, atol=ATOL,
                 name=f"h for N={N}, T={T}",
                 hint="if only this case fails, look for code that drops an axis of size 1 "
                      "(np.squeeze, x[0]) or a loop bound that skips a step")


@pytest.mark.points(1)
def test_forward_large_preactivations(student, rng):
    x, h0, Wx, Wh, b = seq_problem(rng)
    args = (x, h0, Wx * LARGE_SCALE / 0.5, Wh, b)
    h, _ = call_keeping(student.lstm_forward, *args, keep=(1,))
    _assert_finite(h, "h")
    assert_close(h, torch_sequence(*args, rng=rng), rtol=RTOL, atol=ATOL, name="h",
                 hint=HINT_SEQ_FORWARD)


# ---------------------------------------------------------------------------- lstm_backward


SEQ_GRADS = ["dx", "dh0", "dWx", "dWh", "db"]


def _seq_backward(student, args, rng):
    dh = rng.normal(size=(args[0].shape[0], args[0].shape[1], args[1].shape[1]))
    expected = torch_sequence(*args, dh=dh, rng=rng)
    _, cache = call_keeping(student.lstm_forward, *args, keep=(1,))
    grads = student.lstm_backward(dh, cache)
    if not isinstance(grads, (tuple, list)) or len(grads) != 5:
        raise AssertionError("lstm_backward should return a tuple of 5 arrays "
                             "(dx, dh0, dWx, dWh, db)")
    return dict(zip(SEQ_GRADS, grads)), expected


@pytest.mark.points(2)
@pytest.mark.parametrize("name", SEQ_GRADS)
def test_backward_matches_torch(student, rng, name):
    actual, expected = _seq_backward(student, seq_problem(rng), rng)
    assert_close(actual[name], expected[name], rtol=RTOL, atol=ATOL, name=name,
                 hint=HINT_SEQ_BACK)


@pytest.mark.points(1)
@pytest.mark.parametrize("N, T", [pytest.param(3, 1, id="single_step"),
                                  pytest.param(1, 5, id="single_example")])
def test_backward_edge_shapes(student, rng, N, T):
    actual, expected = _seq_backward(student, seq_problem(rng, N=N, T=T, D=2, H=3), rng)
    for name in SEQ_GRADS:
        assert_close(actual[name], expected[name], rtol=RTOL, atol=ATOL,
                     name=f"{name} for N={N}, T={T}",
                     hint="if only this case fails, look for code that drops an axis of size 1 "
                          "or a loop bound that skips a step; " + HINT_SEQ_BACK)


@pytest.mark.points(1)
def test_backward_does_not_modify_dh(student, rng):
    args = seq_problem(rng)
    dh = rng.normal(size=(args[0].shape[0], args[0].shape[1], args[1].shape[1]))
    expected = torch_sequence(*args, dh=dh, rng=rng)
    _, cache = call_keeping(student.lstm_forward, *args, keep=(1,))
    try:
        grads = assert_inputs_unchanged(student.lstm_backward, dh, cache)
    except AssertionError:
        raise AssertionError(
            "lstm_backward changed dh in place: add dprev_h into a new array "
            "(dnext_h = dh[:, t, :] + dprev_h), not into dh[:, t, :], which is a view of dh; and "
            "if your lstm_step_backward changes dnext_h or dnext_c in place, a slice of dh "
            "passed to it changes dh too. " + HINT_UPSTREAM) from None
    # The point needs correct gradients too: a function that returns garbage earns nothing.
    assert_close(grads[0], expected["dx"], rtol=RTOL, atol=ATOL, name="dx", hint=HINT_SEQ_BACK)
