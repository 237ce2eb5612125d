"""Helpers that the grader's speed tests for the bonus functions call in your process.

You do not edit or submit this file. It exists because a test that calls
``conv_forward_fast`` directly receives the whole return value, cache included, and copying a
large im2col cache between processes on every call would be timed as part of your function.
These helpers call your functions and keep the cache here, in your process, so that the timed
calls carry only the arrays that a layer's caller needs: ``x`` in and ``out`` back, ``dout`` in
and ``(dx, dw, db)`` back.
"""

import conv_layers


class KeptCache:
    """The cache returned by ``conv_forward_fast``, kept in the student's process."""

    def __init__(self, cache):
        self.cache = cache


def forward_fast_output(x, w, b, conv_param):
    """``conv_forward_fast(x, w, b, conv_param)``, returning ``out`` only."""
    out, _ = conv_layers.conv_forward_fast(x, w, b, conv_param)
    return out


def forward_fast_keep_cache(x, w, b, conv_param):
    """``conv_forward_fast(x, w, b, conv_param)``, returning ``(out, kept)``: ``kept`` stays in
    this process (the test gets a handle) and is passed to :func:`backward_fast`."""
    out, cache = conv_layers.conv_forward_fast(x, w, b, conv_param)
    return out, KeptCache(cache)


def backward_fast(dout, kept):
    """``conv_backward_fast(dout, cache)`` with the cache kept by
    :func:`forward_fast_keep_cache`."""
    return conv_layers.conv_backward_fast(dout, kept.cache)
