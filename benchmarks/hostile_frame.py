"""Memory and time of decoding a hostile reply frame on the trusted side.

A runner can write any bytes into its reply pipe. A frame made of many tiny containers (empty
lists, empty dicts, lists of two small ints) or of many small objects costs the grader far more
memory than it holds on the wire. This script builds such frames of ``--mib`` MiB (default 32)
and decodes each with :func:`autograder.protocol.decode`, one fresh process per frame, printing
the decoder's peak RSS growth, the ratio to the frame size, the seconds it took and how it ended.

    .venv/bin/python benchmarks/hostile_frame.py            # every shape, 32 MiB
    .venv/bin/python benchmarks/hostile_frame.py --shape empty_lists --mib 8
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import struct
import subprocess
import sys
import time

SHAPES = ("empty_lists", "empty_dicts", "int_pairs", "short_strings", "small_negatives",
          "nested_tuples")


def hostile_frame(shape: str, size: int, flat: bool = False) -> bytes:
    """A msgpack document of about ``size`` bytes: a list of lists of tiny items (``flat``:
    one list of them)."""
    item = {
        "empty_lists": b"\x90",                     # []
        "empty_dicts": b"\x80",                     # {}
        "int_pairs": b"\x92\xcd\x01\x00\xcd\x01\x01",  # [256, 257]: two uncached ints
        "short_strings": b"\xa2\xc4\x80",           # a 1-character non-Latin-1 string
        "small_negatives": b"\xf0",                # -16: one byte, an uncached int object
        "nested_tuples": b"\xd4\x01\x90",           # tuple() through the extension type
    }[shape]
    if not flat:  # lists of 2**16 items each: no one list is refused for its length alone
        per = 2**16
        inner = b"\xdd" + struct.pack(">I", per) + item * per
        n = size // len(inner)
        return b"\xdd" + struct.pack(">I", n) + inner * n
    n = size // len(item)
    return b"\xdd" + struct.pack(">I", n) + item * n


def _rss_kb() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def measure(shape: str, mib: int, flat: bool) -> dict:
    """Decode one frame in this process (run it in a fresh one for a clean peak)."""
    from autograder import protocol

    frame = hostile_frame(shape, mib * 2**20, flat)
    before = max(_rss_kb(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    began = time.monotonic()
    try:
        if hasattr(protocol, "DecodeBudget"):  # as the grader decodes a reply
            protocol.decode(frame, budget=protocol.DecodeBudget(
                len(frame), deadline=time.monotonic() + 20.0))
        else:  # before the budget existed
            protocol.decode(frame)
        outcome = "decoded"
    except Exception as e:  # noqa: BLE001 - what the grader would see
        outcome = f"{type(e).__name__}: {str(e)[:90]}"
    seconds = time.monotonic() - began
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"shape": shape + (" (flat)" if flat else ""), "frame_mib": len(frame) / 2**20, "rss_before_mib": before / 1024,
            "peak_mib": peak / 1024, "growth_mib": (peak - before) / 1024,
            "ratio": (peak - before) * 1024 / len(frame), "seconds": seconds,
            "outcome": outcome}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=SHAPES, action="append")
    parser.add_argument("--mib", type=int, default=32)
    parser.add_argument("--flat", action="store_true",
                        help="one list of tiny items rather than lists of 65536 of them")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.shape[0], args.mib, args.flat)))
        return
    print(f"load {os.getloadavg()[0]:.2f}; frame {args.mib} MiB; peak RSS growth while decoding")
    print(f"{'shape':<15} {'peak MiB':>9} {'growth':>8} {'x frame':>8} {'seconds':>8}  outcome")
    for shape in args.shape or SHAPES:
        proc = subprocess.run([sys.executable, __file__, "--one", "--shape", shape,
                               "--mib", str(args.mib)] + (["--flat"] if args.flat else []),
                              capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{shape:<15} failed: {proc.stderr.strip()[-300:]}")
            continue
        r = json.loads(proc.stdout)
        print(f"{r['shape']:<15} {r['peak_mib']:>9.0f} {r['growth_mib']:>8.0f} {r['ratio']:>8.1f} "
              f"{r['seconds']:>8.2f}  {r['outcome']}")


if __name__ == "__main__":
    main()
