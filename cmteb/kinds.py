"""The kinds of run, decided once when a run's settings are resolved (`runner/config.py`): each has its own
system module (`runner/systems/`), and the run record names it."""

from __future__ import annotations

from enum import Enum


class RunKind(Enum):
    """What a run evaluates; the value is what the run record's `kind` says."""

    EMBEDDER = "embedder"  # an embedding model on any task
    RERANKER = "reranker"  # a reranker alone, on the Reranking tasks' given candidates
    TWO_STAGE = "two-stage"  # an embedder retrieves, a reranker re-ranks its top k (Retrieval)
    LEXICAL = "lexical baseline"  # `--model bm25`: BM25 and TF-IDF, no network
