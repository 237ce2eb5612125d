"""LSTM: one step of the cell and a whole sequence, forward and backward.

You implement four functions:

* :func:`lstm_step_forward` and :func:`lstm_step_backward`: one time step of an LSTM cell;
* :func:`lstm_forward` and :func:`lstm_backward`: the cell unrolled over a sequence of T steps,
  starting from a given hidden state ``h0`` and a **zero** cell state ``c0``.

Conventions used everywhere in this assignment (the tests check exactly these):

* **The gates are stacked in the order i, f, o, g.** The pre-activation
  ``a = x @ Wx + prev_h @ Wh + b`` has shape (N, 4H); its four blocks of H columns are

  ======== ================ =================== ==============
  columns  gate             nonlinearity        meaning
  ======== ================ =================== ==============
  0:H      i (input)        sigmoid             how much of g to write
  H:2H     f (forget)       sigmoid             how much of c to keep
  2H:3H    o (output)       sigmoid             how much of tanh(c) to show
  3H:4H    g (candidate)    tanh                the value written into c
  ======== ================ =================== ==============

  PyTorch's ``torch.nn.LSTMCell`` stacks them as i, f, **g, o**: do not copy its layout.
* Data is batch-major: ``x`` has shape (N, D) for one step and (N, T, D) for a sequence.
* Weights multiply from the right: ``x @ Wx`` with ``Wx`` of shape (D, 4H), ``h @ Wh`` with
  ``Wh`` of shape (H, 4H); there is a single bias ``b`` of shape (4H,).
* Use :func:`sigmoid` below (it is given, not part of the exercise): ``1 / (1 + np.exp(-x))``
  overflows for large negative x, and ``np.exp(x) / (1 + np.exp(x))`` returns NaN for large
  positive x.

Only numpy is needed. No function may modify its arguments in place.
"""

import numpy as np


def sigmoid(x):
    """Numerically stable logistic function ``1 / (1 + exp(-x))``, elementwise.

    Given to you: use it for the i, f and o gates. For ``x >= 0`` it computes
    ``1 / (1 + exp(-x))``, for ``x < 0`` the equal ``exp(x) / (1 + exp(x))``, so ``np.exp`` only
    ever sees arguments <= 0 and never overflows, even for ``x = +-1000``.
    """
    x = np.asarray(x, dtype=np.float64)
    pos = x >= 0
    neg = ~pos
    z = np.zeros_like(x)
    z[pos] = np.exp(-x[pos])
    z[neg] = np.exp(x[neg])
    top = np.ones_like(x)
    top[neg] = z[neg]
    return top / (1 + z)


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    """Forward pass of one time step of an LSTM cell.

    With H the hidden size, compute the pre-activation ``a = x @ Wx + prev_h @ Wh + b`` of shape
    (N, 4H) and split it into four blocks of H columns, **in the order i, f, o, g**::

        i = sigmoid(a[:, 0:H])       # input gate
        f = sigmoid(a[:, H:2H])      # forget gate
        o = sigmoid(a[:, 2H:3H])     # output gate
        g = np.tanh(a[:, 3H:4H])     # candidate cell value (tanh, not sigmoid)

        next_c = f * prev_c + i * g          # elementwise products
        next_h = o * np.tanh(next_c)         # tanh of the new cell state

    (``torch.nn.LSTMCell`` orders the blocks i, f, g, o; this assignment uses i, f, o, g.)

    Inputs:
    - x: input data, of shape (N, D).
    - prev_h: previous hidden state, of shape (N, H).
    - prev_c: previous cell state, of shape (N, H).
    - Wx: input-to-hidden weights, of shape (D, 4H).
    - Wh: hidden-to-hidden weights, of shape (H, 4H).
    - b: biases, of shape (4H,).

    Returns a tuple of:
    - next_h: next hidden state, of shape (N, H).
    - next_c: next cell state, of shape (N, H).
    - cache: whatever :func:`lstm_step_backward` needs (a tuple of arrays is fine); the tests
      only pass it back to your backward function.

    Do not modify any argument in place.
    """
    # YOUR CODE HERE
    raise NotImplementedError("lstm_step_forward: replace this line with your implementation")


def lstm_step_backward(dnext_h, dnext_c, cache):
    """Backward pass of one time step of an LSTM cell.

    ``dnext_h`` and ``dnext_c`` are the gradients of the loss with respect to the step's two
    outputs. The loss reaches ``next_c`` along two paths, directly (``dnext_c``) and through
    ``next_h = o * tanh(next_c)``, so the total gradient on the cell state is::

        dc = dnext_c + dnext_h * o * (1 - tanh(next_c) ** 2)

    From there, back through ``next_c = f * prev_c + i * g`` and the gate nonlinearities
    (``sigmoid' = s * (1 - s)``, ``tanh' = 1 - t ** 2``) to the pre-activation ``da`` (N, 4H),
    stacked in the order i, f, o, g, and through ``a = x @ Wx + prev_h @ Wh + b``.

    Inputs:
    - dnext_h: gradient with respect to next_h, of shape (N, H).
    - dnext_c: gradient with respect to next_c, of shape (N, H).
    - cache: the cache returned by :func:`lstm_step_forward`.

    Returns a tuple of:
    - dx: gradient with respect to x, of shape (N, D).
    - dprev_h: gradient with respect to prev_h, of shape (N, H).
    - dprev_c: gradient with respect to prev_c, of shape (N, H).
    - dWx: gradient with respect to Wx, of shape (D, 4H).
    - dWh: gradient with respect to Wh, of shape (H, 4H).
    - db: gradient with respect to b, of shape (4H,) (a sum over the batch, not a mean).

    Do not modify ``dnext_h`` or ``dnext_c`` in place.
    """
    # YOUR CODE HERE
    raise NotImplementedError("lstm_step_backward: replace this line with your implementation")


def lstm_forward(x, h0, Wx, Wh, b):
    """Forward pass of an LSTM over a whole sequence.

    Run :func:`lstm_step_forward` for t = 0, 1, ..., T-1 on the input ``x[:, t, :]``. The
    hidden state starts at ``h0`` and the cell state at **zero** (``c0 = np.zeros_like(h0)``:
    ``h0`` is not the initial cell state). The same weights are used at every step.

    Inputs:
    - x: input data, of shape (N, T, D).
    - h0: initial hidden state, of shape (N, H).
    - Wx: input-to-hidden weights, of shape (D, 4H).
    - Wh: hidden-to-hidden weights, of shape (H, 4H).
    - b: biases, of shape (4H,).

    Returns a tuple of:
    - h: the hidden states of all time steps, of shape (N, T, H): ``h[:, t, :]`` is the hidden
      state after step t (the ``next_h`` of that step, not its cell state ``next_c``).
    - cache: whatever :func:`lstm_backward` needs (for example the list of step caches).

    Do not modify any argument in place.
    """
    # YOUR CODE HERE
    raise NotImplementedError("lstm_forward: replace this line with your implementation")


def lstm_backward(dh, cache):
    """Backward pass of an LSTM over a whole sequence.

    ``dh[:, t, :]`` is the gradient of the loss with respect to ``h[:, t, :]`` coming from
    *outside* the LSTM (e.g. from a layer on top of each hidden state). Go through the steps in
    reverse order, t = T-1, ..., 0. At step t the hidden state's total gradient is the upstream
    ``dh[:, t, :]`` **plus** the ``dprev_h`` returned by step t+1, and the cell state's gradient is
    the ``dprev_c`` returned by step t+1 (zero at the last step: the final cell state is not an
    output). The weights are shared by all steps, so their gradients are **summed** over t.

    Inputs:
    - dh: upstream gradients of all hidden states, of shape (N, T, H).
    - cache: the cache returned by :func:`lstm_forward`.

    Returns a tuple of:
    - dx: gradient with respect to the inputs x, of shape (N, T, D).
    - dh0: gradient with respect to the initial hidden state h0, of shape (N, H).
    - dWx: gradient with respect to Wx, of shape (D, 4H).
    - dWh: gradient with respect to Wh, of shape (H, 4H).
    - db: gradient with respect to b, of shape (4H,).

    Do not modify ``dh`` in place (add into a separate variable, not into ``dh[:, t]``).
    """
    # YOUR CODE HERE
    raise NotImplementedError("lstm_backward: replace this line with your implementation")
