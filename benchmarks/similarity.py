"""The similarity report on a class of generated softmax submissions: how long it takes, the
machine's load, and whether the planted copies are the pairs it flags.

    python benchmarks/similarity.py                # 300 submissions (target: at most 120 s)
    python benchmarks/similarity.py --students 60  # a quick run

Each student's work is assembled from interchangeable ways of writing each step of the softmax
homework (the stable shift, the normaliser, the loss, the gradient, the vectorized version,
loops or not, a helper or not), some of them buggy, with a few lines of the student's own
(checks, prints, constants); a tenth of the class hands in a notebook. Then some students copy
another's work and disguise it: identifiers renamed, functions reordered, comments rewritten.
The report must flag those copies, and few other pairs.
"""

from __future__ import annotations

import argparse
import builtins
import json
import keyword
import os
import random
import re
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SHIFT = [
    "{z} = {x} - np.max({x}, axis=1, keepdims=True)",
    "{z} = {x} - {x}.max(axis=1)[:, None]",
    "{z} = {x} - np.amax({x}, axis=1).reshape(-1, 1)",
    "{m} = {x}.max(axis=1, keepdims=True)\n    {z} = {x} - {m}",
]
NORM = [
    "{lse} = np.log(np.sum(np.exp({z}), axis=1, keepdims=True))\n    {lp} = {z} - {lse}",
    "{e} = np.exp({z})\n    {lp} = {z} - np.log({e}.sum(axis=1, keepdims=True))",
    "{lp} = {z} - np.log(np.exp({z}).sum(axis=1))[:, np.newaxis]",
]
LOSS = [
    "{loss} = -np.mean({lp}[np.arange({n}), {y}])",
    "{loss} = -{lp}[range({n}), {y}].sum() / {n}",
    "{loss} = 0.0\n    for {i} in range({n}):\n        {loss} -= {lp}[{i}, {y}[{i}]]\n    {loss} /= {n}",
]
GRAD = [
    "{g} = np.exp({lp})\n    {g}[np.arange({n}), {y}] -= 1\n    {g} /= {n}",
    "{oh} = np.zeros_like({x})\n    {oh}[np.arange({n}), {y}] = 1.0\n    {g} = (np.exp({lp}) - {oh}) / {n}",
    "{g} = np.exp({lp})\n    for {i} in range({n}):\n        {g}[{i}, {y}[{i}]] -= 1.0\n    {g} = {g} / {n}",
    # buggy: not averaged over the batch
    "{g} = np.exp({lp})\n    {g}[np.arange({n}), {y}] -= 1",
]
VECTORIZED = [
    "{loss}, {ds} = softmax_loss({X} @ {W}, {y})\n    {loss} += {reg} * np.sum({W} * {W})\n"
    "    {dW} = {X}.T @ {ds} + 2 * {reg} * {W}\n    return {loss}, {dW}",
    "{s} = {X}.dot({W})\n    {loss}, {ds} = softmax_loss({s}, {y})\n    {dW} = {X}.T.dot({ds})\n"
    "    {dW} += 2.0 * {reg} * {W}\n    return {loss} + {reg} * ({W} ** 2).sum(), {dW}",
    "{loss}, {ds} = softmax_loss(np.matmul({X}, {W}), {y})\n"
    "    return {loss} + {reg} * np.square({W}).sum(), np.matmul({X}.T, {ds}) + {reg} * 2 * {W}",
    # buggy: no regularisation gradient
    "{loss}, {ds} = softmax_loss({X} @ {W}, {y})\n    return {loss} + {reg} * np.sum({W} ** 2), {X}.T @ {ds}",
]
OWN_LINES = [
    "assert {x}.ndim == {k2}, 'scores must be (N, C)'",
    "assert len({y}) == {n} and {n} > {k0}",
    "{eps} = {c}e-{k12}",
    "{x} = np.asarray({x}, dtype=np.float{bits})",
    "{y} = np.asarray({y}).astype(np.int{bits})",
    "if {n} == {k0}:\n        return {k0}.0, np.zeros_like({x})",
    "{z} = np.clip({z}, -{c}{k0}{k0}, None)" ,
    "{x} = {x} * {c}.0 / {c}.0",
    "np.seterr(over='ignore')",
    "{tmp} = [{k0}, {k2}, {k12}]",
    "while False:\n        pass",
    "{tmp} = {x}.shape[-{k1}] if {x}.ndim > {k1} else {c}",
]
NAMES = {
    "x": ["x", "scores", "logits", "S"], "y": ["y", "labels", "targets", "t"],
    "z": ["shifted", "z", "s_shift", "stable"], "m": ["row_max", "mx", "peak"],
    "lse": ["lse", "log_norm", "log_sum"], "lp": ["log_probs", "logp", "lp"],
    "e": ["e", "expd", "exp_scores"], "loss": ["loss", "L", "total"],
    "n": ["N", "n", "batch"], "i": ["i", "k", "row"], "g": ["dx", "grad", "d_scores"],
    "oh": ["onehot", "one_hot", "Y"], "ds": ["dscores", "d_s", "dlogits"],
    "X": ["X", "data", "inputs"], "W": ["W", "weights", "theta"], "reg": ["reg", "lam", "l2"],
    "dW": ["dW", "grad_w", "dweights"], "s": ["scores", "S2", "out"], "eps": ["eps", "tiny"],
    "c": ["1", "2", "5", "3", "7"], "tmp": ["tmp", "sizes", "dims"],
}


def student_code(rng: random.Random) -> str:
    """One student's softmax.py, assembled from the ways of writing each step."""
    names = {k: rng.choice(v) for k, v in NAMES.items()}
    names.update(k0=rng.randint(0, 3), k1=rng.randint(1, 2), k2=2, k12=rng.randint(8, 15),
                 bits=rng.choice([32, 64]))

    def fill(template: str) -> str:
        return template.format(**names)

    steps = [fill(f"{names['n']} = {names['x']}.shape[0]" if rng.random() < 0.5
                  else f"{names['n']}, _ = {names['x']}.shape"),
             fill(rng.choice(SHIFT)), fill(rng.choice(NORM))]
    loss_grad = [fill(rng.choice(LOSS)), fill(rng.choice(GRAD))]
    if rng.random() < 0.5:
        loss_grad.reverse()
    steps += loss_grad
    # The student's own lines, between the steps (after the size is known).
    for line in rng.sample(OWN_LINES, rng.randint(2, 5)):
        steps.insert(rng.randint(1, len(steps)), fill(line))
    body = steps + [fill(f"return {names['loss']}, {names['g']}")]
    first = (f"def softmax_loss({names['x']}, {names['y']}):\n    \"\"\"My softmax loss.\"\"\"\n    "
             + "\n    ".join(body) + "\n")
    second = (f"def softmax_loss_vectorized({names['W']}, {names['X']}, {names['y']}, "
              f"{names['reg']}):\n    " + fill(rng.choice(VECTORIZED)) + "\n")
    functions = [first, second]
    if rng.random() < 0.3:
        functions.append(f"def _check(a, b):\n    return np.max(np.abs(a - b)) < {rng.choice([1e-6, 1e-8])}\n")
    rng.shuffle(functions)
    return "import numpy as np\n\n\n" + "\n\n".join(functions)


def disguise(code: str, rng: random.Random) -> str:
    """A copy as a student hides it: every identifier renamed, functions reordered, comments
    and docstrings rewritten."""
    for old in set(re.findall(r"\b[a-zA-Z_]\w*\b", code)) - {
            "np", "def", "return", "for", "in", "range", "if", "import", "numpy", "as", "len",
            "assert", "int", "float", "print", "softmax_loss", "softmax_loss_vectorized",
            "axis", "keepdims", "dtype", "_"}:
        if not keyword.iskeyword(old) and not hasattr(builtins, old) and old != "np":
            code = re.sub(rf"(?<![.\w]){old}\b", f"{old}_{rng.randint(10, 99)}", code)
    code = re.sub(r'"""[^"]*"""', '"""Computes the loss (my version)."""', code)
    code = re.sub(r"#.*", "# rewritten comment", code)
    head, *functions = re.split(r"\n(?=def )", code)
    rng.shuffle(functions)
    return head + "\n" + "\n".join(functions)


def as_notebook(code: str) -> str:
    cells = [{"cell_type": "markdown", "metadata": {}, "source": "# Softmax homework"}]
    for part in re.split(r"\n(?=def )", code):
        cells.append({"cell_type": "code", "metadata": {}, "outputs": [],
                      "execution_count": None, "source": part})
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells})


def make_class(folder: Path, students: int, copies: int, seed: int) -> set[frozenset[str]]:
    """Write the class's submissions; returns the planted copy pairs."""
    rng = random.Random(seed)
    codes = {f"s{i:03d}": student_code(rng) for i in range(students - copies)}
    groups: dict[str, list[str]] = {}
    originals = list(codes)
    for j in range(copies):
        source = rng.choice(originals)
        name = f"c{j:03d}"
        codes[name] = disguise(codes[source], rng)
        groups.setdefault(source, [source]).append(name)
    # Two copies of the same work are copies of each other too.
    planted = {frozenset((a, b)) for group in groups.values() for a in group for b in group
               if a < b}
    for name, code in codes.items():
        if rng.random() < 0.1:
            (folder / f"{name}.ipynb").write_text(as_notebook(code))
        else:
            (folder / f"{name}.py").write_text(code)
    return planted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=300)
    parser.add_argument("--copies", type=int, default=None,
                        help="disguised copies among them (default: a tenth)")
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    copies = args.copies if args.copies is not None else args.students // 10

    from autograder.course import Course
    from autograder.similarity import run_similarity

    with tempfile.TemporaryDirectory(prefix="similarity-bench-") as tmp:
        uploads = Path(tmp) / "uploads"
        uploads.mkdir()
        planted = make_class(uploads, args.students, copies, args.seed)
        load_before = os.getloadavg()
        started = time.perf_counter()
        cpu_started = time.process_time()
        result = run_similarity(Course(REPO).assignment("softmax"), Path(tmp) / "out",
                                uploads=sorted(uploads.iterdir()))
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        load_after = os.getloadavg()
        flagged = {frozenset((p.a, p.b)) for p in result.flagged}
        pairs = len(result.comparison.pairs)
        ranks = [i for i, p in enumerate(result.comparison.pairs, start=1)
                 if frozenset((p.a, p.b)) in planted]
        others = sorted((p.similarity for p in result.comparison.pairs
                         if frozenset((p.a, p.b)) not in planted), reverse=True)
    found = len(planted & flagged)
    print(f"similarity: {args.students} submissions ({copies} disguised copies, "
          f"{len(planted)} copied pairs), {pairs} pairs "
          f"in {elapsed:.1f} s wall, {cpu:.1f} s CPU (target: 300 in at most 120 s)")
    print(f"load average (1, 5, 15 min) before {load_before[0]:.2f} {load_before[1]:.2f} "
          f"{load_before[2]:.2f}, after {load_after[0]:.2f} {load_after[1]:.2f} "
          f"{load_after[2]:.2f}; {os.cpu_count()} CPUs")
    print(f"planted copies flagged: {found} of {len(planted)}; other pairs flagged: "
          f"{len(flagged - planted)} (at or above {result.threshold:.0%}); unreadable: "
          f"{len(result.unreadable)}")
    print(f"planted copies rank {min(ranks, default=0)}-{max(ranks, default=0)} of {pairs}; "
          f"their lowest similarity {min((p.similarity for p in result.comparison.pairs if frozenset((p.a, p.b)) in planted), default=0):.2f}, "
          f"the highest other pair {others[0] if others else 0:.2f}, median other pair "
          f"{others[len(others) // 2] if others else 0:.2f}")


if __name__ == "__main__":
    main()
