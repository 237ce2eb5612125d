"""The similarity report's two files: ``pairs.csv`` (every pair, most similar first) and
``report.html`` (ranked pairs, clusters, the shared code side by side). Every student string is
escaped by Jinja2's autoescaping; the page has no script."""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from jinja2 import Environment, FileSystemLoader, select_autoescape

from autograder.similarity.detect import Comparison, Pair, clusters
from autograder.similarity.sources import Unreadable

PAIRS_FILE = "pairs.csv"
REPORT_FILE = "report.html"
#: The columns of pairs.csv: ``a``, ``b``, ``similarity`` first (what scripts read), then the
#: share of each side found in the other and the matched normalised characters.
PAIR_COLUMNS = ("a", "b", "similarity", "share_a", "share_b", "shared_tokens")
_CONTEXT_LINES = 4


@dataclass(frozen=True)
class Segment:
    text: str
    shared: bool


def segments(text: str, spans: Sequence[tuple[int, int]]) -> list[Segment]:
    """``text`` cut into shared and unshared runs; a long unshared run keeps only a few lines
    at each end (the rest is elided with a note), so a pair fits on a screen."""
    out: list[Segment] = []
    pos = 0
    for start, end in spans:
        if start > pos:
            out.append(Segment(_elide(text[pos:start]), False))
        out.append(Segment(text[start:end], True))
        pos = end
    if pos < len(text):
        out.append(Segment(_elide(text[pos:]), False))
    return out


def _elide(chunk: str) -> str:
    lines = chunk.split("\n")
    if len(lines) <= 2 * _CONTEXT_LINES + 2:
        return chunk
    hidden = len(lines) - 2 * _CONTEXT_LINES
    return "\n".join(lines[:_CONTEXT_LINES] + [f"    ⋯ {hidden} lines not shared ⋯"]
                     + lines[-_CONTEXT_LINES:])


def write_pairs_csv(pairs: Sequence[Pair], path: Path) -> Path:
    """Every compared pair, most similar first, with similarities in [0, 1]."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(PAIR_COLUMNS)
        for p in pairs:
            w.writerow([p.a, p.b, f"{p.similarity:.4f}", f"{p.share_a:.4f}", f"{p.share_b:.4f}",
                        p.shared_tokens])
    tmp.replace(path)
    return path


def read_pairs_csv(path: Path) -> list[dict[str, str]]:
    """pairs.csv back as rows (the service's page reads the report it wrote)."""
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def render_report(comparison: Comparison, *, assignment: str, threshold: float,
                  details: int, starter: Sequence[str], unreadable: Sequence[Unreadable],
                  elapsed_s: float, max_rows: int = 200) -> str:
    """The HTML report (a standalone page: inline CSS, no script)."""
    env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    texts = {d.name: d.text for d in comparison.documents}
    flagged = [p for p in comparison.pairs if p.similarity >= threshold]
    shown = []
    for rank, p in enumerate(flagged[:details], start=1):
        frag = p.fragment
        shown.append({"rank": rank, "pair": p,
                      "left": segments(texts[p.a], frag.slices_a if frag else ()),
                      "right": segments(texts[p.b], frag.slices_b if frag else ())})
    return env.get_template("report.html").render(
        assignment=assignment, generated=dt.datetime.now(dt.timezone.utc).strftime(
            "%Y-%m-%d %H:%M UTC"),
        current=sum(not d.reference for d in comparison.documents),
        references=sum(d.reference for d in comparison.documents),
        pairs=comparison.pairs[:max_rows], total_pairs=len(comparison.pairs),
        flagged=len(flagged), threshold=threshold, details=shown,
        groups=clusters(comparison.pairs, threshold), starter=list(starter),
        unreadable=list(unreadable), common_limit=comparison.common_limit,
        common_fingerprints=comparison.common_fingerprints, elapsed_s=elapsed_s)
