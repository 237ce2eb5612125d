"""Fingerprints and pairwise comparison, by copydetect (winnowed k-grams over the token stream
with identifiers, function and class names and strings normalised, comments and whitespace
dropped: https://github.com/blingenf/copydetect). We do not write the algorithm; this module
only decides what counts as shared code and how a pair's number is formed.

* Renaming identifiers does not hide a copy: the tokenizer turns every name into ``V``/``F``/``O``.
* Editing comments or docstrings does not: comments are dropped, every string becomes ``S``.
* Reordering functions does not: fingerprints are a set, so only the few k-grams that straddle a
  function boundary change.
* Shared starter code (the release stubs, the handout) is *boilerplate*: every k-gram of it is
  removed from every submission before comparing, so two untouched stubs share nothing.
* Code that many submissions share (``common_share``) is treated like boilerplate too, as MOSS
  does: a fragment in a fifth of the class is the idiom of the assignment, not a copy.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass, field
from itertools import combinations
from typing import Iterable, Sequence

import numpy as np

#: The smallest matching run of normalised characters that counts (copydetect's noise
#: threshold): ``V=V.V(V,V=1,V=True)`` is 19, a short idiom; a copied line or two is over it.
NOISE_THRESHOLD = 25
#: Every match this long is guaranteed to be found (winnowing window = guarantee - noise + 1).
GUARANTEE_THRESHOLD = 30


@dataclass(frozen=True)
class Document:
    """One submission's code as one text (its files concatenated, notebooks converted).

    ``name`` is who it belongs to (a student id, an upload's name, ``ref:<name>`` for the
    reference set); ``reference``: from an earlier term, compared with this term only."""

    name: str
    text: str
    reference: bool = False
    files: tuple[str, ...] = ()


@dataclass(frozen=True)
class Fragment:
    """Where the shared code lies in each document: character slices ``(start, end)`` of the
    raw text (as copydetect maps them back from the normalised tokens)."""

    slices_a: tuple[tuple[int, int], ...]
    slices_b: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Pair:
    """Two documents and how much of each the other contains.

    ``share_a``: the part of ``a``'s own (non-boilerplate) code found in ``b``; ``similarity``
    is the larger of the two shares, so a student who copied a whole solution into a longer
    file is still flagged; in [0, 1]."""

    a: str
    b: str
    similarity: float
    share_a: float
    share_b: float
    shared_tokens: int
    fragment: Fragment | None = None


@dataclass
class Comparison:
    """Every pair compared (most similar first), and what was left out and why."""

    pairs: list[Pair]
    documents: list[Document]
    skipped: dict[str, str] = field(default_factory=dict)  # name -> why it was not compared
    common_fingerprints: int = 0
    common_limit: int = 0


def _stable_hashed_kgrams(string: str, k: int) -> np.ndarray:
    """The hash of every k-gram of ``string``, the same in every process.

    copydetect hashes k-grams with Python's ``hash()``, which is salted per process: which
    fingerprints winnowing keeps, and so every similarity and every ranking of the report,
    changed from one run to the next. A TA who runs the check twice must see the same list."""
    import hashlib

    def stable(kgram: str) -> int:
        digest = hashlib.blake2b(kgram.encode("utf-8", "surrogatepass"), digest_size=8).digest()
        return int.from_bytes(digest, "little", signed=True)

    return np.array([stable(string[i:i + k]) for i in range(len(string) - k + 1)],
                    dtype=np.int64)


def _copydetect_deterministic() -> None:
    """Make copydetect fingerprint with :func:`_stable_hashed_kgrams` (its fingerprinting looks
    the function up in its ``utils`` module on every call)."""
    import copydetect.utils

    copydetect.utils.hashed_kgrams = _stable_hashed_kgrams


def _fingerprint(name: str, text: str, window: int, boilerplate: np.ndarray):  # -> CodeFingerprint
    from copydetect import CodeFingerprint

    _copydetect_deterministic()

    # ``fp`` gives the text directly; the file name only picks the lexer (Python).
    return CodeFingerprint(f"{name}.py", NOISE_THRESHOLD, window, boilerplate,
                           fp=io.StringIO(text))


def boilerplate_hashes(texts: Iterable[str]) -> np.ndarray:
    """Every k-gram fingerprint of the starter code (window 1: all of them, not a sample)."""
    from copydetect import CodeFingerprint

    _copydetect_deterministic()
    hashes: set[int] = set()
    for i, text in enumerate(texts):
        hashes |= CodeFingerprint(f"starter{i}.py", NOISE_THRESHOLD, 1,
                                  fp=io.StringIO(text)).hashes
    return np.unique(np.array(sorted(hashes), dtype=np.int64))


def common_limit(n_documents: int, common_share: float, common_min: int) -> int:
    """A fingerprint found in more than this many submissions is common code (None of it is
    evidence): ``common_share`` of the class, but never fewer than ``common_min``."""
    return max(common_min, int(common_share * n_documents))


def compare(documents: Sequence[Document], starter: Sequence[str] = (), *,
            common_share: float = 0.2, common_min: int = 10,
            keep_fragments_from: float = 0.0) -> Comparison:
    """Compare every pair of this term's documents, and each of them with every reference
    document (never two references with each other). ``starter``: the texts of the shared
    starter code. Fragments (for the report) are kept for pairs whose similarity is at least
    ``keep_fragments_from``."""
    from copydetect import compare_files

    window = GUARANTEE_THRESHOLD - NOISE_THRESHOLD + 1
    starter_hashes = boilerplate_hashes(starter)
    # Fingerprint once, count in how many of this term's documents each fingerprint occurs,
    # then fingerprint again with the common ones added to the boilerplate (copydetect's own
    # way of leaving code out, so its similarity counts only what is left).
    first = {d.name: _fingerprint(d.name, d.text, window, starter_hashes) for d in documents}
    current = [d for d in documents if not d.reference]
    limit = common_limit(len(current), common_share, common_min)
    counts = Counter(h for d in current for h in first[d.name].hashes)
    common = np.array(sorted(h for h, n in counts.items() if n > limit), dtype=np.int64)
    prints = first
    if len(common):
        excluded = np.unique(np.concatenate([starter_hashes, common]))
        prints = {d.name: _fingerprint(d.name, d.text, window, excluded) for d in documents}
    references = [d for d in documents if d.reference]
    pairs: list[Pair] = []
    todo = list(combinations(current, 2)) + [(c, r) for c in current for r in references]
    for da, db in todo:
        fa, fb = prints[da.name], prints[db.name]
        if not fa.hashes or not fb.hashes or fa.hashes.isdisjoint(fb.hashes):
            pairs.append(Pair(da.name, db.name, 0.0, 0.0, 0.0, 0))
            continue
        overlap, (sim_a, sim_b), (slices_a, slices_b) = compare_files(fa, fb)
        share_a, share_b = min(1.0, float(sim_a)), min(1.0, float(sim_b))
        similarity = max(share_a, share_b)
        fragment = None
        if similarity >= keep_fragments_from and len(slices_a) and np.size(slices_a[0]):
            fragment = Fragment(_slices(slices_a, len(da.text)), _slices(slices_b, len(db.text)))
        pairs.append(Pair(da.name, db.name, round(similarity, 4), round(share_a, 4),
                          round(share_b, 4), int(overlap), fragment))
    pairs.sort(key=lambda p: (-p.similarity, -p.shared_tokens, p.a, p.b))
    return Comparison(pairs=pairs, documents=list(documents), common_fingerprints=len(common),
                      common_limit=limit)


def _slices(slices: np.ndarray, length: int) -> tuple[tuple[int, int], ...]:
    """copydetect's 2xN array of starts and ends, clamped to the text and merged."""
    spans = sorted((max(0, int(s)), min(length, int(e))) for s, e in zip(slices[0], slices[1]))
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(merged)


def clusters(pairs: Iterable[Pair], threshold: float, min_size: int = 3) -> list[list[str]]:
    """Groups of ``min_size`` or more documents linked by pairs at or above ``threshold``
    (connected components): three students sharing one solution show up as one group, not as
    three separate pairs. Largest first."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for p in pairs:
        if p.similarity >= threshold:
            parent[find(p.a)] = find(p.b)
    groups: dict[str, list[str]] = {}
    for x in list(parent):
        groups.setdefault(find(x), []).append(x)
    found = [sorted(g) for g in groups.values() if len(g) >= min_size]
    return sorted(found, key=lambda g: (-len(g), g))
