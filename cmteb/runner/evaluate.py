"""One task through mteb's evaluation: mteb's own evaluators on the run's model, on in-memory data."""

from __future__ import annotations

import logging
import warnings
from typing import Any

from cmteb.tasks.types import TYPES

#: Memory for one block of query x corpus scores in exact search (float32).
SCORE_BLOCK_BYTES = 1 << 30


def corpus_chunk_size(n_queries: int) -> int:
    """Documents scored at once against `n_queries` queries: one float32 score block within
    SCORE_BLOCK_BYTES, at most mteb's default of 50,000 and at least 1,000."""
    return max(1_000, min(50_000, SCORE_BLOCK_BYTES // (4 * max(1, n_queries))))


def searchable(model: Any, task: Any) -> Any:
    """For retrieval, mteb's exact search (its chunks merged by torch: `runner/search.py`) with a
    corpus chunk sized so that one block of query x document scores stays within SCORE_BLOCK_BYTES,
    however large the corpus: mteb's default chunk of 50,000 documents makes a 4.6 GB block for
    T2Retrieval's 22,812 queries."""
    kind = TYPES.get(task.metadata.type)
    if kind is None or not kind.searches:
        return model
    from cmteb.runner.search import ExactSearch

    n_queries = max(len(split["queries"]) for subset in task.dataset.values() for split in subset.values())
    return ExactSearch(model, corpus_chunk_size=corpus_chunk_size(n_queries))


def evaluate(model: Any, task: Any, batch_size: int, **kwargs: Any) -> Any:
    """mteb's evaluation of `task` with `model`: its TaskResult, never a cached one."""
    import mteb

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mteb.evaluate(
            model,
            task,
            cache=None,
            overwrite_strategy="always",
            show_progress_bar=False,
            encode_kwargs={"batch_size": batch_size, "show_progress_bar": False},
            **kwargs,
        ).task_results[0]


def quiet_third_party(debug: bool) -> None:
    """Keep the console to cmteb's own progress and summary unless --debug."""
    import datasets
    import transformers

    if not debug:
        datasets.disable_progress_bars()
        transformers.utils.logging.disable_progress_bar()
        # Their errors reach the user as cmteb's own one-line messages.
        for name in ("mteb", "datasets", "transformers", "sentence_transformers"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
