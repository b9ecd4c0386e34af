"""Qrels that name what their split does not hold, counted when a search task's data is loaded.

Its own small module: the run record and the runner read `QrelGaps` without importing mteb."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cmteb.columns import column_values


@dataclass(frozen=True)
class QrelGaps:
    """Qrels that name what the split does not hold: documents missing from the corpus count as not retrieved
    (as trec_eval counts them); queries missing from the queries are never searched, so mteb leaves them out."""

    documents: int = 0
    queries: int = 0

    def warnings(self, task: str) -> list[str]:
        """One line per kind of gap, for the run to print."""
        lines = []
        if self.documents:
            lines.append(
                f"{task}: {self.documents} qrels name documents missing from the corpus; they count as not "
                "retrieved, as trec_eval counts them"
            )
        if self.queries:
            lines.append(
                f"{task}: {self.queries} qrels name queries missing from the queries; mteb leaves those queries "
                "out of the score"
            )
        return lines


def qrel_gaps(task: Any) -> QrelGaps:
    """How many qrels name documents, and how many name queries, that a loaded search task's splits lack."""
    documents = queries = 0
    for splits in task.dataset.values():
        for part in splits.values():
            if isinstance(part, dict) and "relevant_docs" in part:
                corpus = set(column_values(part["corpus"], "id"))
                asked = set(column_values(part["queries"], "id"))
                documents += sum(d not in corpus for docs in part["relevant_docs"].values() for d in docs)
                queries += sum(len(docs) for q, docs in part["relevant_docs"].items() if q not in asked)
    return QrelGaps(documents, queries)
