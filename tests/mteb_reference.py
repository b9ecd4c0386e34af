"""References built without cmteb's code, for the differential tests.

- mteb's own tasks: the task objects of mteb's `MTEB(cmn, v1)` benchmark (with the benchmark's splits), their
  data read from the sample mirror by pointing their metadata's dataset path at the local copy (mteb's own
  field: a task reads `datasets.load_dataset(metadata.dataset["path"], ...)`).
- The two cross-lingual reranking tasks, which mteb does not define: their repos' mteb 1 layout (one row per
  query: `query`, `positive`, `negative`) read with pandas and scored by pytrec_eval directly, as mteb's
  retrieval evaluator scores a reranking (MAP over each query's candidates: pytrec_eval's `map_cut_1000`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import mteb
import numpy as np
import pandas as pd

from cmteb.assets import SAMPLES_DIR
from cmteb.tasks.protocols import known_tasks

BENCHMARK = "MTEB(cmn, v1)"


def reference_task(name: str):
    """mteb's own task of the benchmark, reading the sample mirror's copy of its dataset repo."""
    task = copy.deepcopy(next(t for t in mteb.get_benchmark(BENCHMARK).tasks if t.metadata.name == name))
    dataset = task.metadata.dataset
    task.metadata = task.metadata.model_copy(
        update={"dataset": {**dataset, "path": str(SAMPLES_DIR / dataset["path"])}}
    )
    return task


def reranking_map(name: str, score: Callable[[list[tuple[str, str]]], np.ndarray]) -> float:
    """MAP@1000 of a cross-lingual reranking task (mteb 1 layout) with pairs scored by `score`, by pytrec_eval."""
    import pytrec_eval

    spec = known_tasks()[name]
    [split] = spec.splits
    rows = pd.read_parquet(SAMPLES_DIR / spec.repo / "data" / f"{split}-00000-of-00001.parquet")
    qrels, run = {}, {}
    for k, row in enumerate(rows.itertuples()):
        candidates = [*row.positive, *row.negative]
        scores = score([(row.query, text) for text in candidates])
        run[f"q{k}"] = {f"d{k}-{j}": float(s) for j, s in enumerate(scores)}
        if len(row.positive):
            qrels[f"q{k}"] = {f"d{k}-{j}": 1 for j in range(len(row.positive))}
    evaluated = pytrec_eval.RelevanceEvaluator(qrels, {"map_cut.1000"}).evaluate(run)
    return float(np.mean([v["map_cut_1000"] for v in evaluated.values()]))
