"""The one table of task types: every rule that differs by type, so that adding a type is one entry
(docs/adding-a-task-type.md).

Used by the registry (type names and their order), the runner (which tasks search a corpus and get
the query instruction, which texts are encoded ahead), the data checks (the columns the evaluator reads and
what makes its data degenerate), the in-memory evaluation, subsampling, the per-item capture, `compare`'s
paired statistic and the model card's metric list. Behaviours that take code are named here and defined
where they run: `texts_ahead` in `runner/prefetch.py` (PLANNERS), `checks` in `tasks/validate.py`
(DATA_CHECKS), `in_memory` in `mteb_hooks.py` (IN_MEMORY_MIXINS), `capture` in `results/items.py`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

RETRIEVAL_AT = (1, 3, 5, 10, 100, 1000)
_RETRIEVAL = "|".join(f"{m}_at_{k}" for m in ("map", "mrr", "ndcg", "precision", "recall") for k in RETRIEVAL_AT)


@dataclass(frozen=True)
class TaskType:
    """How one task type is evaluated, captured, compared and published."""

    name: str
    searches: bool  # each query searches a corpus or a candidate list (mteb's retrieval evaluator)
    instructed: bool  # queries get the model's retrieval instruction
    capture: str | None  # which per-item values cmteb.mteb_hooks captures: "search", "sts", "pair"
    experiments: str | None  # the per-experiment values mteb reports instead: "accuracy", "v_measure"
    item_metric: str | None  # the per-item value compare pairs on; None: the task's own metric
    statistic: str  # how per-item values make the score on resamples: "mean", "spearman", "ap"
    card_metrics: str  # a regex of the metrics a model card lists (mteb 2 names)
    card_names: tuple[tuple[str, str], ...] = ()  # mteb 2 name -> the BGE cards' name, where they differ
    list_columns: tuple[str, ...] = ()  # columns holding lists in the one-row v1 layout (subsampled together)
    quick_scale: int = 1  # `--subsample N` keeps N x this many items: enough that float noise cannot flip the score
    columns: Callable[[Any], list[tuple[str, str]]] = lambda task: []  # (column, text|number|label) mteb reads
    checks: tuple[str, ...] = ()  # what makes its data degenerate (`validate.DATA_CHECKS`)
    train_split: bool = False  # evaluation also reads a training split (checked like the eval splits)
    texts_ahead: str | None = None  # how its texts are known before evaluation (`prefetch.PLANNERS`)
    in_memory: str | None = None  # the mixin handing mteb its columns as lists (`mteb_hooks.IN_MEMORY_MIXINS`)

    def paired_statistic(self, metric: str) -> str:
        """The statistic compare recomputes on resamples for a task scored by `metric`."""
        return "best_accuracy" if self.statistic == "ap" and metric.endswith("accuracy") else self.statistic

    def card_selection(self, scores: dict[str, float]) -> dict[str, float]:
        """The metrics of one split a model card lists, under the names the BGE cards use."""
        names = dict(self.card_names)
        chosen = {names.get(k, k): v for k, v in scores.items() if re.fullmatch(self.card_metrics, k)}
        return {re.sub(r"^cosine_", "cos_sim_", k): v for k, v in chosen.items()}


TYPES: dict[str, TaskType] = {
    t.name: t
    for t in (
        TaskType("Retrieval", True, True, "search", None, None, "mean", _RETRIEVAL, texts_ahead="search"),
        TaskType(
            "STS",
            False,
            False,
            "sts",
            None,
            "cosine",
            "spearman",
            r"(cosine|euclidean|manhattan)_(pearson|spearman)",
            columns=lambda task: [(task.column_names[0], "text"), (task.column_names[1], "text"), ("score", "number")],
            checks=("gold_scores",),
            texts_ahead="pairs",
            in_memory="sts",
        ),
        TaskType(
            "PairClassification",
            False,
            False,
            "pair",
            None,
            "cosine",
            "ap",
            r"(cosine|dot|euclidean|manhattan)_(accuracy|ap|f1|precision|recall)|max_(accuracy|ap|f1)",
            list_columns=("sentence1", "sentence2", "labels"),
            columns=lambda task: [
                (task.input1_column_name, "text"),
                (task.input2_column_name, "text"),
                (task.label_column_name, "label"),
            ],
            texts_ahead="pairs",
            in_memory="pairs",
        ),
        TaskType(
            "Classification",
            False,
            False,
            None,
            "accuracy",
            "accuracy",
            "mean",
            r"accuracy|ap|f1",
            columns=lambda task: [(task.input_column_name, "text"), (task.label_column_name, "label")],
            checks=("train_labels",),
            train_split=True,
            texts_ahead="labelled",
            in_memory="labelled",
        ),
        TaskType(
            "Reranking",
            True,
            True,
            "search",
            None,
            None,
            "mean",
            r"map_at_1000|mrr_at_10",
            card_names=(("map_at_1000", "map"), ("mrr_at_10", "mrr")),
            texts_ahead="search",
        ),
        TaskType(
            "Clustering",
            False,
            False,
            None,
            "v_measure",
            "v_measure",
            "mean",
            r"v_measure",
            list_columns=("sentences", "labels"),
            # k-means on 18 texts moved 1.3 and 4.5 V-measure points under float noise; on 40 and on 64 texts
            # 16 perturbed draws each moved no score (m3e-small, the sample mirrors; `runner/noise.py`).
            quick_scale=5,
            columns=lambda task: [(task.input_column_name, "text"), (task.label_column_name, "label")],
            checks=("clusters",),
            texts_ahead="clusters",
            in_memory="clusters",
        ),
    )
}
#: How tables name the leaderboard metrics (the protocols pick one per type).
METRIC_LABELS = {
    "ndcg_at_10": "nDCG@10",
    "cosine_spearman": "cosine Spearman",
    "cosine_ap": "cosine AP",
    "max_accuracy": "max accuracy",
    "accuracy": "accuracy",
    "map_at_1000": "MAP (map_at_1000)",
    "v_measure": "V-measure",
}
#: Task types in the order of the C-MTEB leaderboard table.
TASK_TYPES = tuple(TYPES)


def task_type(name: str) -> TaskType:
    """The rules of task type `name`."""
    return TYPES[name]


def metric_label(metric: str) -> str:
    """A metric as tables name it."""
    return METRIC_LABELS.get(metric, metric)
