"""The protocol codec: what crosses the boundary, and what is refused on receipt."""

from __future__ import annotations

import os

import msgpack
import numpy as np
import pytest
import torch

from autograder import protocol
from autograder.protocol import Channel, Handle, ProtocolError, decode, encode


def roundtrip(value):
    return decode(encode(value))


def test_plain_values_round_trip_with_their_types():
    value = {"a": (1, 2.5, None, True), "b": [b"x", "y", 3 + 4j], 7: {"nested": [()]},
             "big": 10**40}
    out = roundtrip(value)
    assert out == value
    assert type(out["a"]) is tuple and type(out["b"]) is list


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "int64", "int8", "uint8",
                                   "bool", "complex128"])
def test_arrays_keep_dtype_shape_and_values(dtype):
    arr = (np.arange(24).reshape(2, 3, 4) % 2).astype(dtype)
    out = roundtrip(arr)
    assert out.dtype == arr.dtype and out.shape == arr.shape
    np.testing.assert_array_equal(out, arr)
    out[0, 0, 0] = 1  # the received array is writable


def test_non_contiguous_big_endian_and_scalars():
    arr = np.arange(12, dtype=">f8").reshape(3, 4)[:, ::2]
    np.testing.assert_array_equal(roundtrip(arr), arr)
    scalar = roundtrip(np.float32(1.5))
    assert type(scalar) is np.float32 and scalar == 1.5
    assert roundtrip(np.zeros(())).shape == ()


def test_tensors_travel_as_arrays_and_come_back_as_tensors():
    t = torch.arange(6, dtype=torch.float32).reshape(2, 3).requires_grad_()
    out = roundtrip(t * 2)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    assert torch.equal(out, (t * 2).detach())


def test_subclasses_cross_as_plain_values():
    class Liar(float):
        def __eq__(self, other):
            return True

    class ArrayLiar(np.ndarray):
        def __eq__(self, other):
            return True

    out = roundtrip(Liar(1.0))
    assert type(out) is float and out != 2.0
    arr = roundtrip(np.zeros(3).view(ArrayLiar))
    assert type(arr) is np.ndarray and not (arr == 1).any()


def test_unsupported_values_are_refused_or_become_handles():
    for bad in (np.array([object()], dtype=object), np.zeros(2, dtype=[("a", "f8")]),
                lambda: 0, {("tuple", "key"): 1}, {1, 2}):
        with pytest.raises(ProtocolError):
            encode(bad)
    handles = []
    out = decode(encode([1, lambda: 0], on_unsupported=lambda v: handles.append(v) or Handle(5, "function")))
    assert out == [1, Handle(5, "function")] and len(handles) == 1


def _array_message(dtype: str, shape, data: bytes, kind: int = 0) -> bytes:
    payload = msgpack.packb([dtype, shape, data, kind], use_bin_type=True)
    return msgpack.packb(msgpack.ExtType(2, payload), use_bin_type=True)


@pytest.mark.parametrize("message, reason", [
    (_array_message("|O", [1], b"\0" * 8), "dtype"),
    (_array_message("<f8", [2, 2], b"\0" * 8), "bytes"),
    (_array_message("<f8", [-1], b""), "shape"),
    (_array_message("|b1", [2], b"\x00\x07"), "0 and 1"),
    (_array_message("<f8", [1] * 40, b"\0" * 8), "shape"),
    (msgpack.packb(msgpack.ExtType(99, b""), use_bin_type=True), "unknown extension"),
    (b"\xc1\xc1\xc1", "malformed"),
    (b"", "malformed"),
])
def test_malformed_messages_are_refused(message, reason):
    with pytest.raises(ProtocolError, match=reason):
        decode(message)


def test_deep_nesting_is_refused():
    value = msgpack.packb(msgpack.ExtType(1, msgpack.packb([])), use_bin_type=True)
    for _ in range(100):
        value = msgpack.packb(msgpack.ExtType(1, b"\x91" + value), use_bin_type=True)
    with pytest.raises(ProtocolError, match="deep|malformed"):
        decode(value)


def test_oversized_message_is_refused_before_reading_the_body():
    r, w = os.pipe()
    try:
        os.write(w, (2**32 - 1).to_bytes(4, "big"))  # a header announcing 4 GiB
        channel = Channel(r, w, max_message=1024)
        with pytest.raises(ProtocolError, match="exceeds"):
            channel.recv_bytes()
        with pytest.raises(ProtocolError, match="exceeds"):
            channel.send_bytes(b"x" * 2048)
    finally:
        os.close(r)
        os.close(w)


def test_channel_round_trip_and_closed_pipe():
    r, w = os.pipe()
    channel = Channel(r, w)
    channel.send_bytes(encode({"id": 1, "ok": np.ones(3)}))
    assert decode(channel.recv_bytes())["id"] == 1
    os.close(w)
    with pytest.raises(protocol.ChannelClosed):
        Channel(r, -1).recv_bytes()
    os.close(r)


# --- decoding a hostile frame is bounded in memory and time ---------------------------------------
def _lists_of(item: bytes, size: int, per: int = 2**12) -> bytes:
    """A frame of about ``size`` bytes: a list of lists of ``per`` tiny items each."""
    import struct

    inner = b"\xdd" + struct.pack(">I", per) + item * per
    n = size // len(inner)
    return b"\xdd" + struct.pack(">I", n) + inner * n


@pytest.mark.parametrize("item", [b"\x90", b"\x80", b"\xf0", b"\xa2\xc4\x80", b"\xd4\x01\x90"],
                         ids=["empty lists", "empty dicts", "small negative ints",
                              "short strings", "empty tuples"])
def test_a_hostile_frame_costs_a_small_multiple_of_its_size(item):
    import tracemalloc

    frame = _lists_of(item, 2**20, per=2**10)
    budget = protocol.DecodeBudget(len(frame))
    tracemalloc.start()
    try:
        with pytest.raises(ProtocolError, match="too many small values for its size"):
            decode(frame, budget=budget)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # msgpack's own C allocations are traced too (it allocates through Python's allocator).
    assert peak < 12 * len(frame) + budget.MEMORY_FLOOR, peak / len(frame)
    # Without the budget (as before) the same frame costs tens of times its size.
    assert budget.limit < 9 * len(frame) + budget.MEMORY_FLOOR


def test_one_list_may_not_claim_more_items_than_the_frame_has_bytes():
    import struct

    frame = b"\xdd" + struct.pack(">I", 2**31) + b"\xc0" * 100
    with pytest.raises(ProtocolError, match="longer than its frame allows"):
        decode(frame, budget=protocol.DecodeBudget(len(frame)))
    with pytest.raises(ProtocolError, match="max_array_len"):
        decode(frame)


def test_decoding_stops_at_the_calls_deadline():
    import time

    frame = _lists_of(b"\x90", 2**20, per=8)
    budget = protocol.DecodeBudget(len(frame), memory_factor=10**6,
                                   deadline=time.monotonic() - 1)
    with pytest.raises(ProtocolError, match="longer to decode than the time left"):
        decode(frame, budget=budget)


def test_honest_replies_fit_the_budget():
    values = [
        [float(i) for i in range(200_000)],                     # a list of losses
        [{"loss": 0.5, "acc": 0.9, "epoch": i} for i in range(20_000)],
        list(range(300_000)),                                   # labels as a list
        {"out": np.zeros((512, 512)), "cache": (np.ones(10), [1, 2, 3], {"x": 1.0})},
    ]
    for value in values:
        data = encode(value)
        decoded = decode(data, budget=protocol.DecodeBudget(len(data)))
        assert type(decoded) is type(value)


def test_refused_arrays_become_handles_that_say_which_dtypes_cross():
    for arr, what in [(np.array(["2020-01-01"], dtype="datetime64[D]"), "dtype datetime64[D]"),
                      (np.zeros(2, dtype=[("a", "<i4")]), "a structured dtype"),
                      (np.array([object()], dtype=object), "dtype object")]:
        name = protocol.unsendable_type_name(arr)
        assert name.startswith(f"ndarray of {what}"), name
        assert name.endswith(protocol.ACCEPTED_ARRAYS) and len(name) <= 100
        out = decode(encode(arr, on_unsupported=lambda v: Handle(7, protocol.unsendable_type_name(v))))
        assert out == Handle(7, name)
