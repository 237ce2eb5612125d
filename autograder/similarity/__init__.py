"""The similarity report (``autograder similarity``, and the button on the staff similarity
page): which submissions of an assignment share code beyond the starter code.

* :mod:`.sources`: the documents: each submission's code through the intake (notebooks by their
  code cells), the starter code, an earlier term's reference set;
* :mod:`.detect`: fingerprints and pairs, by copydetect; clusters of three or more;
* :mod:`.report`: ``pairs.csv`` and ``report.html``.

It flags, it never penalises: nothing here writes a grade.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from autograder.course import Assignment
from autograder.errors import UserError
from autograder.similarity.detect import Comparison, Document, Pair, clusters, compare
from autograder.similarity.report import (PAIRS_FILE, REPORT_FILE, read_pairs_csv,
                                          render_report, write_pairs_csv)
from autograder.similarity.sources import (Unreadable, documents_from_paths,
                                           gradebook_documents, reference_documents,
                                           starter_code)

__all__ = ["Document", "Pair", "Comparison", "SimilarityRun", "compare", "clusters",
           "run_similarity", "read_pairs_csv", "PAIRS_FILE", "REPORT_FILE"]

#: Pairs at or above this similarity are flagged, listed side by side and grouped in clusters.
DEFAULT_THRESHOLD = 0.5


@dataclass
class SimilarityRun:
    """What one run wrote and found."""

    output: Path
    comparison: Comparison
    unreadable: list[Unreadable] = field(default_factory=list)
    elapsed_s: float = 0.0
    threshold: float = DEFAULT_THRESHOLD

    @property
    def flagged(self) -> list[Pair]:
        return [p for p in self.comparison.pairs if p.similarity >= self.threshold]


def run_similarity(assignment: Assignment, output: Path, *,
                   uploads: Sequence[Path] = (), gradebook=None,  # type: ignore[no-untyped-def]
                   uploads_dir: Path | None = None, reference_set: Path | None = None,
                   threshold: float = DEFAULT_THRESHOLD, details: int = 30,
                   common_share: float = 0.2, common_min: int = 10) -> SimilarityRun:
    """Compare ``assignment``'s submissions and write ``output/pairs.csv`` and
    ``output/report.html``. The submissions are ``uploads`` (paths) when given, else the latest
    submission of each active student in ``gradebook`` (files kept there, or the service's
    uploads under ``uploads_dir``)."""
    if not 0 <= threshold <= 1:
        raise UserError(f"--threshold {threshold}: give a similarity between 0 and 1")
    started = time.perf_counter()
    cfg = assignment.config
    skip = [Path(f).name for f in cfg.support_files]
    if uploads:
        docs, bad = documents_from_paths(list(uploads), cfg.modules, skip=skip)
    elif gradebook is not None:
        docs, bad = gradebook_documents(gradebook, assignment, uploads_dir, skip=skip)
    else:
        raise UserError("no submissions: give upload paths, or a gradebook to read the latest "
                        "submission of each student from")
    if reference_set is not None:
        refs, bad_refs = reference_documents(reference_set, cfg.modules, skip=skip)
        docs, bad = docs + refs, bad + bad_refs
    if sum(not d.reference for d in docs) < 1 or len(docs) < 2:
        raise UserError(f"{assignment.label}: {len(docs)} readable submission(s); a comparison "
                        f"needs at least two")
    starter = starter_code(assignment)
    comparison = compare(docs, [text for _, text in starter], common_share=common_share,
                         common_min=common_min, keep_fragments_from=threshold)
    output.mkdir(parents=True, exist_ok=True)
    write_pairs_csv(comparison.pairs, output / PAIRS_FILE)
    elapsed = time.perf_counter() - started
    html = render_report(comparison, assignment=assignment.label, threshold=threshold,
                         details=details, starter=[label for label, _ in starter],
                         unreadable=bad, elapsed_s=elapsed)
    tmp = output / (REPORT_FILE + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(output / REPORT_FILE)
    return SimilarityRun(output=output, comparison=comparison, unreadable=bad,
                         elapsed_s=time.perf_counter() - started, threshold=threshold)
