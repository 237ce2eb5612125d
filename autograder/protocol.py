"""The narrow protocol between the trusted grader and the untrusted student runner.

Every message that crosses the boundary is declared here, and so is the codec. Both sides import
this module, so it imports nothing from the rest of the package and nothing beyond numpy and
msgpack (torch only if the process already loaded it).

Framing: a 4-byte big-endian length, then one msgpack document. The receiver refuses a length
above its cap *before* reading the body, so a runner cannot make the grader allocate 10 GB.
Decoding is bounded too: no list or dict may claim more elements than the frame has bytes, and
the grader decodes every reply under a :class:`DecodeBudget` (memory a small multiple of the
frame, time within the call's deadline), so a frame of a million empty lists cannot cost it
gigabytes.

Values: ``None``, ``bool``, ``int``, ``float``, ``complex``, ``str``, ``bytes``, lists, tuples,
dicts with ``str`` or ``int`` keys, numpy arrays and scalars of numeric dtype (``biufc``, little
endian, no fields), torch tensors (sent as arrays, rebuilt as tensors) and handles. No pickle,
no object arrays. On receipt every array's dtype, shape and byte length are checked, booleans
must be 0 or 1, and nesting is bounded. Subclasses never cross: a ``float`` subclass with a
rigged ``__eq__`` arrives as a plain ``float``, an ``ndarray`` subclass as a plain array.

Requests (grader -> runner), each with an ``id``:
  ``{"op": "import", "module": str}``
  ``{"op": "call", "target": Target, "args": list, "kwargs": dict, "return_args": bool,
     "keep_result": bool, "keep_items": [int]}`` (``keep_result``: reply with a handle to the
     result, not its data; ``keep_items``, optional: of a tuple or list result, the elements
     at these indices come back as handles, the rest as data)
  ``{"op": "numgrad", "target": Target, "args": list, "kwargs": dict, "wrt": int | str,
     "h": float, "df": None | array | {int: None | array}}``: a numerical gradient in one
     request. The runner calls the target ``2 x size`` times, with ``args[wrt]`` (or
     ``kwargs[wrt]``, a float64 array) moved by ``+h`` and ``-h`` entry by entry and fresh
     copies of every argument per call, and reduces each output with the upstream weights
     ``df``. Reply ``ok``: ``{"losses": float64 array (size, 2)}``, or
     ``{"unreduced": output, "at": [entry, 0 | 1]}`` for an output it could not reduce. The
     grader checks the reply's shape and dtype and makes every judgement itself.
  ``{"op": "getattr", "target": Target}``
  ``{"op": "release", "handles": [int]}``
Target: ``{"module": str, "name": str}`` or ``{"handle": int, "name": str | None}``.

Replies (runner -> grader): ``{"id", "ok": value}`` (plus ``"args"``/``"kwargs"`` when
``return_args``) or ``{"id", "error": {"type", "message", "traceback", "builtin"}}``; and one
``{"op": "hello", "pid", "degraded": [str]}`` when the runner starts.
"""

from __future__ import annotations

import os
import struct
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

import msgpack
import numpy as np

# msgpack extension type codes.
_EXT_TUPLE = 1
_EXT_ARRAY = 2
_EXT_COMPLEX = 3
_EXT_HANDLE = 4
_EXT_BIGINT = 5

_ARRAY_KIND_NDARRAY = 0
_ARRAY_KIND_SCALAR = 1
_ARRAY_KIND_TENSOR = 2

MAX_DEPTH = 64
MAX_NDIM = 32
DEFAULT_MAX_MESSAGE = 256 * 1024 * 1024
_HEADER = struct.Struct(">I")
_ALLOWED_DTYPES = frozenset(
    np.dtype(t).str
    for t in ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
              "float16", "float32", "float64", "complex64", "complex128")
)


class ProtocolError(Exception):
    """A message broke the protocol: too large, malformed, or a value of a refused type."""


class ChannelClosed(ProtocolError):
    """The other side closed the pipe (for a runner: it exited or was killed)."""


@dataclass(frozen=True)
class Handle:
    """An opaque reference to a value that stays in the student process. ``type_name`` is
    only for messages ("got a Liar object"); nothing is decided from it."""

    id: int
    type_name: str = ""


#: What a student is told when an array cannot cross (datetime64, structured, object, strings).
ACCEPTED_ARRAYS = "only bool, int, uint, float and complex arrays cross"


def unsendable_type_name(value: Any) -> str:
    """The type name a :class:`Handle` carries for a value that cannot cross, for messages:
    for an array of a refused dtype, which dtype and which ones are accepted."""
    name = type(value).__name__
    dtype = getattr(value, "dtype", None)
    if isinstance(value, (np.ndarray, np.generic)) and isinstance(dtype, np.dtype):
        what = "a structured dtype" if dtype.fields is not None else f"dtype {dtype}"
        return f"{name} of {what[:40]}: {ACCEPTED_ARRAYS}"
    if _is_tensor(value):
        return f"{name} of dtype {str(dtype)[:30]}: convert it to float32 or float64"
    return name


def encode(value: Any, *, on_unsupported: Callable[[Any], Any] | None = None) -> bytes:
    """Pack ``value``. ``on_unsupported`` maps a value the protocol cannot carry to one it can
    (the runner turns it into a :class:`Handle`); without it such a value is a ProtocolError."""

    def convert(v: Any, depth: int) -> Any:
        if depth > MAX_DEPTH:
            return fallback(v, "nested too deeply")
        t = type(v)
        if v is None or t is bool or t is str or t is bytes or t is float:
            return v
        if t is int:
            return v if -(1 << 63) <= v < (1 << 64) else msgpack.ExtType(_EXT_BIGINT, str(v).encode())
        if t is list:
            return [convert(x, depth + 1) for x in v]
        if t is tuple:
            return msgpack.ExtType(_EXT_TUPLE, _pack([convert(x, depth + 1) for x in v]))
        if t is dict:
            if all(type(k) is str or type(k) is int for k in v):
                return {k: convert(x, depth + 1) for k, x in v.items()}
            return fallback(v, "a dict whose keys are not all str or int")
        if t is complex:
            return msgpack.ExtType(_EXT_COMPLEX, _pack([v.real, v.imag]))
        if t is Handle:
            return msgpack.ExtType(_EXT_HANDLE, _pack([v.id, v.type_name[:100]]))
        if isinstance(v, np.ndarray):
            return _array_ext(np.asarray(v), _ARRAY_KIND_NDARRAY, fallback)
        if isinstance(v, np.generic):
            return _array_ext(np.asarray(v), _ARRAY_KIND_SCALAR, fallback)
        if _is_tensor(v):
            return _tensor_ext(v, fallback)
        # Subclasses of plain types cross as their plain value: their methods stay behind.
        plain_types: tuple[Any, ...] = (bool, int, float, str, bytes)
        for base in plain_types:
            if isinstance(v, base):
                return convert(base(v), depth)
        return fallback(v, f"a {t.__name__}")

    def fallback(v: Any, what: str) -> Any:
        if on_unsupported is None:
            raise ProtocolError(f"cannot send {what} across the protocol; send numbers, "
                                f"strings, lists, tuples, dicts or numeric arrays")
        return convert(on_unsupported(v), 0)

    return _pack(convert(value, 0))


class DecodeBudget:
    """What decoding one frame may cost the receiver, in memory and time.

    msgpack builds Python objects far larger than their bytes on the wire: an empty list is one
    byte there and 56 bytes here, plus 8 for its slot in the enclosing list; a two-character
    string is 3 bytes there and up to 80 here. A hostile runner can fill a frame with them. So
    every container (list, dict, tuple) is charged, as it is built, its own size and the sizes
    of its elements (a shared object such as a small int is charged as if it were not), and
    decoding stops once the charges pass ``memory_factor`` times the frame plus
    :data:`MEMORY_FLOOR` (room for any small message). Before a list or dict is built, its
    length is bounded by the frame's size and by ``max_items``. Decoding also stops at
    ``deadline`` (a ``time.monotonic()`` value: the grader passes the call's deadline)."""

    MEMORY_FLOOR = 16 << 20

    def __init__(self, frame_bytes: int, memory_factor: float = 8.0,
                 deadline: float | None = None, max_items: int = 1 << 20):
        self.frame_bytes = frame_bytes
        self.limit = memory_factor * frame_bytes + self.MEMORY_FLOOR
        self.max_items = max_items
        self.deadline = deadline
        self.spent = 0
        self.containers = 0

    def charge(self, value: list | tuple | dict) -> None:
        """Count one container just built; raise :class:`ProtocolError` past the budget."""
        cost = sys.getsizeof(value) + sum(map(sys.getsizeof, value))
        if type(value) is dict:
            cost += sum(map(sys.getsizeof, value.values()))
        self.spent += cost
        self.containers += 1
        if self.spent > self.limit:
            raise ProtocolError(
                f"the message holds too many small values for its size (more than "
                f"{self.limit / 2**20:.0f} MiB of objects from {self.frame_bytes} bytes): send "
                f"large collections of numbers as a numpy array")
        if self.deadline is not None and self.containers % 256 == 0 \
                and time.monotonic() > self.deadline:
            raise ProtocolError("the message took longer to decode than the time left for the "
                                "call")

    def list_hook(self, value: list) -> list:
        self.charge(value)
        return value

    def object_hook(self, value: dict) -> dict:
        self.charge(value)
        return value


def decode(data: bytes, *, resolve_handle: Callable[[int], Any] | None = None,
           make_handle: Callable[[int, str], Any] | None = None,
           budget: DecodeBudget | None = None) -> Any:
    """Unpack and validate one message body. Handles become ``resolve_handle(id)`` (runner side:
    the object itself) or ``make_handle(id, type_name)`` (grader side: a proxy), else :class:`Handle`.

    ``budget`` bounds what decoding may cost (see :class:`DecodeBudget`); the grader decodes
    every reply under one. Without it (the runner, decoding the grader's requests) only
    msgpack's own length limits, derived from the frame's size, apply."""
    depth = [0]

    def ext_hook(code: int, payload: bytes) -> Any:
        depth[0] += 1
        try:
            if depth[0] > MAX_DEPTH:
                raise ProtocolError("value nested too deeply")
            if code == _EXT_TUPLE:
                items = _unpack(payload, ext_hook, budget)
                if type(items) is not list:
                    raise ProtocolError("malformed tuple")
                items = tuple(items)
                if budget is not None:
                    budget.charge(items)
                return items
            if code == _EXT_ARRAY:
                return _decode_array(_unpack(payload, ext_hook, budget))
            if code == _EXT_COMPLEX:
                parts = _unpack(payload, ext_hook, budget)
                if (type(parts) is not list or len(parts) != 2
                        or not all(type(p) is float for p in parts)):
                    raise ProtocolError("malformed complex number")
                return complex(parts[0], parts[1])
            if code == _EXT_HANDLE:
                fields = _unpack(payload, ext_hook, budget)
                if (type(fields) is not list or len(fields) != 2 or type(fields[0]) is not int
                        or fields[0] < 0 or type(fields[1]) is not str):
                    raise ProtocolError("malformed handle")
                hid, type_name = fields[0], fields[1][:100]
                if resolve_handle is not None:
                    return resolve_handle(hid)
                if make_handle is not None:
                    return make_handle(hid, type_name)
                return Handle(hid, type_name)
            if code == _EXT_BIGINT:
                text = payload.decode("ascii", "strict")
                if len(text) > 4300 or not text.lstrip("-").isdigit():
                    raise ProtocolError("malformed integer")
                return int(text)
            raise ProtocolError(f"unknown extension type {code}")
        finally:
            depth[0] -= 1

    try:
        return _unpack(data, ext_hook, budget)
    except ProtocolError:
        raise
    except ValueError as e:
        if "exceeds max_" in str(e):  # msgpack's own length limits, from the frame's size
            raise ProtocolError(f"the message holds a list, dict or string longer than its "
                                f"frame allows ({e}): send large collections of numbers as a "
                                f"numpy array") from None
        raise ProtocolError(f"malformed message: {type(e).__name__}: {e}") from None
    except (TypeError, KeyError, UnicodeDecodeError, RecursionError,
            msgpack.exceptions.UnpackException, msgpack.exceptions.ExtraData) as e:
        raise ProtocolError(f"malformed message: {type(e).__name__}: {e}") from None


def _pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True, strict_types=True)


def _unpack(data: bytes, ext_hook: Callable[[int, bytes], Any],
            budget: DecodeBudget | None = None) -> Any:
    # msgpack allocates a list or dict of the length its header claims before reading the
    # elements: no header may claim more elements than the frame has bytes.
    size = len(data)
    if budget is None:
        return msgpack.unpackb(data, raw=False, ext_hook=ext_hook, strict_map_key=False,
                               use_list=True, max_str_len=size, max_bin_len=size,
                               max_array_len=size, max_map_len=size, max_ext_len=size)
    items = min(size, budget.max_items)
    return msgpack.unpackb(data, raw=False, ext_hook=ext_hook, strict_map_key=False,
                           use_list=True, max_str_len=size, max_bin_len=size,
                           max_array_len=items, max_map_len=items, max_ext_len=size,
                           list_hook=budget.list_hook, object_hook=budget.object_hook)


def _is_tensor(v: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(v, torch.Tensor)


def _array_ext(arr: np.ndarray, kind: int, fallback: Callable[[Any, str], Any]) -> Any:
    if arr.dtype.fields is not None or arr.dtype.kind not in "biufc":
        return fallback(arr, f"an array of dtype {arr.dtype}")
    if arr.ndim > MAX_NDIM:
        return fallback(arr, f"an array with {arr.ndim} dimensions")
    if arr.dtype.str not in _ALLOWED_DTYPES:  # big-endian: send little-endian
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    arr = np.asarray(arr, order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
    return msgpack.ExtType(_EXT_ARRAY, _pack([arr.dtype.str, list(arr.shape), arr.tobytes(), kind]))


def _tensor_ext(t: Any, fallback: Callable[[Any, str], Any]) -> Any:
    try:
        arr = t.detach().cpu().resolve_conj().resolve_neg().numpy()
    except (TypeError, RuntimeError):  # e.g. bfloat16, sparse or meta tensors
        return fallback(t, f"a tensor of dtype {t.dtype} (convert it to float32 or float64)")
    return _array_ext(arr, _ARRAY_KIND_TENSOR, fallback)


def _decode_array(fields: Any) -> Any:
    if type(fields) is not list or len(fields) != 4:
        raise ProtocolError("malformed array")
    dtype_str, shape, data, kind = fields
    if type(dtype_str) is not str or dtype_str not in _ALLOWED_DTYPES:
        raise ProtocolError(f"refused array dtype {dtype_str!r}: only numeric dtypes cross")
    if (type(shape) is not list or len(shape) > MAX_NDIM
            or not all(type(d) is int and d >= 0 for d in shape)):
        raise ProtocolError("malformed array shape")
    if type(data) is not bytes or kind not in (_ARRAY_KIND_NDARRAY, _ARRAY_KIND_SCALAR,
                                                _ARRAY_KIND_TENSOR):
        raise ProtocolError("malformed array")
    dtype = np.dtype(dtype_str)
    count = 1
    for d in shape:
        count *= d
    if count * dtype.itemsize != len(data):
        raise ProtocolError(f"array data is {len(data)} bytes but shape {tuple(shape)} of "
                            f"{dtype} needs {count * dtype.itemsize}")
    if kind == _ARRAY_KIND_SCALAR and shape:
        raise ProtocolError("malformed scalar")
    if dtype.kind == "b" and data and max(data) > 1:
        raise ProtocolError("boolean array holds values other than 0 and 1")
    arr = np.frombuffer(data, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="), copy=True)
    if kind == _ARRAY_KIND_SCALAR:
        return arr[()]
    if kind == _ARRAY_KIND_TENSOR:
        torch = sys.modules.get("torch")
        if torch is not None:
            return torch.from_numpy(arr)
    return arr


class Channel:
    """A framed, size-capped message pipe over two file descriptors."""

    def __init__(self, read_fd: int, write_fd: int, max_message: int = DEFAULT_MAX_MESSAGE):
        self.read_fd = read_fd
        self.write_fd = write_fd
        self.max_message = max_message
        self._buffer = bytearray()

    def send_bytes(self, body: bytes) -> None:
        if len(body) > self.max_message:
            raise ProtocolError(f"message of {len(body) / 2**20:.1f} MiB exceeds the "
                                f"{self.max_message / 2**20:.0f} MiB limit")
        data = memoryview(_HEADER.pack(len(body)) + body)
        try:
            while data:
                n = os.write(self.write_fd, data)
                data = data[n:]
        except (BrokenPipeError, OSError) as e:
            raise ChannelClosed(f"pipe closed while sending ({e.strerror or e})") from None

    def recv_bytes(self, wait: Callable[[], None] | None = None) -> bytes:
        """Read one message. ``wait`` is called before every read that would block (the grader
        uses it to enforce deadlines with select)."""
        header = self._read_exact(_HEADER.size, wait)
        (length,) = _HEADER.unpack(header)
        if length > self.max_message:
            raise ProtocolError(f"message of {length / 2**20:.1f} MiB exceeds the "
                                f"{self.max_message / 2**20:.0f} MiB limit")
        return self._read_exact(length, wait)

    def _read_exact(self, n: int, wait: Callable[[], None] | None) -> bytes:
        # Reads are buffered: a small reply usually arrives whole, header and body in one read.
        while len(self._buffer) < n:
            if wait is not None:
                wait()
            try:
                chunk = os.read(self.read_fd, max(n - len(self._buffer), 1 << 16))
            except OSError as e:
                raise ChannelClosed(f"pipe error ({e.strerror or e})") from None
            if not chunk:
                raise ChannelClosed("the other side closed the pipe")
            self._buffer += chunk
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    def close(self) -> None:
        for fd in {self.read_fd, self.write_fd}:
            try:
                os.close(fd)
            except OSError:
                pass
